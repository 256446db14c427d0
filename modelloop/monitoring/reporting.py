"""A monitor's report from what its runs stored: the newest window's drift, quality
and performance, reference-versus-current histograms merged from the stored window
summaries (raw logs are not reread), every metric's history and the alerts."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from modelloop.errors import InvalidArgument
from modelloop.monitoring.config import MonitorConfig
from modelloop.monitoring.monitor import monitored_columns, summary_spec
from modelloop.monitoring.report import ReportData, render_html, render_json
from modelloop.monitoring.rules import Rule
from modelloop.monitoring.summary import WindowSummary, histogram_pair

if TYPE_CHECKING:
    from modelloop.entities import Alert, Monitor, MonitorWindow
    from modelloop.tracking.client import Client

__all__ = ["build_report", "compare_frames", "report_data"]

# Per-window flags that are 0/1 copies of a score already charted.
_NOT_CHARTED = ("drifted[", "prediction_drifted[", "constant[")


def _alert_dict(a: Alert) -> dict[str, Any]:
    return {
        "id": a.id,
        "rule": a.rule.get("name", a.key),
        "expression": a.key,
        "severity": a.severity,
        "state": a.state,
        "fired_ms": a.fired_time,
        "resolved_ms": a.resolved_time,
        "value": a.value,
    }


def _histograms(
    client: Client, monitor: Monitor, config: MonitorConfig, windows: list[MonitorWindow]
) -> dict[str, Any]:
    latest = windows[-1].details or {}
    columns = latest.get("drift", {}).get("columns", {})
    if not columns:
        return {}
    reference = client.load_dataset(monitor.reference)
    # The monitor's column order (stored JSON sorts keys), which the spec depends on.
    order = monitored_columns(reference, config)
    names = [c for c in order if c in columns and c in reference.columns]
    types = {c: columns[c]["column_type"] for c in names}
    spec = summary_spec(reference[names], types)
    summaries = []
    for w in windows:
        if w.summary and w.summary.get("spec_fingerprint") == spec.fingerprint:
            summaries.append(WindowSummary.from_dict(w.summary, spec=spec))
    if not summaries:
        return {}  # the reference changed since these windows were scored
    ref = spec.summarise(reference[names])
    current = WindowSummary.merge(summaries)
    return {c: histogram_pair(ref, current, c) for c in names}


def report_data(client: Client, name: str, *, last: int | None = None) -> ReportData:
    """Everything the report of monitor ``name`` shows; histograms merge the ``last``
    windows (all by default), the drift table is the newest window's."""
    if last is not None and last < 1:
        raise InvalidArgument(f"last must be at least 1, got {last}")
    monitor = client.get_monitor(name)
    config = MonitorConfig.parse(monitor.config)
    since = max(monitor.windows - last, 0) if last is not None else 0
    windows = client.monitor_windows(name, since_seq=since, details=True)
    history = {
        metric: [(end, value) for _, end, value in points]
        for metric, points in client.backend.monitor_metric_history(name).items()
        if not metric.startswith(_NOT_CHARTED)
    }
    thresholds = {}
    for raw in config.rules:
        rule = Rule.from_dict(raw)
        if not rule.is_wildcard:
            thresholds[rule.key_for(rule.column).split(" ")[0]] = rule.threshold
    alerts = [_alert_dict(a) for a in client.list_alerts(monitor=name)]
    base: dict[str, Any] = {
        "monitor": monitor.name,
        "deployment": monitor.deployment,
        "reference": monitor.reference,
        "generated_ms": int(time.time() * 1000),
        "history": history,
        "alerts": alerts,
        "thresholds": thresholds,
    }
    if not windows:
        return ReportData(**base)
    latest = windows[-1]
    details = latest.details or {}
    return ReportData(
        **base,
        window={
            "start_ms": latest.start_time,
            "end_ms": latest.end_time,
            "rows": latest.rows,
            "seq": latest.seq,
            "merged_windows": len(windows),
        },
        drift=details.get("drift"),
        prediction_drift=details.get("prediction_drift"),
        quality=details.get("quality"),
        performance=details.get("performance"),
        histograms=_histograms(client, monitor, config, windows),
    )


def build_report(
    client: Client,
    name: str,
    *,
    output_format: Literal["html", "json"] = "html",
    last: int | None = None,
) -> str:
    """Monitor ``name``'s report as a self-contained HTML page or JSON text."""
    data = report_data(client, name, last=last)
    if output_format == "json":
        return json.dumps(render_json(data), allow_nan=False, indent=1)
    if output_format != "html":
        raise InvalidArgument(f"report format must be 'html' or 'json', got {output_format!r}")
    return render_html(data)


def compare_frames(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    column_types: Mapping[str, str] | None = None,
    stattests: Mapping[str, str] | None = None,
    thresholds: Mapping[str, float] | Literal["learned"] | None = None,
    drift_share: float = 0.5,
    name: str = "comparison",
) -> ReportData:
    """Drift, data quality and histograms of two data frames, without a monitor or a
    store: ``render_report_html(compare_frames(ref, cur))`` is a report page,
    ``render_json(...)`` the same for machines. Options are :func:`dataset_drift`'s;
    a column of ``columns`` missing from ``current`` is reported, not an error."""
    from modelloop.monitoring.profile import ReferenceProfile
    from modelloop.monitoring.quality import data_quality

    names = [str(c) for c in (reference.columns if columns is None else columns)]
    profile = ReferenceProfile.fit(
        reference,
        columns=names,
        column_types=column_types,
        stattests=stattests,
        thresholds=thresholds,
        drift_share=drift_share,
    )
    present = current.reindex(columns=names)
    drift = profile.drift(present)
    types = profile.column_types
    quality = data_quality(
        reference[names],
        current,
        columns=names,
        column_types={c: t for c, t in types.items() if c in current.columns},
    )
    spec = summary_spec(reference[names], types)
    ref_summary, cur_summary = spec.summarise(reference[names]), spec.summarise(current)
    return ReportData(
        monitor=name,
        generated_ms=int(time.time() * 1000),
        window={"rows": len(current)},
        drift=drift.to_dict(),
        quality=quality.to_dict(),
        histograms={c: histogram_pair(ref_summary, cur_summary, c) for c in names},
    )
