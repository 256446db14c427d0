"""Typed entities shared by the store, the backends, the server and the clients."""

from modelloop.entities.dataset import Dataset, DatasetInput
from modelloop.entities.deployment import DeploymentRevision
from modelloop.entities.experiment import Experiment, LifecycleStage, ViewType
from modelloop.entities.monitor import (
    Alert,
    AlertEvent,
    AlertUpdate,
    Monitor,
    MonitorWindow,
    NewAlert,
    WindowRecord,
)
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
    "Alert",
    "AlertEvent",
    "AlertUpdate",
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
    "Monitor",
    "MonitorWindow",
    "NewAlert",
    "Page",
    "Param",
    "PromotionRecord",
    "RegisteredDataset",
    "RegisteredModel",
    "Run",
    "RunStatus",
    "VersionStage",
    "ViewType",
    "WindowRecord",
]
