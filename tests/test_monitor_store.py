"""The monitor store API of the Backend (monitors, windows, metric histories, alerts,
alert events), the same on SQLite and PostgreSQL, in process and over HTTP; and the
HTTP routes' answers to bad requests and to a viewer."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pandas as pd
import pytest

from modelloop import accounts
from modelloop.backends.base import Backend
from modelloop.backends.local_artifacts import LocalStoreBase
from modelloop.entities import AlertUpdate, NewAlert, WindowRecord
from modelloop.errors import Conflict, InvalidArgument, NotFound
from modelloop.settings import Settings
from modelloop.store import Database, audit
from modelloop.tracking.client import Client

if TYPE_CHECKING:
    from conftest import LiveServer

REFERENCE = pd.DataFrame({"age": [21, 35, 47, 52, 63], "income": [1.5, 2.0, 2.5, 3.0, 3.5]})
HOUR_MS = 3_600_000


def _window(seq: int, **metrics: float) -> WindowRecord:
    return WindowRecord(
        seq=seq,
        start_time=seq * HOUR_MS,
        end_time=(seq + 1) * HOUR_MS,
        rows=100 + seq,
        metrics=metrics or {"dataset_drift_share": seq / 10, "drift_score[age]": math.nan},
        details={"drift": {"age": {"p_value": 0.01 * seq, "detected": seq > 1}}},
        summary={"columns": {"age": {"count": 100 + seq}}},
    )


@pytest.fixture
def backend(client: Client) -> Backend:
    """The client's backend with the reference dataset ``ref`` and the monitor ``m``
    (of deployment ``churn``, hourly windows)."""
    client.register_dataset("ref", REFERENCE)
    b = client.backend
    b.create_monitor("m", "churn", "ref", {"window": "1h"}, "watches churn")
    return b


def _fire(seq: int, value: float, deliver: bool = True) -> dict[str, Any]:
    alert = NewAlert(
        alert_id=f"a{seq}",
        key="dataset_drift_share > 0.3",
        rule={"metric": "dataset_drift_share", "op": ">", "threshold": 0.3},
        severity="warning",
        metric="dataset_drift_share",
        column=None,
        value=value,
        threshold=0.3,
        payload={"state": "firing", "window": seq},
    )
    return {"fired": [alert], "deliver": deliver}


# monitors -----------------------------------------------------------------------------


def test_create_get_list_update_delete(client: Client) -> None:
    client.register_dataset("ref", REFERENCE)
    b = client.backend
    rules = ["dataset_drift_share > 0.3"]
    made = b.create_monitor("m", "churn", "ref", {"window": "1h", "rules": rules}, "hourly")
    assert (made.name, made.deployment, made.reference) == ("m", "churn", "ref")
    assert made.config["window"] == {"kind": "time", "size": 3600}
    assert [r["metric"] for r in made.config["rules"]] == ["dataset_drift_share"]
    assert (made.windows, made.state, made.description) == (0, {}, "hourly")
    assert made.created_time == made.updated_time > 0
    assert b.get_monitor("m") == made

    other = b.create_monitor("b-other", "fraud", "ref")
    assert other.config["window"] == {"kind": "time", "size": 3600}  # the default
    assert [m.name for m in b.list_monitors()] == ["b-other", "m"]
    assert b.list_monitors("churn") == [made]
    assert b.list_monitors("nobody") == []

    rows = b.update_monitor("m", config={"window": "500 rows"})
    assert rows.config["window"] == {"kind": "rows", "size": 500}
    assert rows.config["rules"] == []  # a config is replaced whole
    assert rows.description == "hourly"
    assert rows.updated_time >= made.updated_time
    described = b.update_monitor("m", description="by rows")
    assert (described.config, described.description) == (rows.config, "by rows")
    assert b.get_monitor("m") == described

    b.delete_monitor("m")
    with pytest.raises(NotFound, match="monitor 'm' not found"):
        b.get_monitor("m")
    with pytest.raises(NotFound):
        b.delete_monitor("m")
    with pytest.raises(NotFound):
        b.update_monitor("m", description="gone")
    assert [m.name for m in b.list_monitors()] == ["b-other"]


def test_bad_creates_and_updates_are_typed_errors(backend: Backend) -> None:
    with pytest.raises(Conflict, match="monitor 'm' already exists"):
        backend.create_monitor("m", "fraud", "ref")
    with pytest.raises(NotFound, match="nope"):
        backend.create_monitor("m2", "churn", "nope")
    with pytest.raises(InvalidArgument, match="unknown monitor settings: colour"):
        backend.create_monitor("m2", "churn", "ref", {"colour": "red"})
    with pytest.raises(InvalidArgument, match="shorter than a minute"):
        backend.create_monitor("m2", "churn", "ref", {"window": "5s"})
    with pytest.raises(InvalidArgument, match="invalid window"):
        backend.create_monitor("m2", "churn", "ref", {"window": "fortnightly"})
    with pytest.raises(InvalidArgument, match="monitor name"):
        backend.create_monitor("", "churn", "ref")
    with pytest.raises(InvalidArgument, match="drift_share"):
        backend.update_monitor("m", config={"drift_share": 2})
    assert [m.name for m in backend.list_monitors()] == ["m"]
    assert backend.get_monitor("m").config["window"] == {"kind": "time", "size": 3600}


def test_rules_given_as_yaml_text_are_read_by_the_caller(backend: Backend) -> None:
    text = "rules:\n  - accuracy < 0.8\n  - missing_share[*] > 0.05\n"
    found = backend.update_monitor("m", config={"rules": text})
    assert [r["metric"] for r in found.config["rules"]] == ["accuracy", "missing_share"]


# windows and metrics ------------------------------------------------------------------


def test_windows_metrics_and_history(backend: Backend) -> None:
    for seq in (1, 2, 3):
        assert backend.record_monitor_window("m", _window(seq), {"cursor": seq}) == []
    monitor = backend.get_monitor("m")
    assert (monitor.windows, monitor.state) == (3, {"cursor": 3})

    windows = backend.list_monitor_windows("m")
    assert [w.seq for w in windows] == [1, 2, 3]
    second = windows[1]
    assert (second.monitor, second.start_time, second.end_time, second.rows) == (
        "m",
        2 * HOUR_MS,
        3 * HOUR_MS,
        102,
    )
    assert list(second.metrics) == ["dataset_drift_share", "drift_score[age]"]
    assert second.metrics["dataset_drift_share"] == pytest.approx(0.2)
    assert math.isnan(second.metrics["drift_score[age]"])  # NaN in, NaN out
    assert second.details is None and second.summary is None

    full = backend.list_monitor_windows("m", details=True)
    assert full[1].details == {"drift": {"age": {"p_value": 0.02, "detected": True}}}
    assert full[2].summary == {"columns": {"age": {"count": 103}}}
    assert [w.seq for w in backend.list_monitor_windows("m", since_seq=1)] == [2, 3]
    assert [w.seq for w in backend.list_monitor_windows("m", limit=1)] == [1]
    assert [w.seq for w in backend.list_monitor_windows("m", since_seq=1, limit=1)] == [2]
    assert backend.list_monitor_windows("m", since_seq=3) == []

    history = backend.monitor_metric_history("m", ["dataset_drift_share"])
    assert list(history) == ["dataset_drift_share"]
    assert [(s, t) for s, t, _ in history["dataset_drift_share"]] == [
        (1, 2 * HOUR_MS),
        (2, 3 * HOUR_MS),
        (3, 4 * HOUR_MS),
    ]
    assert [val for _, _, val in history["dataset_drift_share"]] == pytest.approx([0.1, 0.2, 0.3])
    everything = backend.monitor_metric_history("m", since_seq=2)
    assert everything == {
        "dataset_drift_share": [(3, 4 * HOUR_MS, pytest.approx(0.3))],
        "drift_score[age]": [(3, 4 * HOUR_MS, None)],  # a stored NaN is no value
    }
    assert backend.monitor_metric_history("m", []) == {}
    assert backend.monitor_metric_history("m", ["never-logged"]) == {}

    with pytest.raises(NotFound):
        backend.list_monitor_windows("nope")
    with pytest.raises(NotFound):
        backend.monitor_metric_history("nope")
    with pytest.raises(NotFound):
        backend.monitor_metric_history("nope", [])
    with pytest.raises(NotFound):
        backend.record_monitor_window("nope", _window(1), {})
    with pytest.raises(InvalidArgument, match="limit"):
        backend.list_monitor_windows("m", limit=0)


def test_a_window_recorded_twice_or_out_of_turn_is_a_conflict_and_writes_nothing(
    backend: Backend,
) -> None:
    backend.record_monitor_window("m", _window(1), {"cursor": 1})
    backend.record_monitor_window("m", _window(2), {"cursor": 2})
    before = backend.list_monitor_windows("m", details=True)
    history = backend.monitor_metric_history("m")

    with pytest.raises(Conflict, match="window 2"):
        backend.record_monitor_window("m", _window(2, other=1.0), {"cursor": 99})
    with pytest.raises(Conflict, match="window 4"):
        backend.record_monitor_window("m", _window(4), {"cursor": 99})
    # The window's compare-and-set succeeds, then a later part of the same write fails:
    # the whole transaction rolls back.
    with pytest.raises(Conflict, match="not firing"):
        backend.record_monitor_window(
            "m", _window(3), {"cursor": 99}, updates=[AlertUpdate("no-such-alert", 1.0)]
        )

    assert backend.get_monitor("m").windows == 2
    assert backend.get_monitor("m").state == {"cursor": 2}
    after = backend.list_monitor_windows("m", details=True)
    assert [(w.seq, w.rows, w.details) for w in after] == [
        (w.seq, w.rows, w.details) for w in before
    ]
    assert backend.monitor_metric_history("m") == history
    assert backend.list_alerts() == [] and backend.list_alert_events() == []
    backend.record_monitor_window("m", _window(3), {"cursor": 3})
    assert backend.get_monitor("m").windows == 3


# alerts -------------------------------------------------------------------------------


def test_an_alert_fires_stays_firing_and_resolves(backend: Backend) -> None:
    fired = backend.record_monitor_window("m", _window(1), {}, **_fire(1, 0.5))
    assert [(e.alert_id, e.state, e.delivery, e.attempts) for e in fired] == [
        ("a1", "firing", "pending", 0)
    ]
    assert fired[0].payload == {"state": "firing", "window": 1}
    assert fired[0].monitor == "m"
    (alert,) = backend.list_alerts(state="firing")
    assert (alert.id, alert.state, alert.value, alert.fired_window) == ("a1", "firing", 0.5, 1)
    assert (alert.rule["op"], alert.severity, alert.threshold) == (">", "warning", 0.3)
    assert alert.resolved_time is None and alert.resolved_window is None

    # Still firing: the value moves, no new event.
    kept = backend.record_monitor_window("m", _window(2), {}, updates=[AlertUpdate("a1", 0.6)])
    assert kept == []
    assert backend.list_alerts(monitor="m")[0].value == 0.6
    assert len(backend.list_alert_events(monitor="m")) == 1

    resolved = backend.record_monitor_window(
        "m",
        _window(3),
        {},
        updates=[AlertUpdate("a1", 0.1, {"state": "resolved"})],
        deliver=True,
    )
    assert [(e.alert_id, e.state, e.delivery) for e in resolved] == [("a1", "resolved", "pending")]
    assert backend.list_alerts(state="firing") == []
    (done,) = backend.list_alerts(state="resolved")
    assert (done.value, done.fired_window, done.resolved_window) == (0.1, 1, 3)
    assert done.resolved_time is not None and done.resolved_time >= done.fired_time
    events = backend.list_alert_events(alert_id="a1")
    assert [e.state for e in events] == ["firing", "resolved"]
    assert [e.id for e in events] == sorted(e.id for e in events)
    with pytest.raises(Conflict, match="not firing"):
        backend.record_monitor_window(
            "m", _window(4), {}, updates=[AlertUpdate("a1", 0.9, {"state": "resolved"})]
        )

    # Without deliver, events are not for delivery; a NaN value is no value.
    quiet = backend.record_monitor_window("m", _window(4), {}, **_fire(4, math.nan, False))
    assert [(e.alert_id, e.delivery) for e in quiet] == [("a4", "none")]
    assert backend.list_alerts(state="firing")[0].value is None
    assert [a.id for a in backend.list_alerts()] == ["a4", "a1"]  # newest first
    assert [a.id for a in backend.list_alerts(limit=1)] == ["a4"]
    assert [e.alert_id for e in backend.list_alert_events(delivery="none")] == ["a4"]
    assert len(backend.list_alert_events(delivery="pending")) == 2
    assert len(backend.list_alert_events(limit=2)) == 2
    assert backend.list_alert_events(monitor="other") == []
    with pytest.raises(InvalidArgument, match="state"):
        backend.list_alerts(state="open")


def test_delivery_attempts_add_up(backend: Backend) -> None:
    (event,) = backend.record_monitor_window("m", _window(1), {}, **_fire(1, 0.5))
    failed = backend.set_alert_delivery(event.id, "failed", 2, "HTTP 503")
    assert (failed.delivery, failed.attempts, failed.last_error) == ("failed", 2, "HTTP 503")
    delivered = backend.set_alert_delivery(event.id, "delivered", 1)
    assert (delivered.delivery, delivered.attempts, delivered.last_error) == ("delivered", 3, "")
    assert backend.list_alert_events(delivery="delivered") == [delivered]
    assert backend.list_alert_events(delivery="pending") == []
    with pytest.raises(NotFound, match="alert event"):
        backend.set_alert_delivery(event.id + 1000, "delivered", 1)
    with pytest.raises(InvalidArgument):
        backend.set_alert_delivery(event.id, "lost", 1)
    assert backend.list_alert_events()[0] == delivered


def test_firing_an_alert_id_that_exists_is_a_conflict(backend: Backend) -> None:
    backend.record_monitor_window("m", _window(1), {}, **_fire(1, 0.5))
    with pytest.raises(Conflict):
        backend.record_monitor_window("m", _window(2), {}, **_fire(1, 0.5))
    assert backend.get_monitor("m").windows == 1


def test_deleting_a_monitor_removes_its_windows_and_alerts(backend: Backend) -> None:
    backend.record_monitor_window("m", _window(1), {"cursor": 1}, **_fire(1, 0.5))
    backend.record_monitor_window("m", _window(2), {"cursor": 2})
    backend.create_monitor("keep", "churn", "ref")
    backend.record_monitor_window("keep", _window(1), {}, fired=[_keep_alert()], deliver=True)

    backend.delete_monitor("m")
    assert [a.monitor for a in backend.list_alerts()] == ["keep"]
    assert [e.monitor for e in backend.list_alert_events()] == ["keep"]
    with pytest.raises(NotFound):
        backend.list_monitor_windows("m")
    again = backend.create_monitor("m", "churn", "ref")
    assert (again.windows, again.state) == (0, {})
    assert backend.list_monitor_windows("m") == []
    assert backend.monitor_metric_history("m") == {}
    backend.record_monitor_window("m", _window(1), {})  # numbering starts over
    assert len(backend.list_monitor_windows("keep")) == 1


def _keep_alert() -> NewAlert:
    return NewAlert("k1", "accuracy < 0.8", {}, "critical", "accuracy", None, 0.7, 0.8, {})


def test_writes_are_audited(backend: Backend, db_url: str) -> None:
    (event,) = backend.record_monitor_window("m", _window(1), {}, **_fire(1, 0.5))
    backend.update_monitor("m", description="changed")
    backend.set_alert_delivery(event.id, "delivered", 1)
    backend.list_monitor_windows("m")  # reads are not audited
    backend.delete_monitor("m")
    db = Database(db_url)
    try:
        with db.read() as conn:
            rows = list(reversed(audit.query(conn, object_type="monitor")))
            deliveries = audit.query(conn, object_type="alert_event")
    finally:
        db.dispose()
    assert [(r.action, r.object_id) for r in rows] == [
        ("monitor.create", "m"),
        ("monitor.window", "m"),
        ("monitor.update", "m"),
        ("monitor.delete", "m"),
    ]
    assert rows[0].details == {"deployment": "churn", "reference": "ref"}
    assert rows[1].details == {
        "seq": 1,
        "rows": 101,
        "fired": ["dataset_drift_share > 0.3"],
        "resolved": [],
    }
    assert [(d.object_id, d.details) for d in deliveries] == [
        (str(event.id), {"delivery": "delivered", "attempts": 1})
    ]


# over HTTP only: bad requests and roles -----------------------------------------------


@pytest.fixture
def web(server_url: str, folder_store: Settings) -> Iterator[httpx.Client]:
    seeded = Client(settings=folder_store)
    try:
        seeded.register_dataset("ref", REFERENCE)
        seeded.backend.create_monitor("m", "churn", "ref")
    finally:
        seeded.close()
    with httpx.Client(base_url=f"{server_url}/api/v1") as c:
        yield c


WINDOW_BODY = {
    "window": {
        "seq": 1,
        "start_time": 0,
        "end_time": 1,
        "rows": 1,
        "metrics": {"a": 1.0},
        "details": {},
        "summary": {},
    },
    "state": {},
}

ALERT_BODY: dict[str, Any] = {
    "alert_id": "a",
    "key": "k",
    "rule": {},
    "severity": "info",
    "metric": "a",
    "column": None,
    "value": 1.0,
    "threshold": 0.5,
    "payload": {},
}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/monitors/m/windows?since_seq=-1", None),
        ("GET", f"/monitors/m/windows?limit={2**70}", None),
        ("GET", "/monitors/m/windows?limit=0", None),
        ("GET", "/monitors/m/windows?since_seq=x", None),
        ("GET", "/monitors/m/windows?details=maybe", None),
        ("GET", "/monitors/m/metrics?since_seq=-3", None),
        ("GET", "/monitors/m/metrics?metric=a%00b", None),
        ("GET", "/monitors/m%00", None),
        ("GET", "/alerts?state=open", None),
        ("GET", f"/alerts?limit={2**64}", None),
        ("GET", "/alert-events?limit=-1", None),
        ("POST", f"/alert-events/{2**70}/delivery", {"delivery": "failed", "attempts": 1}),
        ("POST", "/alert-events/1/delivery", {"delivery": "lost", "attempts": 1}),
        ("POST", "/alert-events/1/delivery", {"delivery": "failed", "attempts": -1}),
        ("POST", "/monitors", {"name": "x", "deployment": "d"}),
        ("POST", "/monitors", {"name": 1, "deployment": "d", "reference": "ref"}),
        ("POST", "/monitors", {"name": "x", "deployment": "d", "reference": "ref", "zz": 1}),
        ("POST", "/monitors", {"name": "x", "deployment": "d", "reference": "ref", "config": 3}),
        ("PATCH", "/monitors/m", {"config": {"rules": "/etc/passwd"}}),
        ("PATCH", "/monitors/m", {"config": {"window": "2s"}}),
        ("POST", "/monitors/m/windows", {**WINDOW_BODY, "state": []}),
        ("POST", "/monitors/m/windows", {**WINDOW_BODY, "deliver": "yes"}),
        ("POST", "/monitors/m/windows", {**WINDOW_BODY, "window": {"seq": "1"}}),
        (
            "POST",
            "/monitors/m/windows",
            {**WINDOW_BODY, "window": {**WINDOW_BODY["window"], "seq": 2**64}},
        ),
        (
            "POST",
            "/monitors/m/windows",
            {**WINDOW_BODY, "window": {**WINDOW_BODY["window"], "metrics": {"a": "high"}}},
        ),
        ("POST", "/monitors/m/windows", {**WINDOW_BODY, "fired": [{"alert_id": "x"}]}),
        (
            "POST",
            "/monitors/m/windows",
            {**WINDOW_BODY, "window": {**WINDOW_BODY["window"], "seq": 2**31}},
        ),
        ("GET", f"/monitors/m/windows?since_seq={2**31}", None),
        (
            "POST",
            "/monitors/m/windows",
            {**WINDOW_BODY, "fired": [{**ALERT_BODY, "alert_id": "x" * 33}]},
        ),
        (
            "POST",
            "/monitors/m/windows",
            {**WINDOW_BODY, "fired": [{**ALERT_BODY, "severity": "a\x00"}]},
        ),
        (
            "POST",
            "/monitors/m/windows",
            {**WINDOW_BODY, "updates": [{"alert_id": "a", "value": "x"}]},
        ),
    ],
)
def test_bad_requests_are_400_json(
    web: httpx.Client, method: str, path: str, body: dict[str, Any] | None
) -> None:
    r = web.request(method, path, json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error_code"] == "INVALID_ARGUMENT"
    assert r.json()["message"]


def test_json_with_nan_literals_is_refused_by_name(web: httpx.Client) -> None:
    raw = b'{"name": "x", "deployment": "d", "reference": "ref", "config": {"t": [1, NaN]}}'
    r = web.post("/monitors", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert "t[1]" in r.json()["message"]
    window = b'{"window": {"seq": 1, "start_time": 0, "end_time": 1, "rows": 1, '
    window += b'"metrics": {"a": NaN, "b": Infinity}, "details": {}, "summary": {}}, "state": {}}'
    r = web.post(
        "/monitors/m/windows", content=window, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 201, r.text
    listed = web.get("/monitors/m/windows").json()["windows"]
    assert listed[0]["metrics"] == {"a": None, "b": None}


def test_details_json_cannot_carry_are_an_invalid_argument(backend: Backend) -> None:
    window = WindowRecord(1, 0, 1, 1, {}, {"p": math.inf}, {})
    # Over HTTP the request body names the field; locally the store names the part.
    with pytest.raises(InvalidArgument, match=r"p is inf|NaN or infinity"):
        backend.record_monitor_window("m", window, {})
    assert backend.get_monitor("m").windows == 0


def test_a_viewer_reads_monitors_but_cannot_change_them(
    live_server: LiveServer, tmp_path: Path
) -> None:
    folder = tmp_path / "store"
    store = Settings(tracking_uri=str(folder), capture_git=False, capture_environment=False)
    seeded = Client(settings=store)
    try:
        seeded.register_dataset("ref", REFERENCE)
        seeded.backend.create_monitor("m", "churn", "ref")
        (event,) = seeded.backend.record_monitor_window("m", _window(1), {}, **_fire(1, 0.5))
        local = seeded.backend
        assert isinstance(local, LocalStoreBase)
        db = local.db
        accounts.create_user(db, "vera", "viewer", "pw-vera-123456")
        accounts.create_user(db, "eddie", "editor", "pw-eddie-123456")
    finally:
        seeded.close()
    writes = [
        ("POST", "/monitors", {"name": "n", "deployment": "d", "reference": "ref"}),
        ("PATCH", "/monitors/m", {"description": "x"}),
        (
            "POST",
            "/monitors/m/windows",
            {**WINDOW_BODY, "window": {**WINDOW_BODY["window"], "seq": 2}},
        ),
        ("POST", f"/alert-events/{event.id}/delivery", {"delivery": "failed", "attempts": 1}),
        ("DELETE", "/monitors/m", None),
    ]
    reads = [
        "/monitors",
        "/monitors/m",
        "/monitors/m/windows",
        "/monitors/m/metrics",
        "/alerts",
        "/alert-events",
    ]
    with live_server.serving(store) as url:
        vera = httpx.Client(base_url=f"{url}/api/v1", auth=("vera", "pw-vera-123456"))
        eddie = httpx.Client(base_url=f"{url}/api/v1", auth=("eddie", "pw-eddie-123456"))
        with vera, eddie:
            for path in reads:
                assert vera.get(path).status_code == 200, path
            for method, path, body in writes:
                r = vera.request(method, path, json=body)
                assert r.status_code == 403, (method, path, r.text)
                assert r.json()["error_code"] == "PERMISSION_DENIED"
            assert vera.get("/monitors/m").json()["description"] == ""
            for method, path, body in writes:
                r = eddie.request(method, path, json=body)
                assert r.is_success, (method, path, r.text)


def test_metrics_added_to_a_scored_window_once_with_their_alerts_and_state(
    backend: Backend,
) -> None:
    backend.record_monitor_window("m", _window(1), {"until": 7})
    events = backend.record_monitor_metrics(
        "m",
        1,
        {"accuracy": 0.5, "labelled_share": math.nan},
        {"label_streaks": {}},
        **_fire(1, 0.5),
    )
    assert [(e.state, e.delivery) for e in events] == [("firing", "pending")]
    (window,) = backend.list_monitor_windows("m")
    assert window.metrics["accuracy"] == 0.5 and math.isnan(window.metrics["labelled_share"])
    # The other pass's state is kept, this pass's is merged in.
    assert backend.get_monitor("m").state == {"until": 7, "label_streaks": {}}
    assert backend.list_alerts(monitor="m")[0].fired_window == 1
    with pytest.raises(Conflict):
        backend.record_monitor_metrics("m", 1, {"accuracy": 0.9}, {})
    assert backend.list_monitor_windows("m")[0].metrics["accuracy"] == 0.5
    with pytest.raises(NotFound):
        backend.record_monitor_metrics("m", 2, {"accuracy": 0.9}, {})
    with pytest.raises(NotFound):
        backend.record_monitor_metrics("nope", 1, {"accuracy": 0.9}, {})
