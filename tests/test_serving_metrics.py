"""Serving metrics: counts, histograms and exposition text in one process, and the
sum over several real worker processes sharing PROMETHEUS_MULTIPROC_DIR."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest, values
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from modelloop.serving.metrics import MULTIPROC_ENV, ServingMetrics, mark_process_dead


def _samples(body: bytes) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def _value(body: bytes, name: str, **labels: str) -> float:
    return _samples(body)[(name, frozenset(labels.items()))]


@pytest.fixture(autouse=True)
def _single_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    monkeypatch.delenv("prometheus_multiproc_dir", raising=False)
    # ServingMetrics may switch the library's value storage; undo it after each test.
    monkeypatch.setattr(values, "ValueClass", values.ValueClass)


def test_counts_histograms_and_render() -> None:
    metrics = ServingMetrics()
    for seconds in (0.0004, 0.003, 0.003, 0.2):
        metrics.request("churn", "3", "/v2/models/churn/infer", 200, seconds)
    metrics.request("churn", "3", "/v2/models/churn/infer", 400, 0.001)
    metrics.request("churn", "3", "/v2/models/churn/infer", 503, 0.002)
    metrics.request("churn", "4", "/invocations", 500, 0.01)
    for size in (1, 3, 64, 600):
        metrics.batch("churn", "3", size)

    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    text = body.decode()
    for name in (
        "modelloop_requests_total",
        "modelloop_request_seconds_bucket",
        "modelloop_errors_total",
        "modelloop_batch_size_bucket",
    ):
        assert name in text
    route = "/v2/models/churn/infer"
    ok = {"model": "churn", "version": "3", "route": route}
    assert _value(body, "modelloop_requests_total", **ok, status="200") == 4
    assert _value(body, "modelloop_requests_total", **ok, status="400") == 1
    assert _value(body, "modelloop_request_seconds_count", **ok) == 6
    assert _value(body, "modelloop_request_seconds_sum", **ok) == pytest.approx(0.2094)
    assert _value(body, "modelloop_request_seconds_bucket", **ok, le="0.0005") == 1
    assert _value(body, "modelloop_request_seconds_bucket", **ok, le="0.005") == 5
    assert _value(body, "modelloop_errors_total", **ok) == 1  # 503 only, not the 400
    v4 = {"model": "churn", "version": "4", "route": "/invocations"}
    assert _value(body, "modelloop_errors_total", **v4) == 1
    batch = {"model": "churn", "version": "3"}
    assert _value(body, "modelloop_batch_size_count", **batch) == 4
    assert _value(body, "modelloop_batch_size_sum", **batch) == 668
    assert _value(body, "modelloop_batch_size_bucket", **batch, le="4.0") == 2
    assert _value(body, "modelloop_batch_size_bucket", **batch, le="512.0") == 3
    assert _value(body, "modelloop_batch_size_bucket", **batch, le="+Inf") == 4

    # A second instance has its own registry: nothing leaks between apps or tests.
    other = ServingMetrics()
    assert "churn" not in other.render()[0].decode()


def _worker(folder: str, worker: int, requests: int) -> None:
    # Runs in a fresh (spawned) interpreter with the variable set before any import.
    os.environ[MULTIPROC_ENV] = folder
    metrics = ServingMetrics()
    for _ in range(requests):
        metrics.request("m", "1", "/v2/models/m/infer", 200, 0.002)
    metrics.request("m", "1", "/v2/models/m/infer", 500, 0.5)
    metrics.batch("m", "1", 8 * (worker + 1))


def test_multiprocess_totals_are_the_sum_over_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = str(tmp_path / "prom")
    os.mkdir(folder)
    ctx = multiprocessing.get_context("spawn")
    counts = [5, 7, 11]
    procs = [ctx.Process(target=_worker, args=(folder, i, n)) for i, n in enumerate(counts)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert len(list(Path(folder).glob("counter_*.db"))) == 3

    monkeypatch.setenv(MULTIPROC_ENV, folder)
    for p in procs:  # the documented clean-up for exited workers; counters survive it
        assert p.pid is not None
        mark_process_dead(p.pid)
    body, _ = ServingMetrics().render()
    labels = {"model": "m", "version": "1", "route": "/v2/models/m/infer"}
    assert _value(body, "modelloop_requests_total", **labels, status="200") == sum(counts)
    assert _value(body, "modelloop_requests_total", **labels, status="500") == 3
    assert _value(body, "modelloop_errors_total", **labels) == 3
    assert _value(body, "modelloop_request_seconds_count", **labels) == sum(counts) + 3
    assert _value(body, "modelloop_request_seconds_bucket", **labels, le="0.0025") == sum(counts)
    assert _value(body, "modelloop_batch_size_sum", model="m", version="1") == 8 + 16 + 24


def test_variable_set_after_import_records_into_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `modelloop serve` with one in-process worker sets the variable after
    # prometheus_client was imported; that worker's requests must still be counted.
    folder = tmp_path / "prom"
    folder.mkdir()
    monkeypatch.setenv(MULTIPROC_ENV, str(folder))
    metrics = ServingMetrics()
    metrics.request("m", "1", "/r", 200, 0.01)
    assert list(folder.glob("counter_*.db"))
    body, _ = ServingMetrics().render()
    assert (
        _value(body, "modelloop_requests_total", model="m", version="1", route="/r", status="200")
        == 1
    )
    # Without the variable the next instance is in-memory again and needs no folder.
    monkeypatch.delenv(MULTIPROC_ENV)
    plain = ServingMetrics()
    plain.request("m", "1", "/plain", 200, 0.01)
    body, _ = plain.render()
    assert (
        _value(
            body, "modelloop_requests_total", model="m", version="1", route="/plain", status="200"
        )
        == 1
    )
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(folder))
    assert "/plain" not in generate_latest(registry).decode()
