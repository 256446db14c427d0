"""Monitoring: drift statistics, data quality and performance (realised, and estimated
before labels arrive) of a current data set against a reference."""

from __future__ import annotations

from modelloop.monitoring.column_types import ColumnType, infer_column_type, infer_column_types
from modelloop.monitoring.drift import (
    ColumnDrift,
    DatasetDrift,
    column_drift,
    dataset_drift,
    learn_threshold,
)
from modelloop.monitoring.performance import CBPE, CBPE_METRICS, realised_performance
from modelloop.monitoring.quality import ColumnQuality, DataQuality, data_quality
from modelloop.monitoring.stattests import STATTESTS, StatResult, default_test, get_stattest

__all__ = [
    "CBPE",
    "CBPE_METRICS",
    "ColumnDrift",
    "ColumnQuality",
    "ColumnType",
    "DataQuality",
    "DatasetDrift",
    "STATTESTS",
    "StatResult",
    "column_drift",
    "data_quality",
    "dataset_drift",
    "default_test",
    "get_stattest",
    "infer_column_type",
    "infer_column_types",
    "learn_threshold",
    "realised_performance",
]
