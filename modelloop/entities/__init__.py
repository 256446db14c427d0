"""Typed entities shared by the store, the backends, the server and the clients."""

from modelloop.entities.dataset import Dataset, DatasetInput
from modelloop.entities.experiment import Experiment, LifecycleStage, ViewType
from modelloop.entities.run import (
    ArtifactInfo,
    Metric,
    Page,
    Param,
    Run,
    RunStatus,
)

__all__ = [
    "ArtifactInfo",
    "Dataset",
    "DatasetInput",
    "Experiment",
    "LifecycleStage",
    "Metric",
    "Page",
    "Param",
    "Run",
    "RunStatus",
    "ViewType",
]
