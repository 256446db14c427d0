"""Monitors end to end: prediction logs written by the real logger, scored window by
window into the store, alerts fired once, resolved, and delivered to a real webhook."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from modelloop.cli.app import app as cli
from modelloop.errors import InvalidArgument, NotFound
from modelloop.monitoring.monitor import predictions_uri
from modelloop.serving.prediction_log import PredictionLogger
from modelloop.settings import Settings
from modelloop.tracking.client import Client

HOUR = 3_600_000
# Windows well in the past, so every one of them is closed.
BASE = (1_700_000_000_000 // HOUR) * HOUR


def _reference(rows: int = 2000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(0, 1, rows)
    return pd.DataFrame(
        {
            "x1": x1,
            "x2": rng.uniform(0, 10, rows),
            "city": rng.choice(["paris", "lyon", "nice"], rows, p=[0.5, 0.3, 0.2]),
            "y": (x1 > 0).astype(int),
        }
    )


def _traffic(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    frame = _reference(rows, seed).drop(columns="y")
    frame["x1"] += shift
    return frame


def _log_hours(
    client: Client, hours: list[tuple[int, float]], *, rows: int = 400, deployment: str = "churn"
) -> list[str]:
    """Log ``rows`` predictions (16 per request) in each (hour index, x1 shift)."""
    logger = PredictionLogger(predictions_uri(client), deployment=deployment)
    ids = []
    try:
        for hour, shift in hours:
            frame = _traffic(rows, seed=1000 + hour, shift=shift)
            for i, start in enumerate(range(0, rows, 16)):
                part = frame.iloc[start : start + 16].reset_index(drop=True)
                request_id = f"h{hour}-r{i}"
                ids.append(request_id)
                logger.log(
                    request_id=request_id,
                    route="primary",
                    model_name="churn",
                    model_version="1",
                    inputs=part,
                    outputs=(part["x1"].to_numpy() > 0).astype(np.int64),
                    latency_ms=1.0,
                    time_ms=BASE + hour * HOUR + i * 1000,
                )
    finally:
        logger.close()
    return ids


@pytest.fixture
def client(folder_store: Settings) -> Iterator[Client]:
    c = Client(settings=folder_store)
    c.register_dataset("churn-ref", _reference())
    yield c
    c.close()


# "now" for the runs: every logged window is closed and every log file older than grace.
LATER = int(time.time() * 1000) + 2 * HOUR


def test_windows_are_scored_once_and_new_logs_add_exactly_the_new_windows(
    client: Client,
) -> None:
    client.create_monitor("m", "churn", "churn-ref", window="1h", target="y")
    _log_hours(client, [(0, 0.0), (1, 0.0), (2, 0.0)])
    # The file was just written: with the default grace it waits for the next run.
    assert client.run_monitor("m").windows == []
    first = client.run_monitor("m", now_ms=LATER)
    assert [(w.seq, w.start_ms, w.rows) for w in first.windows] == [
        (1, BASE, 400),
        (2, BASE + HOUR, 400),
        (3, BASE + 2 * HOUR, 400),
    ]
    assert client.run_monitor("m", now_ms=LATER).windows == []
    _log_hours(client, [(3, 0.0)])
    again = client.run_monitor("m", now_ms=LATER + 1)
    assert [w.seq for w in again.windows] == [4]
    assert client.get_monitor("m").windows == 4
    history = client.monitor_history("m", ["rows", "dataset_drift_share"])
    assert history["rows"].tolist() == [400.0] * 4
    assert list(history["window_end"].dt.as_unit("ms").astype("int64")) == [
        BASE + (h + 1) * HOUR for h in range(4)
    ]


def test_late_rows_for_a_scored_window_are_counted_not_rescored(client: Client) -> None:
    client.create_monitor("m", "churn", "churn-ref", window="1h", target="y")
    _log_hours(client, [(0, 0.0), (1, 0.0)])
    client.run_monitor("m", now_ms=LATER)
    _age_files(client, BASE + 2 * HOUR - 1)  # as if written when those rows were served
    _log_hours(client, [(1, 0.0), (2, 0.0)])  # hour 1 again: too late
    run = client.run_monitor("m", now_ms=LATER + 1)
    assert [w.seq for w in run.windows] == [3]
    window = client.monitor_windows("m", since_seq=2)[0]
    assert window.metrics["late_rows"] == 400.0


def _age_files(client: Client, write_ms: int) -> None:
    """Rename the prediction log files written just now as if written at ``write_ms``
    (files already aged keep their names)."""
    root = Path(predictions_uri(client))
    for path in root.glob("deployment=*/date=*/part-*.parquet"):
        _, written, rest = path.name.split("-", 2)
        if int(written) > time.time() * 1000 - HOUR:
            path.rename(path.with_name(f"part-{write_ms}-{rest}"))


class _Receiver:
    """A loopback webhook receiver that fails the first ``failures`` POSTs."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.bodies: list[dict[str, Any]] = []
        self.attempts = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                body = self.rfile.read(length)
                outer.attempts += 1
                if outer.attempts <= outer.failures:
                    self.send_response(503)
                    self.end_headers()
                    return
                outer.bodies.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook?token=s3cret"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_drift_fires_one_alert_while_it_holds_resolves_and_reaches_the_webhook(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("modelloop.monitoring.webhook.time.sleep", lambda s: None)
    receiver = _Receiver(failures=2)
    try:
        client.create_monitor(
            "m",
            "churn",
            "churn-ref",
            window="1h",
            target="y",
            rules=[
                {"rule": "drifted[x1] >= 1", "severity": "critical", "name": "x1 drift"},
                "missing_share[*] > 0.5",
            ],
            webhook=receiver.url,
        )
        # Two calm hours, three shifted, then calm again.
        _log_hours(client, [(0, 0), (1, 0), (2, 2.0), (3, 2.0), (4, 2.0), (5, 0), (6, 0)])
        run = client.run_monitor("m", now_ms=LATER)
        by_seq = {w.seq: w for w in run.windows}
        assert [by_seq[s].fired for s in range(1, 8)] == [
            [],
            [],
            ["drifted[x1] >= 1"],
            [],
            [],
            [],
            [],
        ]
        assert all("x1" in by_seq[s].drifted_columns for s in (3, 4, 5))
        assert not any("x1" in by_seq[s].drifted_columns for s in (1, 2, 6, 7))
        assert len(by_seq[6].resolved) == 1 and by_seq[7].resolved == []
        alerts = client.list_alerts(monitor="m")
        assert len(alerts) == 1
        alert = alerts[0]
        assert (alert.state, alert.severity, alert.fired_window, alert.resolved_window) == (
            "resolved",
            "critical",
            3,
            6,
        )
        # Delivered after two 503s: fired, then resolved, in order, once each.
        assert run.delivered == 2
        assert receiver.attempts == 4
        assert [b["state"] for b in receiver.bodies] == ["firing", "resolved"]
        assert {b["id"] for b in receiver.bodies} == {alert.id}
        events = client.backend.list_alert_events(monitor="m")
        assert [(e.state, e.delivery) for e in events] == [
            ("firing", "delivered"),
            ("resolved", "delivered"),
        ]
        assert events[0].attempts == 3 and events[1].attempts == 1
        # The window with drift keeps its full results.
        details = client.monitor_windows("m", since_seq=2, limit=1, details=True)[0].details
        assert details is not None and details["drift"]["columns"]["x1"]["drifted"]
    finally:
        receiver.close()


def test_an_unreachable_webhook_keeps_events_pending_for_the_next_run(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("modelloop.monitoring.webhook.time.sleep", lambda s: None)
    receiver = _Receiver(failures=10**6)
    try:
        client.create_monitor(
            "m", "churn", "churn-ref", target="y", rules=["drifted[x1] >= 1"], webhook=receiver.url
        )
        _log_hours(client, [(0, 3.0)])
        run = client.run_monitor("m", now_ms=LATER)
        assert run.delivered == 0 and run.failed == 1
        (event,) = client.backend.list_alert_events(monitor="m")
        assert event.delivery == "pending" and event.attempts >= 2
        assert "s3cret" not in event.last_error
        receiver.failures = 0
        again = client.run_monitor("m", now_ms=LATER)
        assert again.windows == [] and again.delivered == 1
        assert receiver.bodies[0]["state"] == "firing"
    finally:
        receiver.close()


def test_row_windows_take_n_rows_in_order_and_keep_the_rest(client: Client) -> None:
    client.create_monitor("m", "churn", "churn-ref", window="300 rows", target="y")
    _log_hours(client, [(0, 0.0), (1, 0.0)])  # 800 rows
    run = client.run_monitor("m", now_ms=LATER)
    assert [w.rows for w in run.windows] == [300, 300]
    _log_hours(client, [(2, 0.0)])  # 200 left over + 400 = 600
    run = client.run_monitor("m", now_ms=LATER + 1)
    assert [w.rows for w in run.windows] == [300, 300]
    assert client.run_monitor("m", now_ms=LATER + 2).windows == []


def test_missing_and_all_null_columns_are_reported_not_crashing(client: Client) -> None:
    client.create_monitor("m", "churn", "churn-ref", target="y")
    logger = PredictionLogger(predictions_uri(client), deployment="churn")
    frame = _traffic(200, 5).drop(columns="x2")
    frame["city"] = None
    logger.log(
        request_id="r1", route="primary", model_name="churn", model_version="1",
        inputs=frame, outputs=np.zeros(200, dtype=np.int64), latency_ms=1.0, time_ms=BASE,
    )  # fmt: skip
    logger.close()
    (window,) = client.run_monitor("m", now_ms=LATER).windows
    stored = client.monitor_windows("m", details=True)[0]
    assert stored.metrics["missing_columns"] == 1.0
    assert stored.metrics["missing_share[city]"] == 1.0
    assert stored.details is not None
    assert stored.details["quality"]["missing_columns"] == ["x2"]
    columns = stored.details["drift"]["columns"]
    assert columns["x2"]["status"] == "not enough data"
    assert columns["city"]["status"] == "not enough data"
    assert columns["x1"]["status"] == "ok"
    assert window.rows == 200


def test_performance_from_feedback_joined_by_request_id(client: Client) -> None:
    client.create_monitor("m", "churn", "churn-ref", target="y")
    ids = _log_hours(client, [(0, 0.0)], rows=160)
    logger = PredictionLogger(predictions_uri(client), deployment="churn")
    truth = _traffic(160, seed=1000)["x1"].to_numpy() > 0
    # Ground truth for the first half of the requests; one in four labels wrong.
    for i, request_id in enumerate(ids[:5]):
        labels = truth[i * 16 : (i + 1) * 16].astype(int)
        labels[::4] = 1 - labels[::4]
        logger.log_feedback(request_id, labels.tolist(), BASE + HOUR // 2)
    logger.close()
    client.run_monitor("m", now_ms=LATER)
    metrics = client.monitor_windows("m")[0].metrics
    assert metrics["labelled_share"] == pytest.approx(0.5)
    assert metrics["accuracy"] == pytest.approx(0.75)


def test_bad_monitor_input_is_refused_by_name(client: Client) -> None:
    with pytest.raises(NotFound, match="nope"):
        client.create_monitor("m", "churn", "nope")
    with pytest.raises(InvalidArgument, match="window"):
        client.create_monitor("m", "churn", "churn-ref", window="soon")
    with pytest.raises(InvalidArgument, match="severity"):
        client.create_monitor("m", "churn", "churn-ref", rules=[{"rule": "x > 1", "severity": "?"}])
    with pytest.raises(InvalidArgument, match="webhook"):
        client.create_monitor("m", "churn", "churn-ref", webhook="file:///etc/passwd")
    client.create_monitor("m", "churn", "churn-ref", target="nope")
    _log_hours(client, [(0, 0.0)])
    with pytest.raises(InvalidArgument, match="nope"):
        client.run_monitor("m", now_ms=LATER)
    assert client.get_monitor("m").windows == 0


def test_cli_monitor_create_run_show_history_and_alerts(
    client: Client, folder_store: Settings, tmp_path: Any
) -> None:
    runner = CliRunner()
    uri = ["--tracking-uri", folder_store.tracking_uri]
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - rule: dataset_drift_share >= 0.3\n    severity: critical\n")
    made = runner.invoke(
        cli,
        [
            *uri,
            "monitor",
            "create",
            "m",
            "--deployment",
            "churn",
            "--reference",
            "churn-ref",
            "--window",
            "1h",
            "--rules",
            str(rules),
            "--target",
            "y",
            "--grace",
            "0",
        ],
    )
    assert made.exit_code == 0, made.output
    assert "windows of 1h" in made.output
    _log_hours(client, [(0, 0.0), (1, 3.0)])
    # The CLI runs at the real time: these windows are long closed, and grace is 0.
    ran = runner.invoke(cli, [*uri, "monitor", "run", "m"])
    assert ran.exit_code == 0, ran.output
    assert "2 new window(s) scored" in ran.output
    assert "fired" in ran.output, ran.output
    shown = runner.invoke(cli, [*uri, "monitor", "show", "m"])
    assert shown.exit_code == 0 and "2 scored" in " ".join(shown.output.split())
    hist = runner.invoke(cli, [*uri, "monitor", "history", "m", "--metric", "rows", "--json"])
    assert [r["rows"] for r in json.loads(hist.output)] == [400.0, 400.0]
    listed = runner.invoke(cli, [*uri, "alerts", "list", "--firing", "--json"])
    assert listed.exit_code == 0, listed.output
    (alert,) = json.loads(listed.output)
    assert (alert["key"], alert["severity"], alert["state"], alert["fired_window"]) == (
        "dataset_drift_share >= 0.3",
        "critical",
        "firing",
        2,
    )
    missing = runner.invoke(cli, [*uri, "monitor", "run", "nope"])
    assert missing.exit_code == 1 and "not found" in missing.output


def test_report_merges_stored_summaries_and_shows_drift_history_and_alerts(
    client: Client, tmp_path: Path
) -> None:
    client.create_monitor(
        "m", "churn", "churn-ref", target="y", rules=["drifted[x1] >= 1", "accuracy < 0.5"]
    )
    # No window yet: still a valid (empty) report.
    assert "<html" in client.monitor_report("m").lower()
    _log_hours(client, [(0, 0.0), (1, 2.0)])
    client.run_monitor("m", now_ms=LATER)
    page = client.monitor_report("m", path=tmp_path / "r.html")
    assert (tmp_path / "r.html").read_text(encoding="utf-8") == page
    assert "https://" not in page and "http://" not in page.replace("http://www.w3.org", "")
    for column in ("x1", "x2", "city"):
        assert column in page
    data = json.loads(client.monitor_report("m", output_format="json"))
    assert data["window"]["seq"] == 2 and data["window"]["merged_windows"] == 2
    assert data["drift"]["columns"]["x1"]["drifted"] is True
    assert set(data["histograms"]) == {"x1", "x2", "city"}
    # Histograms merge both windows: 800 current rows against the 2000 reference rows.
    current = data["histograms"]["x1"]["current"]
    assert sum(current["counts"]) == pytest.approx(800)
    assert [v for _, v in data["history"]["rows"]] == [400.0, 400.0]
    assert [a["expression"] for a in data["alerts"]] == ["drifted[x1] >= 1"]
    last = json.loads(client.monitor_report("m", output_format="json", last=1))
    assert sum(last["histograms"]["x1"]["current"]["counts"]) == pytest.approx(400)
    with pytest.raises(InvalidArgument, match="last"):
        client.monitor_report("m", last=0)


def test_prediction_drift_and_estimated_performance_use_the_served_version(
    client: Client,
) -> None:
    from sklearn.linear_model import LogisticRegression

    reference = _reference()
    model = LogisticRegression().fit(reference[["x1", "x2"]], reference["y"])
    run = client.create_run(client.create_experiment("churn"))
    info = client.log_model(run.run_id, model, "model", input_example=reference[["x1", "x2"]][:3])
    client.end_run(run.run_id)
    assert client.register_model(info.model_uri, "churn").version == 1
    client.create_monitor("m", "churn", "churn-ref", target="y")
    logger = PredictionLogger(predictions_uri(client), deployment="churn")
    for hour, shift in ((0, 0.0), (1, 1.5)):
        frame = _traffic(400, seed=50 + hour, shift=shift)
        logger.log(
            request_id=f"h{hour}", route="primary", model_name="churn", model_version="1",
            inputs=frame, outputs=model.predict(frame[["x1", "x2"]]), latency_ms=1.0,
            time_ms=BASE + hour * HOUR,
        )  # fmt: skip
        labels = (frame["x1"].to_numpy() - shift > 0).astype(int)  # the world did not change
        logger.log_feedback(f"h{hour}", labels.tolist(), BASE + hour * HOUR + 1)
    logger.close()
    result = client.run_monitor("m", now_ms=LATER)
    assert result.notes == []
    calm, shifted = (w.metrics for w in client.monitor_windows("m"))
    assert calm["prediction_drifted[prediction]"] == 0.0
    assert shifted["prediction_drifted[prediction]"] == 1.0
    # The model is right on calm traffic; CBPE estimates that before any label ...
    assert calm["accuracy"] > 0.95 and calm["estimated_accuracy"] > 0.9
    # ... and, being confidence-based, cannot see that shifted inputs are now mislabelled:
    # the realised accuracy drops while the estimate stays high (why both are shown).
    assert shifted["accuracy"] < 0.8 < shifted["estimated_accuracy"]
    assert calm["signature_violation_share"] == 0.0
    # Inputs the served version's signature refuses: counted, and no estimate.
    logger = PredictionLogger(predictions_uri(client), deployment="churn")
    broken = _traffic(100, seed=70).assign(x2="n/a")
    logger.log(
        request_id="h2", route="primary", model_name="churn", model_version="1",
        inputs=broken, outputs=np.zeros(100, dtype=np.int64), latency_ms=1.0,
        time_ms=BASE + 2 * HOUR,
    )  # fmt: skip
    logger.close()
    again = client.run_monitor("m", now_ms=LATER + 1)
    third = client.monitor_windows("m", since_seq=2)[0].metrics
    assert third["signature_violation_share"] == 1.0
    assert third["type_mismatch_share[x2]"] == 1.0 and third["missing_share[x2]"] == 1.0
    assert "estimated_accuracy" not in third
    assert any("estimated performance" in note for note in again.notes)


def test_server_metrics_expose_each_monitors_newest_window_and_firing_alerts(
    live_server: Any, folder_store: Settings, client: Client
) -> None:
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    client.create_monitor("m", "churn", "churn-ref", target="y", rules=["drifted[x1] >= 1"])
    client.create_monitor("idle", "churn", "churn-ref", target="y")
    _log_hours(client, [(0, 0.0), (1, 2.5)])
    client.run_monitor("m", now_ms=LATER)
    with live_server.serving(folder_store) as url:
        text = httpx.get(f"{url}/metrics").text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    base = (("deployment", "churn"), ("monitor", "m"))
    assert samples[("modelloop_monitor_windows", base)] == 2
    assert (
        samples[("modelloop_monitor_windows", (("deployment", "churn"), ("monitor", "idle")))] == 0
    )
    x1 = tuple(sorted((*base, ("column", "x1"))))
    assert samples[("modelloop_monitor_drift_score", x1)] > 0.1
    share = samples[("modelloop_monitor_dataset_drift_share", base)]
    assert share == pytest.approx(1 / 3)
    rows = tuple(sorted((*base, ("metric", "rows"), ("column", ""))))
    assert samples[("modelloop_monitor_metric", rows)] == 400
    assert samples[("modelloop_alerts_firing", (("monitor", "m"), ("severity", "warning")))] == 1
    assert samples[("modelloop_monitor_window_end_seconds", base)] == (BASE + 2 * HOUR) / 1000


def test_labels_that_come_late_are_counted_after_the_label_delay(client: Client) -> None:
    client.create_monitor(
        "m",
        "churn",
        "churn-ref",
        target="y",
        rules=["accuracy < 0.8"],
        label_delay_seconds=6 * 3600,
    )
    ids = []
    for hour, shift in ((0, 0.0), (1, 2.0)):
        ids.append(_log_hours(client, [(hour, shift)]))
        _age_files(client, BASE + (hour + 1) * HOUR - 1)  # flushed as the hour ended
    # Scored an hour later: drift is known, labels are not due yet.
    first = client.run_monitor("m", now_ms=BASE + 3 * HOUR)
    assert [w.seq for w in first.windows] == [1, 2] and first.labelled == []
    assert "accuracy" not in client.monitor_windows("m")[0].metrics
    # Ground truth arrives the next morning: right for hour 0, shifted traffic
    # labelled by the old rule in hour 1 (the model now errs there).
    logger = PredictionLogger(predictions_uri(client), deployment="churn")
    for hour, shift, request_ids in ((0, 0.0, ids[0]), (1, 2.0, ids[1])):
        frame = _traffic(400, seed=1000 + hour, shift=shift)
        truth = (frame["x1"].to_numpy() - shift > 0).astype(int)
        for i, request_id in enumerate(request_ids):
            labels = truth[i * 16 : (i + 1) * 16].tolist()
            logger.log_feedback(request_id, labels, BASE + 20 * HOUR)
    logger.close()
    second = client.run_monitor("m", now_ms=LATER)
    assert [(r.seq, r.labelled_share) for r in second.labelled] == [(1, 1.0), (2, 1.0)]
    calm, shifted = (w.metrics for w in client.monitor_windows("m"))
    assert calm["accuracy"] == 1.0 and shifted["accuracy"] < 0.8
    assert second.labelled[1].fired == ["accuracy < 0.8"]
    (alert,) = client.list_alerts(monitor="m")
    assert (alert.fired_window, alert.state) == (2, "firing")
    # Each window's performance is computed once.
    assert client.run_monitor("m", now_ms=LATER + 1).labelled == []
    with pytest.raises(InvalidArgument, match="time windows"):
        client.create_monitor(
            "rows", "churn", "churn-ref", target="y", window="100 rows", label_delay_seconds=60
        )


def test_a_monitor_runs_against_a_remote_tracking_server(
    server_url: str, folder_store: Settings, client: Client
) -> None:
    from modelloop.backends.factory import resolve_stores

    _log_hours(client, [(0, 0.0), (1, 2.0)])
    artifacts = resolve_stores(folder_store.tracking_uri, folder_store.artifacts_uri)[1]
    remote = Client(settings=folder_store.replace(tracking_uri=server_url, artifacts_uri=artifacts))
    try:
        remote.create_monitor("m", "churn", "churn-ref", target="y", rules=["drifted[x1] >= 1"])
        run = remote.run_monitor("m", now_ms=LATER)
        assert [w.seq for w in run.windows] == [1, 2]
        assert run.windows[1].fired == ["drifted[x1] >= 1"]
        assert remote.run_monitor("m", now_ms=LATER).windows == []
        report = json.loads(remote.monitor_report("m", output_format="json"))
        assert report["window"]["seq"] == 2
    finally:
        remote.close()
    # The same store seen locally.
    assert client.get_monitor("m").windows == 2
    remote_less = Client(settings=folder_store.replace(tracking_uri=server_url, artifacts_uri=""))
    try:
        with pytest.raises(InvalidArgument, match="artifact"):
            remote_less.run_monitor("m", now_ms=LATER)
    finally:
        remote_less.close()


# BASE's day is odd since the epoch, so the 2-day window holding it ends with it.
@pytest.mark.parametrize(
    ("window", "rows"), [("1d", [800, 800]), ("2d", [800, 800]), ("90m", None)]
)
def test_windows_align_to_utc_and_may_span_day_partitions(
    client: Client, window: str, rows: list[int] | None
) -> None:
    client.create_monitor("m", "churn", "churn-ref", window=window, target="y")
    _log_hours(client, [(0, 0.0), (1, 0.0), (2, 0.0), (3, 0.0)])  # hour 2 is the next day
    scored = client.run_monitor("m", now_ms=LATER).windows
    assert sum(w.rows for w in scored) == 1600
    size = {"1d": 24, "2d": 48, "90m": 1.5}[window] * HOUR
    assert all(w.start_ms % size == 0 and w.end_ms - w.start_ms == size for w in scored)
    if rows is not None:
        assert [w.rows for w in scored] == rows


def test_update_monitor_changes_rules_and_settings_for_the_next_run(
    client: Client, folder_store: Settings
) -> None:
    client.create_monitor("m", "churn", "churn-ref", target="y", rules=["drifted[x1] >= 1"])
    _log_hours(client, [(0, 2.0)])
    assert client.run_monitor("m", now_ms=LATER).windows[0].fired == ["drifted[x1] >= 1"]
    updated = client.update_monitor("m", {"rules": ["drifted[x2] >= 1"], "drift_share": 0.3})
    assert [r["metric"] for r in updated.config["rules"]] == ["drifted"]
    assert updated.config["rules"][0]["column"] == "x2" and updated.config["drift_share"] == 0.3
    assert updated.windows == 1  # history kept
    _log_hours(client, [(1, 2.0)])
    run = client.run_monitor("m", now_ms=LATER + 1)
    # The x1 alert's rule is gone: resolved as such; the x2 rule does not hold.
    assert run.windows[0].fired == [] and len(run.windows[0].resolved) == 1
    assert run.windows[0].dataset_drift  # 1 of 3 columns >= 0.3
    with pytest.raises(InvalidArgument, match="unknown monitor settings"):
        client.update_monitor("m", {"windw": "1d"})
    runner = CliRunner()
    uri = ["--tracking-uri", folder_store.tracking_uri]
    done = runner.invoke(cli, [*uri, "monitor", "update", "m", "--no-rules", "--grace", "5"])
    assert done.exit_code == 0, done.output
    config = client.get_monitor("m").config
    assert config["rules"] == [] and config["grace_seconds"] == 5


def test_a_webhook_named_by_an_environment_variable_is_never_stored(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = _Receiver(failures=0)
    try:
        client.create_monitor(
            "m", "churn", "churn-ref", target="y", rules=["drifted[x1] >= 1"],
            webhook="env:CHURN_HOOK",
        )  # fmt: skip
        assert client.get_monitor("m").config["webhook"] == "env:CHURN_HOOK"
        _log_hours(client, [(0, 3.0)])
        monkeypatch.delenv("CHURN_HOOK", raising=False)
        run = client.run_monitor("m", now_ms=LATER)
        assert run.windows[0].fired and run.delivered == 0
        assert any("CHURN_HOOK" in note for note in run.notes)
        monkeypatch.setenv("CHURN_HOOK", receiver.url)
        assert client.run_monitor("m", now_ms=LATER).delivered == 1
        assert receiver.bodies[0]["state"] == "firing"
    finally:
        receiver.close()
    with pytest.raises(InvalidArgument, match="env:VARIABLE"):
        client.create_monitor("bad", "churn", "churn-ref", webhook="env:1bad")
