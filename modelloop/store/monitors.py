"""Monitors, their scored windows and metrics, alerts and alert events."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update
from sqlalchemy.exc import IntegrityError

from modelloop.entities import (
    Alert,
    AlertEvent,
    AlertUpdate,
    Monitor,
    MonitorWindow,
    NewAlert,
    WindowRecord,
)
from modelloop.errors import Conflict, InvalidArgument, NotFound
from modelloop.store._util import now_ms
from modelloop.store.schema import alert_events, alerts, monitor_metrics, monitor_windows, monitors

# One delivery call reports at most this many attempts (the column is 32-bit).
MAX_ATTEMPTS_PER_CALL = 10_000

__all__ = [
    "create",
    "delete",
    "get",
    "list_alerts",
    "list_all",
    "list_events",
    "metric_history",
    "record_window",
    "record_window_metrics",
    "set_delivery",
    "update_config",
    "windows",
]


def _json(value: Any, what: str = "value") -> str:
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False, separators=(",", ":"))
    except ValueError:
        raise InvalidArgument(f"{what} holds NaN or infinity, which JSON cannot store") from None
    except TypeError as exc:
        raise InvalidArgument(f"{what} is not JSON-serialisable: {exc}") from None


def _monitor(r: Row[Any]) -> Monitor:
    return Monitor(
        name=r.name,
        deployment=r.deployment,
        reference=r.reference,
        config=json.loads(r.config),
        state=json.loads(r.state),
        windows=r.windows,
        description=r.description,
        actor=r.actor,
        created_time=r.created_time,
        updated_time=r.updated_time,
    )


def _alert(r: Row[Any]) -> Alert:
    return Alert(
        id=r.alert_id,
        monitor=r.monitor,
        key=r.key,
        rule=json.loads(r.rule),
        severity=r.severity,
        state=r.state,
        metric=r.metric,
        column=r.column_name,
        value=r.value,
        threshold=r.threshold,
        fired_time=r.fired_time,
        fired_window=r.fired_window,
        resolved_time=r.resolved_time,
        resolved_window=r.resolved_window,
    )


def _event(r: Row[Any]) -> AlertEvent:
    return AlertEvent(
        id=r.id,
        alert_id=r.alert_id,
        monitor=r.monitor,
        state=r.state,
        time=r.time,
        payload=json.loads(r.payload),
        delivery=r.delivery,
        attempts=r.attempts,
        last_error=r.last_error,
    )


def create(
    conn: Connection,
    name: str,
    deployment: str,
    reference: str,
    config: dict[str, Any],
    description: str,
    actor: str,
) -> Monitor:
    """Create a monitor with no windows scored yet."""
    now = now_ms()
    try:
        with conn.begin_nested():
            conn.execute(
                insert(monitors).values(
                    name=name,
                    deployment=deployment,
                    reference=reference,
                    config=_json(config),
                    state=_json({}),
                    windows=0,
                    description=description,
                    actor=actor,
                    created_time=now,
                    updated_time=now,
                )
            )
    except IntegrityError:
        raise Conflict(f"monitor {name!r} already exists", name=name) from None
    return get(conn, name)


def get(conn: Connection, name: str) -> Monitor:
    """One monitor by name."""
    row = conn.execute(select(monitors).where(monitors.c.name == name)).first()
    if row is None:
        raise NotFound(f"monitor {name!r} not found", name=name)
    return _monitor(row)


def list_all(conn: Connection, deployment: str | None = None) -> list[Monitor]:
    """Every monitor (of one deployment), by name."""
    q = select(monitors).order_by(monitors.c.name)
    if deployment is not None:
        q = q.where(monitors.c.deployment == deployment)
    return [_monitor(r) for r in conn.execute(q)]


def update_config(
    conn: Connection, name: str, config: dict[str, Any], description: str | None
) -> Monitor:
    """Replace a monitor's configuration (and description when given)."""
    values: dict[str, Any] = {"config": _json(config), "updated_time": now_ms()}
    if description is not None:
        values["description"] = description
    done = conn.execute(update(monitors).where(monitors.c.name == name).values(**values))
    if done.rowcount == 0:
        raise NotFound(f"monitor {name!r} not found", name=name)
    return get(conn, name)


def delete(conn: Connection, name: str) -> None:
    """Delete a monitor with its windows, metrics and alerts."""
    get(conn, name)
    ids = select(alerts.c.alert_id).where(alerts.c.monitor == name)
    conn.execute(alert_events.delete().where(alert_events.c.alert_id.in_(ids)))
    conn.execute(alerts.delete().where(alerts.c.monitor == name))
    conn.execute(monitor_metrics.delete().where(monitor_metrics.c.monitor == name))
    conn.execute(monitor_windows.delete().where(monitor_windows.c.monitor == name))
    conn.execute(monitors.delete().where(monitors.c.name == name))


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _insert_alert(conn: Connection, name: str, a: NewAlert, now: int, seq: int) -> None:
    conn.execute(
        insert(alerts).values(
            alert_id=a.alert_id,
            monitor=name,
            key=a.key,
            rule=_json(a.rule, "alert rule"),
            severity=a.severity,
            state="firing",
            metric=a.metric,
            column_name=a.column,
            value=_finite(a.value),
            threshold=a.threshold,
            fired_time=now,
            fired_window=seq,
        )
    )


def record_window(
    conn: Connection,
    name: str,
    window: WindowRecord,
    state: dict[str, Any],
    fired: Sequence[NewAlert] = (),
    updates: Sequence[AlertUpdate] = (),
    *,
    deliver: bool = False,
) -> list[AlertEvent]:
    """Store a scored window, its metrics, the monitor's new state and the alert
    changes it causes, all in the caller's transaction.

    The monitor's window count moves from ``seq - 1`` to ``seq`` by compare-and-set:
    if another run recorded that window first this raises ``Conflict`` and the caller's
    transaction rolls back whole. Returns the alert events written (``pending``
    delivery when ``deliver``, else ``none``)."""
    now = now_ms()
    current = get(conn, name)  # NotFound when the monitor is gone
    # ``state`` replaces the keys it names; the others (another pass's) are kept.
    merged = {**current.state, **state}
    moved = conn.execute(
        update(monitors)
        .where(monitors.c.name == name, monitors.c.windows == window.seq - 1)
        .values(windows=window.seq, state=_json(merged, "monitor state"), updated_time=now)
    )
    if moved.rowcount == 0:
        raise Conflict(
            f"monitor {name!r} already scored window {window.seq} (another run was faster)",
            name=name,
        )
    conn.execute(
        insert(monitor_windows).values(
            monitor=name,
            seq=window.seq,
            start_time=window.start_time,
            end_time=window.end_time,
            rows=window.rows,
            details=_json(window.details, "window details"),
            summary=_json(window.summary, "window summary"),
            created_time=now,
        )
    )
    if window.metrics:
        conn.execute(
            insert(monitor_metrics),
            [
                {"monitor": name, "name": key, "seq": window.seq, "value": _finite(value)}
                for key, value in window.metrics.items()
            ],
        )
    return _alert_changes(conn, name, window.seq, now, fired, updates, deliver)


def _alert_changes(
    conn: Connection,
    name: str,
    seq: int,
    now: int,
    fired: Sequence[NewAlert],
    updates: Sequence[AlertUpdate],
    deliver: bool,
) -> list[AlertEvent]:
    delivery = "pending" if deliver else "none"
    events: list[dict[str, Any]] = []
    for a in fired:
        try:
            with conn.begin_nested():
                _insert_alert(conn, name, a, now, seq)
        except IntegrityError:
            raise Conflict(f"alert {a.alert_id!r} already exists", alert_id=a.alert_id) from None
        events.append({"alert_id": a.alert_id, "state": "firing", "payload": a.payload})
    for u in updates:
        values: dict[str, Any] = {"value": _finite(u.value)}
        if u.payload is not None:
            values.update(state="resolved", resolved_time=now, resolved_window=seq)
            events.append({"alert_id": u.alert_id, "state": "resolved", "payload": u.payload})
        done = conn.execute(
            update(alerts)
            .where(alerts.c.alert_id == u.alert_id, alerts.c.state == "firing")
            .values(**values)
        )
        if done.rowcount == 0:
            raise Conflict(f"alert {u.alert_id!r} is not firing", alert_id=u.alert_id)
    ids = []
    for e in events:
        row = conn.execute(
            insert(alert_events)
            .values(
                alert_id=e["alert_id"],
                monitor=name,
                state=e["state"],
                time=now,
                payload=_json(e["payload"], "alert event payload"),
                delivery=delivery,
                attempts=0,
                last_error="",
            )
            .returning(alert_events.c.id)
        ).scalar_one()
        ids.append(int(row))
    if not ids:
        return []
    rows = conn.execute(
        select(alert_events).where(alert_events.c.id.in_(ids)).order_by(alert_events.c.id)
    )
    return [_event(r) for r in rows]


def record_window_metrics(
    conn: Connection,
    name: str,
    seq: int,
    metrics: dict[str, float],
    state: dict[str, Any],
    fired: Sequence[NewAlert] = (),
    updates: Sequence[AlertUpdate] = (),
    *,
    deliver: bool = False,
) -> list[AlertEvent]:
    """Add metrics to an already scored window (realised performance once its labels
    came), merge ``state`` into the monitor's and store the alert changes they cause,
    in the caller's transaction. A metric the window already has raises ``Conflict``:
    each is computed once."""
    current = get(conn, name)
    exists = conn.execute(
        select(monitor_windows.c.seq).where(
            monitor_windows.c.monitor == name, monitor_windows.c.seq == seq
        )
    ).first()
    if exists is None:
        raise NotFound(f"monitor {name!r} has no window {seq}", name=name, seq=seq)
    now = now_ms()
    if metrics:
        try:
            with conn.begin_nested():
                conn.execute(
                    insert(monitor_metrics),
                    [
                        {"monitor": name, "name": key, "seq": seq, "value": _finite(value)}
                        for key, value in metrics.items()
                    ],
                )
        except IntegrityError:
            raise Conflict(
                f"window {seq} of monitor {name!r} already has one of these metrics",
                name=name,
                seq=seq,
            ) from None
    merged = {**current.state, **state}
    conn.execute(
        update(monitors)
        .where(monitors.c.name == name)
        .values(state=_json(merged, "monitor state"), updated_time=now)
    )
    return _alert_changes(conn, name, seq, now, fired, updates, deliver)


def windows(
    conn: Connection,
    name: str,
    *,
    since_seq: int = 0,
    limit: int | None = None,
    details: bool = False,
) -> list[MonitorWindow]:
    """Scored windows with ``seq > since_seq``, oldest first, with their metrics
    (and full details and summaries when ``details``)."""
    get(conn, name)
    cols = [
        monitor_windows.c.seq,
        monitor_windows.c.start_time,
        monitor_windows.c.end_time,
        monitor_windows.c.rows,
        monitor_windows.c.created_time,
    ]
    if details:
        cols += [monitor_windows.c.details, monitor_windows.c.summary]
    q = (
        select(*cols)
        .where(monitor_windows.c.monitor == name, monitor_windows.c.seq > since_seq)
        .order_by(monitor_windows.c.seq)
    )
    if limit is not None:
        q = q.limit(limit)
    rows = conn.execute(q).all()
    if not rows:
        return []
    found: dict[int, dict[str, float]] = defaultdict(dict)
    metric_rows = conn.execute(
        select(monitor_metrics.c.seq, monitor_metrics.c.name, monitor_metrics.c.value).where(
            monitor_metrics.c.monitor == name,
            monitor_metrics.c.seq >= rows[0].seq,
            monitor_metrics.c.seq <= rows[-1].seq,
        )
    )
    for m in metric_rows:
        found[m.seq][m.name] = math.nan if m.value is None else m.value
    return [
        MonitorWindow(
            monitor=name,
            seq=r.seq,
            start_time=r.start_time,
            end_time=r.end_time,
            rows=r.rows,
            metrics=dict(sorted(found[r.seq].items())),
            created_time=r.created_time,
            details=json.loads(r.details) if details else None,
            summary=json.loads(r.summary) if details else None,
        )
        for r in rows
    ]


def metric_history(
    conn: Connection, name: str, metrics: Sequence[str] | None = None, since_seq: int = 0
) -> dict[str, list[tuple[int, int, float | None]]]:
    """``metric -> [(seq, window end time, value), ...]`` oldest first, for every
    stored metric or only ``metrics``."""
    get(conn, name)
    q = (
        select(
            monitor_metrics.c.name,
            monitor_metrics.c.seq,
            monitor_windows.c.end_time,
            monitor_metrics.c.value,
        )
        .join(
            monitor_windows,
            (monitor_windows.c.monitor == monitor_metrics.c.monitor)
            & (monitor_windows.c.seq == monitor_metrics.c.seq),
        )
        .where(monitor_metrics.c.monitor == name, monitor_metrics.c.seq > since_seq)
        .order_by(monitor_metrics.c.name, monitor_metrics.c.seq)
    )
    if metrics is not None:
        q = q.where(monitor_metrics.c.name.in_(list(metrics)))
    out: dict[str, list[tuple[int, int, float | None]]] = defaultdict(list)
    for r in conn.execute(q):
        out[r.name].append((r.seq, r.end_time, r.value))
    return dict(out)


def list_alerts(
    conn: Connection,
    *,
    monitor: str | None = None,
    state: str | None = None,
    limit: int = 1000,
) -> list[Alert]:
    """Alerts, newest first, filtered by monitor and state."""
    if state is not None and state not in ("firing", "resolved"):
        raise InvalidArgument(f"alert state must be 'firing' or 'resolved', got {state!r}")
    q = select(alerts).order_by(alerts.c.fired_time.desc(), alerts.c.alert_id).limit(limit)
    if monitor is not None:
        q = q.where(alerts.c.monitor == monitor)
    if state is not None:
        q = q.where(alerts.c.state == state)
    return [_alert(r) for r in conn.execute(q)]


def list_events(
    conn: Connection,
    *,
    monitor: str | None = None,
    alert_id: str | None = None,
    delivery: str | None = None,
    limit: int = 1000,
) -> list[AlertEvent]:
    """Alert events, oldest first, filtered by monitor, alert and delivery status."""
    if delivery is not None and delivery not in ("pending", "delivered", "failed", "none"):
        raise InvalidArgument(f"unknown delivery status {delivery!r}")
    q = select(alert_events).order_by(alert_events.c.id).limit(limit)
    if monitor is not None:
        q = q.where(alert_events.c.monitor == monitor)
    if alert_id is not None:
        q = q.where(alert_events.c.alert_id == alert_id)
    if delivery is not None:
        q = q.where(alert_events.c.delivery == delivery)
    return [_event(r) for r in conn.execute(q)]


def set_delivery(
    conn: Connection, event_id: int, delivery: str, attempts: int, last_error: str
) -> AlertEvent:
    """Record the outcome of delivering an event (attempts add up over runs)."""
    if delivery not in ("pending", "delivered", "failed"):
        raise InvalidArgument(f"unknown delivery status {delivery!r}")
    if not 0 <= attempts <= MAX_ATTEMPTS_PER_CALL:
        raise InvalidArgument(f"attempts must be within [0, {MAX_ATTEMPTS_PER_CALL}]")
    before = conn.execute(
        select(alert_events.c.attempts).where(alert_events.c.id == event_id)
    ).scalar()
    if before is None:
        raise NotFound(f"alert event {event_id} not found", event_id=event_id)
    conn.execute(
        update(alert_events)
        .where(alert_events.c.id == event_id)
        .values(
            delivery=delivery,
            attempts=min(int(before) + attempts, 2**31 - 1),
            last_error=last_error[:2000],
        )
    )
    row = conn.execute(select(alert_events).where(alert_events.c.id == event_id)).one()
    return _event(row)
