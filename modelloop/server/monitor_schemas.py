"""The JSON shapes of the monitoring part of the native REST API (``/api/v1/monitors``,
``/api/v1/alerts``, ``/api/v1/alert-events``), shared by the server's routes and
:class:`~modelloop.backends.http.HttpBackend`.

JSON has no NaN: a metric value that is NaN or infinite travels as ``null``, which is
also how the store keeps it. A window's metrics come back as NaN for ``null`` (as they
do from the local backend); alert values and metric histories keep ``None``. Free-form
objects (config, state, details, payloads) must be plain JSON: a non-finite float
inside one is refused by name rather than silently changed.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, StrictBool, StrictInt, StrictStr

from modelloop.entities import (
    Alert,
    AlertEvent,
    AlertUpdate,
    Monitor,
    MonitorWindow,
    NewAlert,
    WindowRecord,
)
from modelloop.server.schemas import _Model, _Request

__all__ = [
    "AlertEventList",
    "AlertEventModel",
    "AlertList",
    "AlertModel",
    "AlertUpdateModel",
    "CreateMonitorRequest",
    "MetricHistoryResponse",
    "MonitorList",
    "MonitorModel",
    "MonitorWindowList",
    "MonitorWindowModel",
    "NewAlertModel",
    "RecordWindowRequest",
    "SetAlertDeliveryRequest",
    "UpdateMonitorRequest",
    "WindowRecordModel",
]

#: The range of a stored integer (a signed 64-bit column).
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

#: The range of a window number or row count (a 32-bit column on PostgreSQL).
INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1

Int64 = Annotated[StrictInt, Field(ge=INT64_MIN, le=INT64_MAX)]
Int32 = Annotated[StrictInt, Field(ge=INT32_MIN, le=INT32_MAX)]


# The store's column sizes, and no NUL (which PostgreSQL text cannot hold): a request
# over them is a 400 here rather than a database error.
_NO_NUL = r"^[^\x00]*$"
AlertId = Annotated[StrictStr, Field(max_length=32, pattern=_NO_NUL)]
Severity = Annotated[StrictStr, Field(max_length=16, pattern=_NO_NUL)]
Text256 = Annotated[StrictStr, Field(max_length=256, pattern=_NO_NUL)]
Text512 = Annotated[StrictStr, Field(max_length=512, pattern=_NO_NUL)]


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


NullableFloat = Annotated[
    Annotated[float, Field(strict=True)] | None, BeforeValidator(_finite_or_none)
]
"""A metric value: a finite float, or ``null`` for NaN/infinity (as the store keeps it)."""


def _check_json(value: Any, where: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where or 'the value'} is {value!r}: JSON has no NaN or infinity")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_json(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_json(item, f"{where}[{i}]")


def _plain_json(value: dict[str, Any]) -> dict[str, Any]:
    _check_json(value, "")
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(_plain_json)]
"""A free-form JSON object without NaN or infinity anywhere inside."""


def _nan_for_none(metrics: dict[str, float | None]) -> dict[str, float]:
    return {k: math.nan if val is None else val for k, val in metrics.items()}


# responses --------------------------------------------------------------------------


class MonitorModel(_Model):
    """A monitor of one deployment's prediction logs against a reference dataset."""

    name: StrictStr
    deployment: StrictStr
    reference: StrictStr
    config: dict[str, Any]
    state: dict[str, Any]
    windows: StrictInt
    description: StrictStr
    actor: StrictStr
    created_time: StrictInt
    updated_time: StrictInt

    def to_entity(self) -> Monitor:
        """The entity."""
        return Monitor(**self.model_dump())


class MonitorList(_Model):
    """Monitors, by name."""

    monitors: list[MonitorModel]


class MonitorWindowModel(_Model):
    """One scored window; a metric that was NaN is ``null``."""

    monitor: StrictStr
    seq: StrictInt
    start_time: StrictInt
    end_time: StrictInt
    rows: StrictInt
    metrics: dict[StrictStr, NullableFloat]
    created_time: StrictInt
    details: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None

    def to_entity(self) -> MonitorWindow:
        """The entity (``null`` metrics are NaN again)."""
        data = self.model_dump()
        data["metrics"] = _nan_for_none(self.metrics)
        return MonitorWindow(**data)


class MonitorWindowList(_Model):
    """Scored windows, oldest first."""

    windows: list[MonitorWindowModel]


class MetricHistoryResponse(_Model):
    """``metric -> [[seq, window end time, value], ...]`` oldest first."""

    metrics: dict[StrictStr, list[tuple[StrictInt, StrictInt, NullableFloat]]]

    def to_history(self) -> dict[str, list[tuple[int, int, float | None]]]:
        """The mapping :meth:`~modelloop.backends.Backend.monitor_metric_history` returns."""
        return {k: [(s, t, val) for s, t, val in points] for k, points in self.metrics.items()}


class AlertModel(_Model):
    """An alert raised by one rule of a monitor."""

    id: StrictStr
    monitor: StrictStr
    key: StrictStr
    rule: dict[str, Any]
    severity: StrictStr
    state: Literal["firing", "resolved"]
    metric: StrictStr
    column: StrictStr | None
    value: NullableFloat
    threshold: NullableFloat
    fired_time: StrictInt
    fired_window: StrictInt
    resolved_time: StrictInt | None
    resolved_window: StrictInt | None

    def to_entity(self) -> Alert:
        """The entity."""
        data = self.model_dump()
        if data["threshold"] is None:
            data["threshold"] = math.nan
        return Alert(**data)


class AlertList(_Model):
    """Alerts, newest first."""

    alerts: list[AlertModel]


class AlertEventModel(_Model):
    """An alert firing or resolving, with its delivery status."""

    id: StrictInt
    alert_id: StrictStr
    monitor: StrictStr
    state: Literal["firing", "resolved"]
    time: StrictInt
    payload: dict[str, Any]
    delivery: Literal["pending", "delivered", "failed", "none"]
    attempts: StrictInt
    last_error: StrictStr

    def to_entity(self) -> AlertEvent:
        """The entity."""
        return AlertEvent(**self.model_dump())


class AlertEventList(_Model):
    """Alert events, oldest first."""

    events: list[AlertEventModel]


# requests ---------------------------------------------------------------------------


class CreateMonitorRequest(_Request):
    """``POST /api/v1/monitors``: ``config`` is validated by the server."""

    name: StrictStr
    deployment: StrictStr
    reference: StrictStr
    config: JsonObject | None = None
    description: StrictStr = ""


class UpdateMonitorRequest(_Request):
    """``PATCH /api/v1/monitors/{name}``: the fields to replace (omitted ones stay)."""

    config: JsonObject | None = None
    description: StrictStr | None = None


class WindowRecordModel(_Request):
    """A scored window to store; ``seq`` must be the monitor's next window."""

    seq: Int32
    start_time: Int64
    end_time: Int64
    rows: Int32
    metrics: dict[Text512, NullableFloat]
    details: JsonObject
    summary: JsonObject

    def to_entity(self) -> WindowRecord:
        """The entity (``null`` metrics are NaN, which the store keeps as null)."""
        return WindowRecord(
            seq=self.seq,
            start_time=self.start_time,
            end_time=self.end_time,
            rows=self.rows,
            metrics=_nan_for_none(self.metrics),
            details=self.details,
            summary=self.summary,
        )


class NewAlertModel(_Request):
    """An alert that starts firing with the window, and its event payload."""

    alert_id: AlertId
    key: Text512
    rule: JsonObject
    severity: Severity
    metric: Text256
    column: Text256 | None
    value: NullableFloat
    threshold: Annotated[float, Field(strict=True, allow_inf_nan=False)]
    payload: JsonObject

    def to_entity(self) -> NewAlert:
        """The entity."""
        return NewAlert(**self.model_dump())


class AlertUpdateModel(_Request):
    """A firing alert's latest value; ``payload`` set means it resolves now."""

    alert_id: AlertId
    value: NullableFloat
    payload: JsonObject | None = None

    def to_entity(self) -> AlertUpdate:
        """The entity."""
        return AlertUpdate(**self.model_dump())


class RecordWindowRequest(_Request):
    """``POST /api/v1/monitors/{name}/windows``: one window, the monitor's new state and
    its alert changes, stored in one transaction."""

    window: WindowRecordModel
    state: JsonObject
    fired: list[NewAlertModel] = Field(default_factory=list)
    updates: list[AlertUpdateModel] = Field(default_factory=list)
    deliver: StrictBool = False


class RecordMetricsRequest(_Request):
    """``POST /api/v1/monitors/{name}/windows/{seq}/metrics``: metrics added to a scored
    window (each at most once), state merged into the monitor's, and the alert
    changes they cause, stored in one transaction."""

    metrics: dict[Text512, NullableFloat]
    state: JsonObject
    fired: list[NewAlertModel] = Field(default_factory=list)
    updates: list[AlertUpdateModel] = Field(default_factory=list)
    deliver: StrictBool = False

    def metric_values(self) -> dict[str, float]:
        """The metrics with ``null`` as NaN (stored as null)."""
        return _nan_for_none(self.metrics)


class SetAlertDeliveryRequest(_Request):
    """``POST /api/v1/alert-events/{event_id}/delivery``: one delivery run's outcome
    (``attempts`` adds to the event's count)."""

    delivery: Literal["pending", "delivered", "failed"]
    attempts: Annotated[StrictInt, Field(ge=0, le=10_000)]
    last_error: StrictStr = ""
