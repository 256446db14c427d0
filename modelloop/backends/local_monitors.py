"""The monitoring part of :class:`~modelloop.backends.LocalBackend`: monitors, their
scored windows and metric histories, alerts and alert-event deliveries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from modelloop import validation as v
from modelloop.backends.local_artifacts import LocalStoreBase
from modelloop.entities import (
    Alert,
    AlertEvent,
    AlertUpdate,
    Monitor,
    MonitorWindow,
    NewAlert,
    WindowRecord,
)
from modelloop.errors import InvalidArgument
from modelloop.store import audit, monitors, registry_records

__all__ = ["LocalMonitors"]


def _check_since(since_seq: int) -> int:
    value = v.check_int("since_seq", since_seq)
    if value < 0:
        raise InvalidArgument(f"since_seq must be >= 0, got {value}")
    return value


class LocalMonitors(LocalStoreBase):
    """Monitors over the metadata store."""

    def create_monitor(
        self,
        name: str,
        deployment: str,
        reference: str,
        config: dict[str, Any] | None = None,
        description: str = "",
    ) -> Monitor:
        """Create a monitor of ``deployment``'s prediction logs against the registered
        dataset ``reference`` (which must exist); ``config`` is validated."""
        from modelloop.monitoring.config import MonitorConfig

        v.check_name(name, "monitor name", 256)
        v.check_name(deployment, "deployment name", 256)
        v.check_name(reference, "reference dataset name", 256)
        clean = MonitorConfig.parse(config).to_dict()
        text = v.check_text(description, "description")

        def create(c: Any) -> Monitor:
            registry_records.get_dataset(c, reference)  # NotFound names the dataset
            return monitors.create(
                c, name, deployment, reference, clean, text, audit.current_actor()
            )

        details = {"deployment": deployment, "reference": reference}
        return self._write(create, "monitor.create", "monitor", name, details)

    def get_monitor(self, name: str) -> Monitor:
        """One monitor."""
        return self._read(lambda c: monitors.get(c, name))

    def list_monitors(self, deployment: str | None = None) -> list[Monitor]:
        """Every monitor, or those of one deployment."""
        return self._read(lambda c: monitors.list_all(c, deployment))

    def update_monitor(
        self, name: str, config: dict[str, Any] | None = None, description: str | None = None
    ) -> Monitor:
        """Replace a monitor's config (validated) and/or description. Windows already
        scored keep the results they were scored with."""
        from modelloop.monitoring.config import MonitorConfig

        text = None if description is None else v.check_text(description, "description")

        def change(c: Any) -> Monitor:
            current = monitors.get(c, name)
            clean = current.config if config is None else MonitorConfig.parse(config).to_dict()
            return monitors.update_config(c, name, clean, text)

        return self._write(change, "monitor.update", "monitor", name)

    def delete_monitor(self, name: str) -> None:
        """Delete a monitor, its windows, metrics and alerts."""
        self._write(lambda c: monitors.delete(c, name), "monitor.delete", "monitor", name)

    def record_monitor_window(
        self,
        name: str,
        window: WindowRecord,
        state: dict[str, Any],
        fired: Sequence[NewAlert] = (),
        updates: Sequence[AlertUpdate] = (),
        deliver: bool = False,
    ) -> list[AlertEvent]:
        """Store one scored window with the monitor's new state and the alerts it
        fires or resolves, in one transaction (``Conflict`` if that window was already
        recorded). Returns the alert events to deliver."""
        v.check_int("seq", window.seq)
        return self._write(
            lambda c: monitors.record_window(
                c, name, window, state, fired, updates, deliver=deliver
            ),
            "monitor.window",
            "monitor",
            name,
            {
                "seq": window.seq,
                "rows": window.rows,
                "fired": [a.key for a in fired],
                "resolved": [u.alert_id for u in updates if u.payload is not None],
            },
        )

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
        """Add metrics to a scored window (each at most once: ``Conflict``), merge
        ``state`` into the monitor's and store the alert changes, in one transaction."""
        number = v.check_int("seq", seq)
        return self._write(
            lambda c: monitors.record_window_metrics(
                c, name, number, metrics, state, fired, updates, deliver=deliver
            ),
            "monitor.metrics",
            "monitor",
            name,
            {"seq": number, "metrics": sorted(metrics)[:50], "fired": [a.key for a in fired]},
        )

    def list_monitor_windows(
        self, name: str, since_seq: int = 0, limit: int | None = None, details: bool = False
    ) -> list[MonitorWindow]:
        """Scored windows after ``since_seq``, oldest first."""
        since = _check_since(since_seq)
        cap = v.check_limit(limit)
        return self._read(
            lambda c: monitors.windows(c, name, since_seq=since, limit=cap, details=details)
        )

    def monitor_metric_history(
        self, name: str, metrics: Sequence[str] | None = None, since_seq: int = 0
    ) -> dict[str, list[tuple[int, int, float | None]]]:
        """``metric -> [(seq, window end time, value)]`` oldest first."""
        since = _check_since(since_seq)
        wanted = None if metrics is None else [str(m) for m in metrics]
        return self._read(lambda c: monitors.metric_history(c, name, wanted, since))

    def list_alerts(
        self, monitor: str | None = None, state: str | None = None, limit: int = 1000
    ) -> list[Alert]:
        """Alerts, newest first."""
        cap = v.check_limit(limit) or 1000
        return self._read(
            lambda c: monitors.list_alerts(c, monitor=monitor, state=state, limit=cap)
        )

    def list_alert_events(
        self,
        monitor: str | None = None,
        alert_id: str | None = None,
        delivery: str | None = None,
        limit: int = 1000,
    ) -> list[AlertEvent]:
        """Alert events, oldest first."""
        cap = v.check_limit(limit) or 1000
        return self._read(
            lambda c: monitors.list_events(
                c, monitor=monitor, alert_id=alert_id, delivery=delivery, limit=cap
            )
        )

    def set_alert_delivery(
        self, event_id: int, delivery: str, attempts: int, last_error: str = ""
    ) -> AlertEvent:
        """Record a delivery attempt's outcome for an alert event."""
        eid = v.check_int("event_id", event_id)
        tries = v.check_int("attempts", attempts)
        error = v.check_text(last_error, "last_error")
        return self._write(
            lambda c: monitors.set_delivery(c, eid, delivery, tries, error),
            "alert.delivery",
            "alert_event",
            str(eid),
            {"delivery": delivery, "attempts": tries},
        )
