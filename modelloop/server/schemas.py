"""The JSON shapes of the native REST API (``/api/v1``), written once.

The server's routes validate requests and describe responses with these models
(so ``/openapi.json`` documents them), and :class:`~modelloop.backends.http.HttpBackend`
builds its requests and reads its responses with the same models. Each model
that mirrors an entity converts with ``from_entity`` / ``to_entity``.

Scalars are strict (a number is not accepted where a string is expected, nor
``"1"`` where an integer is). JSON has no NaN or infinity, so non-finite metric
values travel as the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``.

This module imports pydantic only (not FastAPI), so the HTTP client stays light.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StrictInt,
    StrictStr,
    WithJsonSchema,
)

from modelloop.backends.base import GcReport
from modelloop.entities import (
    ArtifactInfo,
    Dataset,
    DatasetInput,
    Experiment,
    LifecycleStage,
    Metric,
    Param,
    Run,
    RunStatus,
    ViewType,
)

__all__ = [
    "DIGEST_HEADER",
    "ArtifactInfoModel",
    "ArtifactList",
    "CreateExperimentRequest",
    "CreateRunRequest",
    "DatasetInputModel",
    "DatasetModel",
    "ErrorBody",
    "ExperimentCreated",
    "ExperimentList",
    "ExperimentModel",
    "GcReportModel",
    "GcRequest",
    "Health",
    "LogBatchRequest",
    "LogInputsRequest",
    "MetricHistory",
    "MetricModel",
    "ParamModel",
    "RenameExperimentRequest",
    "RunModel",
    "RunPage",
    "SearchRunsRequest",
    "SetTagRequest",
    "UpdateRunRequest",
    "WireFloat",
]

#: Response header of an artifact download: the sha256 hex digest of the file's content.
DIGEST_HEADER = "X-Modelloop-Sha256"

_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _parse_float(value: Any) -> Any:
    if isinstance(value, str) and value in _NON_FINITE:
        return _NON_FINITE[value]
    return value  # anything else is checked by the strict float schema


def _dump_float(value: float) -> float | str:
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


WireFloat = Annotated[
    float,
    Field(strict=True),
    BeforeValidator(_parse_float),
    PlainSerializer(_dump_float, when_used="json"),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number"},
                {"type": "string", "enum": ["NaN", "Infinity", "-Infinity"]},
            ]
        }
    ),
]
"""A float that may be NaN or infinite: a JSON number, or one of three strings."""


class _Model(BaseModel):
    # Unknown fields are ignored, so a client keeps working against a newer server.
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    @classmethod
    def from_entity(cls, entity: object) -> Self:
        """The wire form of an entity (a dataclass with the same field names)."""
        return cls.model_validate(entity, from_attributes=True)


class _Request(_Model):
    # A misspelt field in a request is an error, not silently dropped.
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ErrorBody(_Model):
    """Every error response: a stable code, a message, and optional details."""

    error_code: StrictStr = Field(examples=["NOT_FOUND"])
    message: StrictStr
    details: dict[str, Any] | None = None


class Health(_Model):
    """``GET /health``."""

    status: StrictStr = "ok"
    version: StrictStr


# entities ----------------------------------------------------------------------------


class ExperimentModel(_Model):
    """An experiment."""

    experiment_id: StrictStr
    name: StrictStr
    artifact_location: StrictStr
    lifecycle_stage: LifecycleStage
    creation_time: StrictInt
    last_update_time: StrictInt
    tags: dict[str, StrictStr] = {}

    def to_entity(self) -> Experiment:
        """The entity."""
        return Experiment(
            self.experiment_id,
            self.name,
            self.artifact_location,
            self.lifecycle_stage,
            self.creation_time,
            self.last_update_time,
            dict(self.tags),
        )


class MetricModel(_Model):
    """One point of a metric; ``timestamp`` in milliseconds since the epoch."""

    key: StrictStr
    value: WireFloat
    timestamp: StrictInt
    step: StrictInt = 0

    def to_entity(self) -> Metric:
        """The entity."""
        return Metric(self.key, self.value, self.timestamp, self.step)


class ParamModel(_Model):
    """A run parameter (values are strings)."""

    key: StrictStr
    value: StrictStr

    def to_entity(self) -> Param:
        """The entity."""
        return Param(self.key, self.value)


class DatasetModel(_Model):
    """A content-addressed dataset record."""

    digest: StrictStr
    name: StrictStr
    source: StrictStr
    source_type: StrictStr
    num_rows: StrictInt | None
    schema_: dict[str, StrictStr] = Field(alias="schema")
    profile: dict[str, dict[str, Any]]
    created_time: StrictInt = 0

    def to_entity(self) -> Dataset:
        """The entity."""
        return Dataset(
            self.digest,
            self.name,
            self.source,
            self.source_type,
            self.num_rows,
            dict(self.schema_),
            dict(self.profile),
            self.created_time,
        )


class DatasetInputModel(_Model):
    """A dataset a run used, in a context such as ``train``."""

    dataset: DatasetModel
    context: StrictStr

    def to_entity(self) -> DatasetInput:
        """The entity."""
        return DatasetInput(self.dataset.to_entity(), self.context)


class RunModel(_Model):
    """A run with its params, latest metrics, tags and inputs."""

    run_id: StrictStr
    experiment_id: StrictStr
    name: StrictStr
    status: RunStatus
    start_time: StrictInt
    end_time: StrictInt | None
    lifecycle_stage: LifecycleStage
    user: StrictStr
    parent_run_id: StrictStr | None = None
    status_message: StrictStr | None = None
    params: dict[str, StrictStr] = {}
    metrics: dict[str, WireFloat] = {}
    tags: dict[str, StrictStr] = {}
    inputs: list[DatasetInputModel] = []

    def to_entity(self) -> Run:
        """The entity."""
        return Run(
            run_id=self.run_id,
            experiment_id=self.experiment_id,
            name=self.name,
            status=self.status,
            start_time=self.start_time,
            end_time=self.end_time,
            lifecycle_stage=self.lifecycle_stage,
            user=self.user,
            parent_run_id=self.parent_run_id,
            status_message=self.status_message,
            params=dict(self.params),
            metrics=dict(self.metrics),
            tags=dict(self.tags),
            inputs=tuple(i.to_entity() for i in self.inputs),
        )


class ArtifactInfoModel(_Model):
    """A file (with its size and sha256 digest) or a folder of a run's artifact tree."""

    path: StrictStr
    is_dir: StrictBool
    size: StrictInt | None = None
    digest: StrictStr | None = None

    def to_entity(self) -> ArtifactInfo:
        """The entity."""
        return ArtifactInfo(self.path, self.is_dir, self.size, self.digest)


class GcReportModel(_Model):
    """What garbage collection found (and removed unless it was a dry run)."""

    unreferenced: list[StrictStr]
    bytes: StrictInt
    removed: StrictBool
    kept_young: StrictInt = 0

    def to_entity(self) -> GcReport:
        """The entity."""
        return GcReport(tuple(self.unreferenced), self.bytes, self.removed, self.kept_young)


# requests and list responses ---------------------------------------------------------


class CreateExperimentRequest(_Request):
    """``POST /api/v1/experiments``."""

    name: StrictStr
    artifact_location: StrictStr | None = None
    tags: dict[str, StrictStr] | None = None


class ExperimentCreated(_Model):
    """The id of a new experiment."""

    experiment_id: StrictStr


class ExperimentList(_Model):
    """Experiments in a view, newest first."""

    experiments: list[ExperimentModel]


class RenameExperimentRequest(_Request):
    """``PATCH /api/v1/experiments/{experiment_id}``."""

    name: StrictStr


class SetTagRequest(_Request):
    """The value of a tag set by ``PUT .../tags/{key}``."""

    value: StrictStr


class CreateRunRequest(_Request):
    """``POST /api/v1/runs``; ``start_time`` defaults to now, ``user`` to the server's."""

    experiment_id: StrictStr
    name: StrictStr | None = None
    start_time: StrictInt | None = None
    tags: dict[str, StrictStr] | None = None
    parent_run_id: StrictStr | None = None
    user: StrictStr | None = None


class UpdateRunRequest(_Request):
    """``PATCH /api/v1/runs/{run_id}``: the fields to change."""

    status: RunStatus | None = None
    end_time: StrictInt | None = None
    name: StrictStr | None = None
    status_message: StrictStr | None = None


class LogBatchRequest(_Request):
    """``POST /api/v1/runs/{run_id}/batch``: written in one transaction, all or nothing."""

    metrics: list[MetricModel] = []
    params: list[ParamModel] = []
    tags: dict[str, StrictStr] | None = None


class MetricHistory(_Model):
    """Every point of one metric, by step."""

    metrics: list[MetricModel]


class SearchRunsRequest(_Request):
    """``POST /api/v1/runs/search``: MLflow filter syntax, ordering and paging."""

    experiment_ids: list[StrictStr]
    filter_string: StrictStr | None = None
    view_type: ViewType = ViewType.ACTIVE_ONLY
    max_results: StrictInt = 1000
    order_by: list[StrictStr] | None = None
    page_token: StrictStr | None = None


class RunPage(_Model):
    """One page of runs; ``next_page_token`` is null on the last page."""

    runs: list[RunModel]
    next_page_token: StrictStr | None = None


class LogInputsRequest(_Request):
    """``POST /api/v1/runs/{run_id}/inputs``."""

    inputs: list[DatasetInputModel]


class ArtifactList(_Model):
    """Direct children of a folder of a run's artifact tree."""

    files: list[ArtifactInfoModel]


class GcRequest(_Request):
    """``POST /api/v1/gc``: report (``dry_run``) or remove unreferenced blobs."""

    dry_run: StrictBool = True
    grace_seconds: StrictInt | None = None
