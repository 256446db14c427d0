"""Prometheus metrics of the inference server, correct with several worker processes.

Each :class:`ServingMetrics` owns its own ``CollectorRegistry`` (no global registry:
tests and several apps in one process do not collide). When
``PROMETHEUS_MULTIPROC_DIR`` is set (``modelloop serve`` sets it to a fresh folder
for its uvicorn workers), every worker records into memory-mapped files in that
folder and :meth:`ServingMetrics.render` aggregates all of them, so ``/metrics``
answered by any worker reports the totals over all workers.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)

__all__ = ["LATENCY_BUCKETS", "BATCH_BUCKETS", "ServingMetrics", "mark_process_dead"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Model latencies are typically sub-millisecond to a few hundred ms.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)
BATCH_BUCKETS = tuple(float(2**i) for i in range(10))  # 1, 2, 4, ..., 512


def _multiproc_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def mark_process_dead(pid: int, path: str | None = None) -> None:
    """Forget a dead worker's live-gauge files (call from the process manager when a
    worker exits); its counters and histograms stay in the totals, as Prometheus
    expects of counters."""
    folder = path or _multiproc_dir()
    if folder:
        multiprocess.mark_process_dead(pid, folder)  # type: ignore[no-untyped-call]


_installed: list[object] = []  # the file-backed value class this module switched to


def _sync_value_class(multiprocess_mode: bool) -> None:
    """Make prometheus_client's value storage match the environment variable.

    The library picks file-backed or in-memory values once, at import; ``modelloop
    serve`` running a single in-process worker sets the variable after that import,
    and its requests would never reach the files ``render`` aggregates. So switch to
    what the library would have chosen, and switch back if we switched and the
    variable is gone again (file-backed values need the folder to exist)."""
    if multiprocess_mode and values.ValueClass is values.MutexValue:
        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
        _installed[:] = [values.ValueClass]
    elif not multiprocess_mode and _installed and values.ValueClass is _installed[0]:
        values.ValueClass = values.MutexValue
        _installed.clear()


class ServingMetrics:
    """Request counts, latencies, errors and batch sizes per model, version and route.

    Create one per process; in multiprocess mode the metrics are file-backed and
    :meth:`render` reports the sum over every process writing to the folder."""

    def __init__(self) -> None:
        self.multiprocess_dir = _multiproc_dir()
        _sync_value_class(self.multiprocess_dir is not None)
        self.registry = CollectorRegistry(auto_describe=True)
        self._requests = Counter(
            "modelloop_requests",
            "Inference requests by model, version, route and HTTP status.",
            ["model", "version", "route", "status"],
            registry=self.registry,
        )
        self._seconds = Histogram(
            "modelloop_request_seconds",
            "Inference request latency in seconds.",
            ["model", "version", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._errors = Counter(
            "modelloop_errors",
            "Inference requests that failed with a server error (HTTP status >= 500).",
            ["model", "version", "route"],
            registry=self.registry,
        )
        self._batch = Histogram(
            "modelloop_batch_size",
            "Requests' rows per model call after adaptive batching.",
            ["model", "version"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )

    def request(self, model: str, version: str, route: str, status: int, seconds: float) -> None:
        """Record one finished request."""
        version = str(version)
        self._requests.labels(model, version, route, str(status)).inc()
        self._seconds.labels(model, version, route).observe(seconds)
        if status >= 500:
            self._errors.labels(model, version, route).inc()

    def batch(self, model: str, version: str, size: int) -> None:
        """Record one model call on a batch of ``size`` rows."""
        self._batch.labels(model, str(version)).observe(size)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type, for ``GET /metrics``."""
        if self.multiprocess_dir:
            # A fresh registry per scrape: the collector reads every worker's files.
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
