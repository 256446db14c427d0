"""The JSON shapes of the registry part of the native REST API (``/api/v1``),
shared by the server's routes and :class:`~modelloop.backends.http.HttpBackend`."""

from __future__ import annotations

from typing import Any

from pydantic import Field, StrictBool, StrictInt, StrictStr

from modelloop.entities import (
    AliasEvent,
    DeploymentRevision,
    EvaluationRecord,
    ModelVersion,
    PromotionRecord,
    RegisteredDataset,
    RegisteredModel,
)
from modelloop.server.schemas import _Model

__all__ = [
    "AliasEventList",
    "AliasEventModel",
    "CreateModelVersionRequest",
    "CreateRegisteredModelRequest",
    "DatasetList",
    "DatasetModel",
    "DeploymentList",
    "DeploymentModel",
    "EvaluationList",
    "EvaluationModel",
    "ModelVersionModel",
    "ModelVersionPage",
    "PromotionList",
    "PromotionModel",
    "PutDeploymentRequest",
    "RecordEvaluationRequest",
    "RecordPromotionRequest",
    "RegisteredModelModel",
    "RegisteredModelPage",
    "RenameRegisteredModelRequest",
    "RollbackDeploymentRequest",
    "SetAliasRequest",
    "UpdateModelVersionRequest",
    "UpdateRegisteredModelRequest",
]

_Tags = dict[str, StrictStr]


class RegisteredModelModel(_Model):
    """A registered model."""

    name: StrictStr
    description: StrictStr
    creation_time: StrictInt
    last_updated_time: StrictInt
    user_id: StrictStr | None = None
    intended_use: StrictStr = ""
    limitations: StrictStr = ""
    tags: _Tags = Field(default_factory=dict)
    aliases: dict[str, StrictInt] = Field(default_factory=dict)
    latest_version: StrictInt | None = None
    policy: dict[str, Any] | None = None

    def to_entity(self) -> RegisteredModel:
        """The entity."""
        return RegisteredModel(**self.model_dump())


class ModelVersionModel(_Model):
    """One version of a registered model."""

    name: StrictStr
    version: StrictInt
    source: StrictStr
    creation_time: StrictInt
    last_updated_time: StrictInt
    run_id: StrictStr | None = None
    artifact_path: StrictStr | None = None
    status: StrictStr = "READY"
    stage: StrictStr = "None"
    description: StrictStr = ""
    user_id: StrictStr | None = None
    flavor: StrictStr | None = None
    signature: dict[str, Any] | None = None
    size_bytes: StrictInt | None = None
    model_id: StrictStr | None = None
    tags: _Tags = Field(default_factory=dict)
    aliases: list[StrictStr] = Field(default_factory=list)

    def to_entity(self) -> ModelVersion:
        """The entity."""
        data = self.model_dump()
        data["aliases"] = tuple(data["aliases"])
        return ModelVersion(**data)


class RegisteredModelPage(_Model):
    """One page of registered models."""

    registered_models: list[RegisteredModelModel]
    next_page_token: StrictStr | None = None


class ModelVersionPage(_Model):
    """One page of model versions."""

    model_versions: list[ModelVersionModel]
    next_page_token: StrictStr | None = None


class AliasEventModel(_Model):
    """One recorded alias move."""

    id: StrictInt
    name: StrictStr
    alias: StrictStr
    version: StrictInt | None
    previous_version: StrictInt | None
    time: StrictInt
    actor: StrictStr
    reason: StrictStr = ""
    verdict_id: StrictInt | None = None

    def to_entity(self) -> AliasEvent:
        """The entity."""
        return AliasEvent(**self.model_dump())


class AliasEventList(_Model):
    """Alias moves, oldest first."""

    events: list[AliasEventModel]


class PromotionModel(_Model):
    """A stored promotion verdict."""

    id: StrictInt
    name: StrictStr
    version: StrictInt
    alias: StrictStr
    passed: StrictBool
    forced: StrictBool
    moved: StrictBool
    reason: StrictStr
    checks: list[dict[str, Any]]
    time: StrictInt
    actor: StrictStr
    policy: dict[str, Any] | None = None

    def to_entity(self) -> PromotionRecord:
        """The entity."""
        return PromotionRecord(**self.model_dump())


class PromotionList(_Model):
    """Promotion verdicts, oldest first."""

    promotions: list[PromotionModel]


class EvaluationModel(_Model):
    """An evaluation linked to a version."""

    id: StrictInt
    name: StrictStr
    version: StrictInt
    run_id: StrictStr | None
    dataset_name: StrictStr | None
    dataset_digest: StrictStr | None
    result: dict[str, Any]
    time: StrictInt
    actor: StrictStr

    def to_entity(self) -> EvaluationRecord:
        """The entity."""
        return EvaluationRecord(**self.model_dump())


class EvaluationList(_Model):
    """A version's evaluations."""

    evaluations: list[EvaluationModel]


class DatasetModel(_Model):
    """A registered evaluation dataset."""

    name: StrictStr
    digest: StrictStr
    blob_digest: StrictStr
    rows: StrictInt
    columns: list[StrictStr]
    created_time: StrictInt
    actor: StrictStr
    description: StrictStr = ""

    def to_entity(self) -> RegisteredDataset:
        """The entity."""
        return RegisteredDataset(**self.model_dump())


class DatasetList(_Model):
    """Registered evaluation datasets."""

    datasets: list[DatasetModel]


class CreateRegisteredModelRequest(_Model):
    """Create a registered model."""

    name: StrictStr
    description: StrictStr = ""
    tags: _Tags | None = None


class UpdateRegisteredModelRequest(_Model):
    """Change card fields or the promotion policy (omitted fields stay)."""

    description: StrictStr | None = None
    intended_use: StrictStr | None = None
    limitations: StrictStr | None = None
    policy: dict[str, Any] | None = None


class RenameRegisteredModelRequest(_Model):
    """Rename a registered model."""

    new_name: StrictStr


class CreateModelVersionRequest(_Model):
    """Register the next version of a model."""

    source: StrictStr
    run_id: StrictStr | None = None
    artifact_path: StrictStr | None = None
    description: StrictStr = ""
    tags: _Tags | None = None
    flavor: StrictStr | None = None
    signature: dict[str, Any] | None = None
    size_bytes: StrictInt | None = Field(default=None, ge=0)
    model_id: StrictStr | None = None
    create_model: StrictBool = False


class UpdateModelVersionRequest(_Model):
    """Change a version's description or stage."""

    description: StrictStr | None = None
    stage: StrictStr | None = None


class SetAliasRequest(_Model):
    """Point an alias at a version."""

    version: StrictInt = Field(ge=1)
    reason: StrictStr = ""


class RecordPromotionRequest(_Model):
    """A gate verdict to store; the alias moves when it passed or is forced."""

    alias: StrictStr
    passed: StrictBool
    checks: list[dict[str, Any]]
    forced: StrictBool = False
    reason: StrictStr = ""
    policy: dict[str, Any] | None = None


class RecordEvaluationRequest(_Model):
    """Link an evaluation to a version."""

    result: dict[str, Any]
    run_id: StrictStr | None = None
    dataset_name: StrictStr | None = None
    dataset_digest: StrictStr | None = None


class DeploymentModel(_Model):
    """One revision of a deployment's spec."""

    name: StrictStr
    revision: StrictInt
    spec: dict[str, Any]
    reason: StrictStr
    actor: StrictStr
    created_time: StrictInt

    def to_entity(self) -> DeploymentRevision:
        """The entity."""
        return DeploymentRevision(**self.model_dump())


class DeploymentList(_Model):
    """Deployment revisions."""

    deployments: list[DeploymentModel]


class PutDeploymentRequest(_Model):
    """A new revision of a deployment's spec."""

    spec: dict[str, Any]
    reason: StrictStr = ""


class RollbackDeploymentRequest(_Model):
    """Make an earlier revision live again (the previous one by default)."""

    to_revision: StrictInt | None = Field(default=None, ge=1)
    reason: StrictStr = ""
