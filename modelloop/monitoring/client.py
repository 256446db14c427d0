"""The monitoring part of :class:`~modelloop.Client`: create and run monitors, read
their metric histories and alerts, and write reports."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

if TYPE_CHECKING:
    from modelloop.backends import Backend
    from modelloop.entities import Alert, Monitor, MonitorWindow
    from modelloop.monitoring.monitor import MonitorRun, WindowResult
    from modelloop.settings import Settings

__all__ = ["MonitorMixin"]


class MonitorMixin:
    """Monitoring operations of :class:`~modelloop.Client`."""

    _backend: Backend
    settings: Settings

    def create_monitor(
        self,
        name: str,
        deployment: str,
        reference: str,
        *,
        window: str | int = "1h",
        columns: Sequence[str] | None = None,
        column_types: Mapping[str, str] | None = None,
        stattests: Mapping[str, str] | None = None,
        thresholds: Mapping[str, float] | Literal["learned"] | None = None,
        drift_share: float = 0.5,
        target: str | None = None,
        model_type: Literal["classifier", "regressor"] | None = None,
        rules: str | Path | Sequence[Any] | None = None,
        webhook: str | None = None,
        grace_seconds: int = 60,
        start_time: int | None = None,
        label_delay_seconds: int = 0,
        description: str = "",
    ) -> Monitor:
        """Watch ``deployment``'s prediction logs against the registered dataset
        ``reference``, in windows of ``window`` (``"15m"``, ``"1h"``, ``"1d"`` or a
        row count such as ``"1000 rows"``).

        ``rules`` are alert rules (a YAML file, YAML text, or a list of expressions
        such as ``"dataset_drift_share > 0.3"`` or dicts with ``rule``/``severity``);
        ``webhook`` receives each alert event as a JSON POST; ``target`` names the
        reference's ground-truth column, turning on performance once feedback
        arrives; ``label_delay_seconds`` waits that long after a window's end before
        computing its performance, so late labels count. See
        :class:`~modelloop.monitoring.config.MonitorConfig`."""
        from modelloop.monitoring.rules import load_rules

        rule_dicts = [] if rules is None else [r.to_dict() for r in load_rules(rules)]
        config: dict[str, Any] = {
            "window": window,
            "columns": None if columns is None else list(columns),
            "column_types": dict(column_types or {}),
            "stattests": dict(stattests or {}),
            "thresholds": thresholds if thresholds == "learned" else dict(thresholds or {}),
            "drift_share": drift_share,
            "target": target,
            "model_type": model_type,
            "rules": rule_dicts,
            "webhook": webhook,
            "grace_seconds": grace_seconds,
            "start_time": start_time,
            "label_delay_seconds": label_delay_seconds,
        }
        return self._backend.create_monitor(name, deployment, reference, config, description)

    def get_monitor(self, name: str) -> Monitor:
        """One monitor."""
        return self._backend.get_monitor(name)

    def list_monitors(self, deployment: str | None = None) -> list[Monitor]:
        """Every monitor, or those of one deployment."""
        return self._backend.list_monitors(deployment)

    def update_monitor(
        self,
        name: str,
        changes: Mapping[str, Any] | None = None,
        *,
        description: str | None = None,
    ) -> Monitor:
        """Change some of a monitor's settings (``{"rules": [...], "webhook": None,
        "drift_share": 0.3}``: keys of :class:`~modelloop.monitoring.config.MonitorConfig`;
        ``rules`` as in :meth:`create_monitor`). Windows already scored keep their
        results; the next run uses the new settings."""
        from modelloop.monitoring.rules import load_rules

        config = dict(self._backend.get_monitor(name).config)
        for key, value in (changes or {}).items():
            if key == "rules":
                value = [] if value is None else [r.to_dict() for r in load_rules(value)]
            config[key] = value
        return self._backend.update_monitor(name, config, description)

    def delete_monitor(self, name: str) -> None:
        """Delete a monitor with its windows, metrics and alerts."""
        self._backend.delete_monitor(name)

    def run_monitor(
        self,
        name: str,
        *,
        now_ms: int | None = None,
        max_windows: int | None = None,
        log_root: str | None = None,
        progress: Callable[[WindowResult], None] | None = None,
    ) -> MonitorRun:
        """Score the windows logged since the monitor's last run (each window once)
        and raise or resolve its alerts; see :func:`~modelloop.monitoring.monitor.run_monitor`."""
        from modelloop.monitoring.monitor import run_monitor

        return run_monitor(
            self,  # type: ignore[arg-type]
            name,
            now_ms=now_ms,
            max_windows=max_windows,
            log_root=log_root,
            progress=progress,
        )

    def monitor_windows(
        self, name: str, *, since_seq: int = 0, limit: int | None = None, details: bool = False
    ) -> list[MonitorWindow]:
        """The monitor's scored windows, oldest first."""
        return self._backend.list_monitor_windows(name, since_seq, limit, details)

    def monitor_history(self, name: str, metrics: Sequence[str] | None = None) -> pd.DataFrame:
        """Every stored metric (or ``metrics``) over time: one row per window
        (``seq``, ``window_end`` as UTC timestamps) and one column per metric."""
        history = self._backend.monitor_metric_history(name, metrics)
        records: dict[int, dict[str, Any]] = {}
        for metric, points in history.items():
            for seq, end, value in points:
                row = records.setdefault(seq, {"seq": seq, "window_end": end})
                row[metric] = float("nan") if value is None else value
        frame = pd.DataFrame.from_records(
            [records[k] for k in sorted(records)], columns=["seq", "window_end", *sorted(history)]
        )
        frame["window_end"] = pd.to_datetime(frame["window_end"], unit="ms", utc=True)
        return frame

    def list_alerts(
        self, monitor: str | None = None, state: str | None = None, limit: int = 1000
    ) -> list[Alert]:
        """Alerts, newest first, of one monitor and/or in one state."""
        return self._backend.list_alerts(monitor, state, limit)

    def monitor_report(
        self,
        name: str,
        *,
        path: str | Path | None = None,
        output_format: Literal["html", "json"] = "html",
        last: int | None = None,
    ) -> str:
        """The monitor's report (HTML page or JSON text) for its newest window, with
        reference-versus-current histograms merged over the ``last`` windows (all by
        default) and every metric's history; written to ``path`` when given."""
        from modelloop.monitoring.reporting import build_report

        text = build_report(self, name, output_format=output_format, last=last)  # type: ignore[arg-type]
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text
