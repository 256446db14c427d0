"""The monitoring part of ``make demo``: watch the served champion's logged traffic
against its training data, window by window, and show drift detected and an alert
fired."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from modelloop.settings import Settings
from modelloop.tracking.client import Client

__all__ = ["DRIFTED_COLUMNS", "drifted_traffic", "monitor_demo"]

MONITOR = "breast-cancer-monitor"
# The synthetic shift: bigger tumours in the "mean" and "worst" measurements, as if a
# new scanner calibration or a different patient population arrived.
DRIFTED_COLUMNS = (
    "mean radius", "mean perimeter", "mean area", "mean texture", "mean smoothness",
    "mean compactness", "mean concavity", "mean concave points", "worst radius",
    "worst perimeter", "worst area", "worst texture", "worst smoothness",
    "worst compactness", "worst concavity", "worst concave points",
)  # fmt: skip
RULES = """
rules:
  - rule: dataset_drift_share >= 0.5
    severity: critical
    name: feature drift
  - rule: prediction_drift_share >= 1
    severity: warning
    name: prediction drift
  - rule: accuracy < 0.9
    severity: warning
    name: live accuracy
"""


def drifted_traffic(X_test: Any, y_test: Any, rows: int, seed: int = 0) -> tuple[Any, Any]:
    """``rows`` rows resampled from ``X_test`` with :data:`DRIFTED_COLUMNS` scaled up
    by 25% to 60%, and their true labels."""
    rng = np.random.default_rng(seed)
    picked = rng.integers(0, len(X_test), rows)
    sample = X_test.iloc[picked].reset_index(drop=True)
    for column in DRIFTED_COLUMNS:
        sample[column] = sample[column] * rng.uniform(1.25, 1.6, rows)
    return sample, y_test.iloc[picked].reset_index(drop=True)


def monitor_demo(settings: Settings, X_train: Any, y_train: Any, model: str, out: Console) -> None:
    """Create a monitor of ``model``'s logs against its training data in windows of 100
    rows, run it, and show each window's drift, the alerts and the report."""
    from modelloop.backends.factory import resolve_stores

    client = Client(settings=settings)
    try:
        client.register_dataset("breast-cancer-train", X_train.assign(target=y_train))
        client.create_monitor(
            MONITOR,
            model,
            "breast-cancer-train",
            window="100 rows",
            target="target",
            rules=RULES,
            grace_seconds=0,
            description="the demo's champion against its training data",
        )
        run = client.run_monitor(MONITOR)
        title = f"monitor {MONITOR} (windows of 100 rows)"
        table = Table("window", "rows", "drift share", "dataset drift", "prediction drift",
                      "accuracy", "alerts", title=title)  # fmt: skip
        for w in client.monitor_windows(MONITOR, since_seq=0):
            fired = next((r.fired for r in run.windows if r.seq == w.seq), [])
            accuracy = w.metrics.get("accuracy")
            table.add_row(
                str(w.seq),
                str(w.rows),
                f"{w.metrics['dataset_drift_share']:.2f}",
                "[red]DRIFT[/red]" if w.metrics["dataset_drift"] else "no",
                f"{w.metrics.get('prediction_drift_share', float('nan')):.2f}",
                "" if accuracy is None else f"{accuracy:.3f}",
                ", ".join(fired),
            )
        out.print(table)
        for alert in client.list_alerts(monitor=MONITOR):
            out.print(
                f"alert [bold]{alert.rule.get('name', alert.key)}[/bold] ({alert.severity}) "
                f"{alert.state} since window {alert.fired_window}: {alert.key}, "
                f"value {alert.value:.3g}"
            )
        artifacts = resolve_stores(settings.tracking_uri, settings.artifacts_uri)[1]
        folder = Path(artifacts).parent if "://" not in artifacts else Path.cwd()
        report = folder / f"{MONITOR}.html"
        client.monitor_report(MONITOR, path=report)
        out.print(
            f"report: {report}; see also: modelloop monitor show {MONITOR}; modelloop alerts list"
        )
    finally:
        client.close()
