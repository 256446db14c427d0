"""Monitoring: drift statistics, data quality and performance (realised, and estimated
before labels arrive) of a current data set against a reference; monitors that score
a deployment's prediction logs window by window; alert rules, alert transitions and
webhook delivery; mergeable window summaries and reports."""

from __future__ import annotations

from modelloop.monitoring.alerting import (
    AlertChange,
    OpenAlert,
    Transitions,
    event_message,
    event_payload,
    transition,
)
from modelloop.monitoring.column_types import ColumnType, infer_column_type, infer_column_types
from modelloop.monitoring.config import MonitorConfig, WindowSpec, parse_window
from modelloop.monitoring.drift import (
    ColumnDrift,
    DatasetDrift,
    column_drift,
    dataset_drift,
    learn_threshold,
)
from modelloop.monitoring.performance import CBPE, CBPE_METRICS, realised_performance
from modelloop.monitoring.profile import ReferenceProfile
from modelloop.monitoring.quality import ColumnQuality, DataQuality, data_quality
from modelloop.monitoring.report import ReportData, render_json
from modelloop.monitoring.report import render_html as render_report_html
from modelloop.monitoring.reporting import compare_frames
from modelloop.monitoring.rules import DEFAULT_RULES, Rule, RuleOutcome, evaluate_rules, load_rules
from modelloop.monitoring.stattests import STATTESTS, StatResult, default_test, get_stattest
from modelloop.monitoring.summary import (
    APPROXIMATE_STATTESTS,
    SummarySpec,
    WindowSummary,
    approximate_drift,
    histogram_pair,
)
from modelloop.monitoring.summary_stats import ColumnSummary, Histogram
from modelloop.monitoring.webhook import (
    DeliveryResult,
    WebhookNotifier,
    log_alert_event,
    redacted_url,
)

__all__ = [
    "APPROXIMATE_STATTESTS",
    "AlertChange",
    "CBPE",
    "CBPE_METRICS",
    "ColumnDrift",
    "ColumnQuality",
    "ColumnSummary",
    "ColumnType",
    "DEFAULT_RULES",
    "DataQuality",
    "DatasetDrift",
    "DeliveryResult",
    "Histogram",
    "MonitorConfig",
    "OpenAlert",
    "ReferenceProfile",
    "ReportData",
    "Rule",
    "RuleOutcome",
    "STATTESTS",
    "StatResult",
    "SummarySpec",
    "Transitions",
    "WebhookNotifier",
    "WindowSpec",
    "WindowSummary",
    "approximate_drift",
    "column_drift",
    "compare_frames",
    "data_quality",
    "dataset_drift",
    "default_test",
    "evaluate_rules",
    "event_message",
    "event_payload",
    "get_stattest",
    "histogram_pair",
    "infer_column_type",
    "infer_column_types",
    "learn_threshold",
    "load_rules",
    "log_alert_event",
    "parse_window",
    "realised_performance",
    "redacted_url",
    "render_json",
    "render_report_html",
    "transition",
]
