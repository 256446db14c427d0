"""Runs as a pandas DataFrame (one row per run, MLflow's column naming)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from modelloop.entities import Run

_BASE = [
    "run_id",
    "experiment_id",
    "run_name",
    "status",
    "start_time",
    "end_time",
    "user",
    "parent_run_id",
]


def runs_to_frame(runs: Sequence[Run]) -> pd.DataFrame:
    """A DataFrame with attribute columns, then ``metrics.*``, ``params.*``, ``tags.*``."""
    records: list[dict[str, Any]] = []
    metric_keys: set[str] = set()
    param_keys: set[str] = set()
    tag_keys: set[str] = set()
    for run in runs:
        rec: dict[str, Any] = {
            "run_id": run.run_id,
            "experiment_id": run.experiment_id,
            "run_name": run.name,
            "status": run.status.value,
            "start_time": run.start_time,
            "end_time": run.end_time,
            "user": run.user,
            "parent_run_id": run.parent_run_id,
        }
        for k, val in run.metrics.items():
            rec[f"metrics.{k}"] = val
            metric_keys.add(k)
        for k, sval in run.params.items():
            rec[f"params.{k}"] = sval
            param_keys.add(k)
        for k, sval in run.tags.items():
            rec[f"tags.{k}"] = sval
            tag_keys.add(k)
        records.append(rec)
    columns = (
        _BASE
        + [f"metrics.{k}" for k in sorted(metric_keys)]
        + [f"params.{k}" for k in sorted(param_keys)]
        + [f"tags.{k}" for k in sorted(tag_keys)]
    )
    frame = pd.DataFrame.from_records(records, columns=columns)
    for col in ("start_time", "end_time"):
        frame[col] = pd.to_datetime(frame[col], unit="ms", utc=True)
    return frame
