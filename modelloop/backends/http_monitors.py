"""The monitoring part of :class:`~modelloop.backends.http.HttpBackend`: monitors,
windows, metric histories, alerts and alert deliveries over ``/api/v1``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlencode

from modelloop import validation as v
from modelloop.backends._http_io import invalid_arguments, url_segment, wire_request
from modelloop.backends.http_registry import HttpRegistry
from modelloop.entities import (
    Alert,
    AlertEvent,
    AlertUpdate,
    Monitor,
    MonitorWindow,
    NewAlert,
    WindowRecord,
)
from modelloop.server.monitor_schemas import (
    AlertEventList,
    AlertEventModel,
    AlertList,
    AlertUpdateModel,
    CreateMonitorRequest,
    MetricHistoryResponse,
    MonitorList,
    MonitorModel,
    MonitorWindowList,
    NewAlertModel,
    RecordMetricsRequest,
    RecordWindowRequest,
    SetAlertDeliveryRequest,
    UpdateMonitorRequest,
    WindowRecordModel,
)

__all__ = ["HttpMonitors"]


def _monitor(name: str) -> str:
    return f"/monitors/{url_segment(name)}"


def _query(pairs: list[tuple[str, Any]]) -> str:
    """A query string (a key may repeat); ``None`` values are left out, booleans are
    spelled as the server reads them."""
    return urlencode(
        [
            (k, str(val).lower() if isinstance(val, bool) else str(val))
            for k, val in pairs
            if val is not None
        ],
        quote_via=quote,
    )


def _with_rules_read(config: dict[str, Any] | None) -> dict[str, Any] | None:
    """``config`` with rules given as a file name or YAML text read here, as the local
    backend reads them: the server accepts rules, never a file name."""
    if not isinstance(config, dict) or not isinstance(config.get("rules"), str):
        return config
    from modelloop.monitoring.rules import load_rules

    return {**config, "rules": [r.to_dict() for r in load_rules(config["rules"])]}


class HttpMonitors(HttpRegistry):
    """Monitoring calls; :class:`HttpBackend` supplies ``_send`` and ``_call``."""

    def create_monitor(
        self,
        name: str,
        deployment: str,
        reference: str,
        config: dict[str, Any] | None = None,
        description: str = "",
    ) -> Monitor:
        """Create a monitor of a deployment's prediction logs against a registered
        dataset (the server validates ``config``)."""
        body = wire_request(
            CreateMonitorRequest,
            name=name,
            deployment=deployment,
            reference=reference,
            config=_with_rules_read(config),
            description=description,
        )
        return self._call("POST", "/monitors", MonitorModel, body=body).to_entity()

    def get_monitor(self, name: str) -> Monitor:
        """One monitor."""
        return self._call("GET", _monitor(name), MonitorModel).to_entity()

    def list_monitors(self, deployment: str | None = None) -> list[Monitor]:
        """Every monitor, or those of one deployment."""
        params = None if deployment is None else {"deployment": deployment}
        found = self._call("GET", "/monitors", MonitorList, params=params)
        return [m.to_entity() for m in found.monitors]

    def update_monitor(
        self, name: str, config: dict[str, Any] | None = None, description: str | None = None
    ) -> Monitor:
        """Replace a monitor's config and/or description."""
        body = wire_request(
            UpdateMonitorRequest, config=_with_rules_read(config), description=description
        )
        return self._call("PATCH", _monitor(name), MonitorModel, body=body).to_entity()

    def delete_monitor(self, name: str) -> None:
        """Delete a monitor with its windows, metrics and alerts."""
        self._send("DELETE", _monitor(name))

    def record_monitor_window(
        self,
        name: str,
        window: WindowRecord,
        state: dict[str, Any],
        fired: Sequence[NewAlert] = (),
        updates: Sequence[AlertUpdate] = (),
        deliver: bool = False,
    ) -> list[AlertEvent]:
        """Store one scored window, the monitor's new state and its alert changes at
        once (``Conflict`` if that window was already recorded)."""
        with invalid_arguments():
            body = RecordWindowRequest(
                window=WindowRecordModel.from_entity(window),
                state=state,
                fired=[NewAlertModel.from_entity(a) for a in fired],
                updates=[AlertUpdateModel.from_entity(u) for u in updates],
                deliver=deliver,
            )
        path = f"{_monitor(name)}/windows"
        found = self._call("POST", path, AlertEventList, body=body)
        return [e.to_entity() for e in found.events]

    def record_monitor_metrics(
        self,
        name: str,
        seq: int,
        metrics: dict[str, float],
        state: dict[str, Any],
        fired: Sequence[NewAlert] = (),
        updates: Sequence[AlertUpdate] = (),
        deliver: bool = False,
    ) -> list[AlertEvent]:
        """Add metrics to a scored window with the state and alert changes they cause
        (``Conflict`` if the window already has one of them)."""
        with invalid_arguments():
            body = RecordMetricsRequest(
                metrics={k: None if math.isnan(val) else val for k, val in metrics.items()},
                state=state,
                fired=[NewAlertModel.from_entity(a) for a in fired],
                updates=[AlertUpdateModel.from_entity(u) for u in updates],
                deliver=deliver,
            )
        path = f"{_monitor(name)}/windows/{v.check_int('seq', seq)}/metrics"
        found = self._call("POST", path, AlertEventList, body=body)
        return [e.to_entity() for e in found.events]

    def list_monitor_windows(
        self, name: str, since_seq: int = 0, limit: int | None = None, details: bool = False
    ) -> list[MonitorWindow]:
        """Scored windows after ``since_seq``, oldest first."""
        query = _query(
            [
                ("since_seq", v.check_int("since_seq", since_seq)),
                ("limit", v.check_limit(limit)),
                ("details", bool(details)),
            ]
        )
        found = self._call("GET", f"{_monitor(name)}/windows?{query}", MonitorWindowList)
        return [w.to_entity() for w in found.windows]

    def monitor_metric_history(
        self, name: str, metrics: Sequence[str] | None = None, since_seq: int = 0
    ) -> dict[str, list[tuple[int, int, float | None]]]:
        """``metric -> [(seq, window end time, value)]`` oldest first."""
        since = v.check_int("since_seq", since_seq)
        wanted = None if metrics is None else [str(m) for m in metrics]
        if wanted is not None and not wanted:
            # No query string can say "none of them": ask for the monitor, so an
            # unknown one is still NotFound, and answer the empty history.
            self.get_monitor(name)
            return {}
        pairs: list[tuple[str, Any]] = [("metric", m) for m in wanted or ()]
        query = _query([*pairs, ("since_seq", since)])
        found = self._call("GET", f"{_monitor(name)}/metrics?{query}", MetricHistoryResponse)
        return found.to_history()

    def list_alerts(
        self, monitor: str | None = None, state: str | None = None, limit: int = 1000
    ) -> list[Alert]:
        """Alerts, newest first."""
        query = _query([("monitor", monitor), ("state", state), ("limit", v.check_limit(limit))])
        found = self._call("GET", f"/alerts?{query}", AlertList)
        return [a.to_entity() for a in found.alerts]

    def list_alert_events(
        self,
        monitor: str | None = None,
        alert_id: str | None = None,
        delivery: str | None = None,
        limit: int = 1000,
    ) -> list[AlertEvent]:
        """Alert events, oldest first."""
        query = _query(
            [
                ("monitor", monitor),
                ("alert_id", alert_id),
                ("delivery", delivery),
                ("limit", v.check_limit(limit)),
            ]
        )
        found = self._call("GET", f"/alert-events?{query}", AlertEventList)
        return [e.to_entity() for e in found.events]

    def set_alert_delivery(
        self, event_id: int, delivery: str, attempts: int, last_error: str = ""
    ) -> AlertEvent:
        """Record a delivery attempt's outcome for an alert event."""
        eid = v.check_int("event_id", event_id)
        body = wire_request(
            SetAlertDeliveryRequest, delivery=delivery, attempts=attempts, last_error=last_error
        )
        path = f"/alert-events/{eid}/delivery"
        return self._call("POST", path, AlertEventModel, body=body).to_entity()
