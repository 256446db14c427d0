"""``/api/v1/monitors``, ``/api/v1/alerts`` and ``/api/v1/alert-events``: monitors,
their scored windows and metric histories, and the alerts they raise, over HTTP.

Reads need a viewer and every other method an editor (decided by the auth middleware
from the method alone). Recording a window is how a scoring run stores its results:
one request, one transaction, ``409`` if another run recorded that window first.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from modelloop.errors import InvalidArgument
from modelloop.server.deps import BackendDep
from modelloop.server.errors import ERROR_RESPONSES
from modelloop.server.monitor_schemas import (
    INT32_MAX,
    INT64_MAX,
    INT64_MIN,
    AlertEventList,
    AlertEventModel,
    AlertList,
    AlertModel,
    CreateMonitorRequest,
    MetricHistoryResponse,
    MonitorList,
    MonitorModel,
    MonitorWindowList,
    MonitorWindowModel,
    RecordMetricsRequest,
    RecordWindowRequest,
    SetAlertDeliveryRequest,
    UpdateMonitorRequest,
)

__all__ = ["router"]

router = APIRouter(tags=["monitoring"], responses=ERROR_RESPONSES)

# PostgreSQL text cannot hold NUL: refused here, so a request never reaches the store
# with one (SQLite would merely find nothing).
_NO_NUL = r"^[^\x00]*$"

Name = Annotated[str, Path(description="The monitor's name.", pattern=_NO_NUL)]
Filter = Annotated[str | None, Query(pattern=_NO_NUL)]
SinceSeq = Annotated[
    int, Query(ge=0, le=INT32_MAX, description="Only windows after this one (0: all).")
]
Limit = Annotated[int | None, Query(ge=1, le=INT64_MAX, description="At most this many.")]


def _no_rules_file(config: dict[str, Any] | None) -> dict[str, Any] | None:
    # A string of rules may name a file, which the local backend reads: over HTTP that
    # would let a caller make the server open its own files. The client reads rules
    # files itself and sends the rules.
    if config is not None and isinstance(config.get("rules"), str):
        raise InvalidArgument(
            "monitor rules sent to the server must be a list of rules, not a file name "
            "or YAML text (the client reads rules files)"
        )
    return config


@router.post("/monitors", status_code=201, operation_id="create_monitor")
def create_monitor(body: CreateMonitorRequest, backend: BackendDep) -> MonitorModel:
    """Create a monitor of a deployment's prediction logs against a registered dataset."""
    found = backend.create_monitor(
        body.name, body.deployment, body.reference, _no_rules_file(body.config), body.description
    )
    return MonitorModel.from_entity(found)


@router.get("/monitors", operation_id="list_monitors")
def list_monitors(
    backend: BackendDep,
    deployment: Annotated[
        str | None, Query(pattern=_NO_NUL, description="Only this deployment's monitors.")
    ] = None,
) -> MonitorList:
    """Every monitor (of one deployment), by name."""
    found = backend.list_monitors(deployment)
    return MonitorList(monitors=[MonitorModel.from_entity(m) for m in found])


@router.get("/monitors/{name}", operation_id="get_monitor")
def get_monitor(name: Name, backend: BackendDep) -> MonitorModel:
    """One monitor, with its scoring state and window count."""
    return MonitorModel.from_entity(backend.get_monitor(name))


@router.patch("/monitors/{name}", operation_id="update_monitor")
def update_monitor(name: Name, body: UpdateMonitorRequest, backend: BackendDep) -> MonitorModel:
    """Replace a monitor's config and/or description (scored windows keep theirs)."""
    found = backend.update_monitor(name, _no_rules_file(body.config), body.description)
    return MonitorModel.from_entity(found)


@router.delete("/monitors/{name}", status_code=204, operation_id="delete_monitor")
def delete_monitor(name: Name, backend: BackendDep) -> None:
    """Delete a monitor with its windows, metrics, alerts and alert events."""
    backend.delete_monitor(name)


@router.post("/monitors/{name}/windows", status_code=201, operation_id="record_monitor_window")
def record_monitor_window(
    name: Name, body: RecordWindowRequest, backend: BackendDep
) -> AlertEventList:
    """Store one scored window, the monitor's new state and its alert changes at once;
    answers the alert events written (to deliver when ``deliver`` was set)."""
    events = backend.record_monitor_window(
        name,
        body.window.to_entity(),
        body.state,
        [a.to_entity() for a in body.fired],
        [u.to_entity() for u in body.updates],
        body.deliver,
    )
    return AlertEventList(events=[AlertEventModel.from_entity(e) for e in events])


@router.post(
    "/monitors/{name}/windows/{seq}/metrics",
    status_code=201,
    operation_id="record_monitor_metrics",
)
def record_monitor_metrics(
    name: Name,
    seq: Annotated[int, Path(ge=1, le=INT32_MAX, description="The window's number.")],
    body: RecordMetricsRequest,
    backend: BackendDep,
) -> AlertEventList:
    """Add metrics to a scored window (realised performance once labels came), merge
    state into the monitor's and store the alert changes; answers the alert events."""
    events = backend.record_monitor_metrics(
        name,
        seq,
        body.metric_values(),
        body.state,
        [a.to_entity() for a in body.fired],
        [u.to_entity() for u in body.updates],
        body.deliver,
    )
    return AlertEventList(events=[AlertEventModel.from_entity(e) for e in events])


@router.get("/monitors/{name}/windows", operation_id="list_monitor_windows")
def list_monitor_windows(
    name: Name,
    backend: BackendDep,
    since_seq: SinceSeq = 0,
    limit: Limit = None,
    details: Annotated[bool, Query(description="Include details and summaries.")] = False,
) -> MonitorWindowList:
    """Scored windows after ``since_seq``, oldest first (a NaN metric is ``null``)."""
    found = backend.list_monitor_windows(name, since_seq, limit, details)
    return MonitorWindowList(windows=[MonitorWindowModel.from_entity(w) for w in found])


@router.get("/monitors/{name}/metrics", operation_id="monitor_metric_history")
def monitor_metric_history(
    name: Name,
    backend: BackendDep,
    metric: Annotated[
        list[str] | None,
        Query(description="The metrics wanted (repeat the parameter); all when omitted."),
    ] = None,
    since_seq: SinceSeq = 0,
) -> MetricHistoryResponse:
    """``metric -> [[seq, window end time, value], ...]`` oldest first."""
    if metric is not None and any("\x00" in m for m in metric):
        raise InvalidArgument("metric names must not contain NUL characters")
    return MetricHistoryResponse(metrics=backend.monitor_metric_history(name, metric, since_seq))


@router.get("/alerts", operation_id="list_alerts")
def list_alerts(
    backend: BackendDep,
    monitor: Filter = None,
    state: Literal["firing", "resolved"] | None = None,
    limit: Annotated[int, Query(ge=1, le=INT64_MAX)] = 1000,
) -> AlertList:
    """Alerts, newest first, of one monitor and/or in one state."""
    found = backend.list_alerts(monitor, state, limit)
    return AlertList(alerts=[AlertModel.from_entity(a) for a in found])


@router.get("/alert-events", operation_id="list_alert_events")
def list_alert_events(
    backend: BackendDep,
    monitor: Filter = None,
    alert_id: Filter = None,
    delivery: Filter = None,
    limit: Annotated[int, Query(ge=1, le=INT64_MAX)] = 1000,
) -> AlertEventList:
    """Alert events, oldest first, filtered by monitor, alert and delivery status."""
    found = backend.list_alert_events(monitor, alert_id, delivery, limit)
    return AlertEventList(events=[AlertEventModel.from_entity(e) for e in found])


@router.post("/alert-events/{event_id}/delivery", operation_id="set_alert_delivery")
def set_alert_delivery(
    event_id: Annotated[int, Path(ge=INT64_MIN, le=INT64_MAX, description="The event's id.")],
    body: SetAlertDeliveryRequest,
    backend: BackendDep,
) -> AlertEventModel:
    """Record a delivery attempt's outcome (``attempts`` add up over runs)."""
    found = backend.set_alert_delivery(event_id, body.delivery, body.attempts, body.last_error)
    return AlertEventModel.from_entity(found)
