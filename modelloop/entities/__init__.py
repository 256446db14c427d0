"""Typed entities shared by the store, the backends, the server and the clients."""

from modelloop.entities.dataset import Dataset, DatasetInput
from modelloop.entities.deployment import DeploymentRevision
from modelloop.entities.experiment import Experiment, LifecycleStage, ViewType
from modelloop.entities.registry import (
    AliasEvent,
    EvaluationRecord,
    ModelVersion,
    PromotionRecord,
    RegisteredDataset,
    RegisteredModel,
    VersionStage,
)
from modelloop.entities.run import (
    ArtifactInfo,
    Metric,
    Page,
    Param,
    Run,
    RunStatus,
)

__all__ = [
    "AliasEvent",
    "ArtifactInfo",
    "Dataset",
    "DatasetInput",
    "DeploymentRevision",
    "EvaluationRecord",
    "Experiment",
    "LifecycleStage",
    "Metric",
    "ModelVersion",
    "Page",
    "Param",
    "PromotionRecord",
    "RegisteredDataset",
    "RegisteredModel",
    "Run",
    "RunStatus",
    "VersionStage",
    "ViewType",
]
