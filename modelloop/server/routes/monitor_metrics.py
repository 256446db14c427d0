"""``GET /metrics``: Prometheus gauges of every monitor's newest scored window (drift
share and verdict, per-column drift scores, every stored metric) and of the alerts
firing, read from the store at scrape time, so every worker process answers the
same and nothing is lost on a restart."""

from __future__ import annotations

import re
from collections.abc import Iterator

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from modelloop.backends.base import Backend
from modelloop.server.deps import BackendDep
from modelloop.server.errors import ERROR_RESPONSES

__all__ = ["router"]

router = APIRouter(tags=["monitoring"], responses=ERROR_RESPONSES)

_COLUMN_METRIC = re.compile(r"^(?P<metric>[^\[]+)\[(?P<column>.*)\]$")


class _MonitorCollector(Collector):
    """One scrape's gauges, from the backend."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def collect(self) -> Iterator[GaugeMetricFamily]:
        share = GaugeMetricFamily(
            "modelloop_monitor_dataset_drift_share",
            "Share of drifted columns in the monitor's newest window.",
            labels=["monitor", "deployment"],
        )
        drifted = GaugeMetricFamily(
            "modelloop_monitor_dataset_drift",
            "1 if the newest window's dataset drifted, else 0.",
            labels=["monitor", "deployment"],
        )
        score = GaugeMetricFamily(
            "modelloop_monitor_drift_score",
            "The drift statistic of a column in the monitor's newest window.",
            labels=["monitor", "deployment", "column"],
        )
        value = GaugeMetricFamily(
            "modelloop_monitor_metric",
            "Every stored metric of the monitor's newest window (column '' when none).",
            labels=["monitor", "deployment", "metric", "column"],
        )
        window_end = GaugeMetricFamily(
            "modelloop_monitor_window_end_seconds",
            "End of the monitor's newest scored window (Unix time).",
            labels=["monitor", "deployment"],
        )
        windows = GaugeMetricFamily(
            "modelloop_monitor_windows", "Windows scored so far.", labels=["monitor", "deployment"]
        )
        firing = GaugeMetricFamily(
            "modelloop_alerts_firing",
            "Alerts firing now, per monitor and severity.",
            labels=["monitor", "severity"],
        )
        for monitor in self.backend.list_monitors():
            base = [monitor.name, monitor.deployment]
            windows.add_metric(base, monitor.windows)
            if monitor.windows == 0:
                continue
            newest = self.backend.list_monitor_windows(monitor.name, monitor.windows - 1)
            if not newest:
                continue
            window = newest[-1]
            window_end.add_metric(base, window.end_time / 1000)
            for name, number in window.metrics.items():
                match = _COLUMN_METRIC.match(name)
                metric, column = (match["metric"], match["column"]) if match else (name, "")
                value.add_metric([*base, metric, column], number)
                if metric == "drift_score":
                    score.add_metric([*base, column], number)
                elif name == "dataset_drift_share":
                    share.add_metric(base, number)
                elif name == "dataset_drift":
                    drifted.add_metric(base, number)
        counts: dict[tuple[str, str], int] = {}
        for alert in self.backend.list_alerts(state="firing", limit=100_000):
            key = (alert.monitor, alert.severity)
            counts[key] = counts.get(key, 0) + 1
        for (monitor_name, severity), count in sorted(counts.items()):
            firing.add_metric([monitor_name, severity], count)
        yield from (share, drifted, score, value, window_end, windows, firing)


@router.get(
    "/metrics",
    operation_id="monitor_metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
def metrics(backend: BackendDep) -> Response:
    """Prometheus text exposition of every monitor's newest window and firing alerts."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_MonitorCollector(backend))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
