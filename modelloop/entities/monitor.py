"""Monitors, their scored windows, and the alerts their rules raise."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

__all__ = [
    "Alert",
    "AlertEvent",
    "AlertState",
    "AlertUpdate",
    "DeliveryStatus",
    "Monitor",
    "MonitorWindow",
    "NewAlert",
    "WindowRecord",
]

AlertState = Literal["firing", "resolved"]
DeliveryStatus = Literal["pending", "delivered", "failed", "none"]


@dataclasses.dataclass(frozen=True, slots=True)
class Monitor:
    """A monitor watches one deployment's prediction logs against a registered
    reference dataset.

    ``config`` holds the window (``{"kind": "time", "seconds": 3600}`` or
    ``{"kind": "rows", "rows": 1000}``), the compared columns and their overrides,
    the target and prediction columns, the alert rules and the webhook. ``state`` is
    where scoring stopped (the cursor into the logs) and the rules' streaks;
    ``windows`` counts the windows scored so far.
    """

    name: str
    deployment: str
    reference: str
    config: dict[str, Any]
    state: dict[str, Any]
    windows: int
    description: str
    actor: str
    created_time: int
    updated_time: int


@dataclasses.dataclass(frozen=True, slots=True)
class MonitorWindow:
    """One scored window: its time span (``end_time`` exclusive), rows, flat metrics
    (``dataset_drift_share``, ``drift_score[age]``, ...) and, when asked for, the full
    results (``details``: drift, quality, performance) and the mergeable column
    summary used by reports."""

    monitor: str
    seq: int
    start_time: int
    end_time: int
    rows: int
    metrics: dict[str, float]
    created_time: int
    details: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Alert:
    """An alert raised by one rule of a monitor (one per column for a wildcard rule).

    While ``state`` is ``"firing"`` the same condition raises nothing new; ``value``
    is the metric's latest value. A resolved alert that fires again is a new alert."""

    id: str
    monitor: str
    key: str
    rule: dict[str, Any]
    severity: str
    state: AlertState
    metric: str
    column: str | None
    value: float | None
    threshold: float
    fired_time: int
    fired_window: int
    resolved_time: int | None
    resolved_window: int | None


@dataclasses.dataclass(frozen=True, slots=True)
class AlertEvent:
    """An alert firing or resolving, as delivered to the webhook (``payload``) with
    its delivery status (``none`` when the monitor has no webhook)."""

    id: int
    alert_id: str
    monitor: str
    state: AlertState
    time: int
    payload: dict[str, Any]
    delivery: DeliveryStatus
    attempts: int
    last_error: str


@dataclasses.dataclass(frozen=True)
class WindowRecord:
    """A scored window to store (``seq`` must be the monitor's next window)."""

    seq: int
    start_time: int
    end_time: int
    rows: int
    metrics: dict[str, float]
    details: dict[str, Any]
    summary: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class NewAlert:
    """An alert that starts firing with this window, and its event payload."""

    alert_id: str
    key: str
    rule: dict[str, Any]
    severity: str
    metric: str
    column: str | None
    value: float | None
    threshold: float
    payload: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class AlertUpdate:
    """A firing alert's latest value; ``payload`` set means it resolves now."""

    alert_id: str
    value: float | None
    payload: dict[str, Any] | None = None
