"""Experiments: named groups of runs."""

from __future__ import annotations

import dataclasses
import enum


class LifecycleStage(enum.StrEnum):
    """Whether an object is live or soft-deleted (restorable)."""

    ACTIVE = "active"
    DELETED = "deleted"


class ViewType(enum.StrEnum):
    """Which lifecycle stages a listing includes."""

    ACTIVE_ONLY = "active_only"
    DELETED_ONLY = "deleted_only"
    ALL = "all"

    def stages(self) -> tuple[LifecycleStage, ...]:
        """The lifecycle stages this view shows."""
        if self is ViewType.ACTIVE_ONLY:
            return (LifecycleStage.ACTIVE,)
        if self is ViewType.DELETED_ONLY:
            return (LifecycleStage.DELETED,)
        return (LifecycleStage.ACTIVE, LifecycleStage.DELETED)


@dataclasses.dataclass(frozen=True, slots=True)
class Experiment:
    """A named group of runs."""

    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: LifecycleStage
    creation_time: int
    last_update_time: int
    tags: dict[str, str] = dataclasses.field(default_factory=dict)
