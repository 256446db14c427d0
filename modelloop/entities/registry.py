"""Registry entities: registered models, their versions, alias moves, promotion
verdicts, evaluations and registered evaluation datasets."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

__all__ = [
    "AliasEvent",
    "EvaluationRecord",
    "ModelVersion",
    "PromotionRecord",
    "RegisteredDataset",
    "RegisteredModel",
    "VersionStage",
]


class VersionStage(enum.StrEnum):
    """MLflow's (deprecated) version stages; modelloop uses aliases, and ``Archived``
    to retire a version without deleting it."""

    NONE = "None"
    STAGING = "Staging"
    PRODUCTION = "Production"
    ARCHIVED = "Archived"


@dataclasses.dataclass(frozen=True, slots=True)
class RegisteredModel:
    """A named model: its card fields, tags, aliases and promotion policy."""

    name: str
    description: str
    creation_time: int
    last_updated_time: int
    user_id: str | None = None
    intended_use: str = ""
    limitations: str = ""
    tags: dict[str, str] = dataclasses.field(default_factory=dict)
    aliases: dict[str, int] = dataclasses.field(default_factory=dict)
    latest_version: int | None = None
    policy: dict[str, Any] | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ModelVersion:
    """One version of a registered model, created from a run's model folder."""

    name: str
    version: int
    source: str
    creation_time: int
    last_updated_time: int
    run_id: str | None = None
    artifact_path: str | None = None
    status: str = "READY"
    stage: str = VersionStage.NONE.value
    description: str = ""
    user_id: str | None = None
    flavor: str | None = None
    signature: dict[str, Any] | None = None
    size_bytes: int | None = None
    model_id: str | None = None
    tags: dict[str, str] = dataclasses.field(default_factory=dict)
    aliases: tuple[str, ...] = ()

    @property
    def uri(self) -> str:
        """``models:/NAME/VERSION``."""
        return f"models:/{self.name}/{self.version}"

    @property
    def archived(self) -> bool:
        """Whether the version is retired (stage ``Archived``)."""
        return self.stage == VersionStage.ARCHIVED.value


@dataclasses.dataclass(frozen=True, slots=True)
class AliasEvent:
    """One move of an alias: it pointed at ``previous_version`` and now at ``version``
    (None when the alias was deleted)."""

    id: int
    name: str
    alias: str
    version: int | None
    previous_version: int | None
    time: int
    actor: str
    reason: str = ""
    verdict_id: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class PromotionRecord:
    """A promotion attempt: the gate verdict (every check with its value), whether it
    was forced past failing checks, and whether the alias moved."""

    id: int
    name: str
    version: int
    alias: str
    passed: bool
    forced: bool
    moved: bool
    reason: str
    checks: list[dict[str, Any]]
    time: int
    actor: str
    policy: dict[str, Any] | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class EvaluationRecord:
    """An evaluation of a model version on a dataset, and the run it was logged as."""

    id: int
    name: str
    version: int
    run_id: str | None
    dataset_name: str | None
    dataset_digest: str | None
    result: dict[str, Any]
    time: int
    actor: str


@dataclasses.dataclass(frozen=True, slots=True)
class RegisteredDataset:
    """A named evaluation dataset kept in the artifact store (Parquet), so that gates
    re-score candidate and champion on exactly the same rows."""

    name: str
    digest: str
    blob_digest: str
    rows: int
    columns: list[str]
    created_time: int
    actor: str
    description: str = ""
