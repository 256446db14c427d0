"""Runs and what they record: params, metrics, tags, artifacts."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterator, Sequence
from typing import Generic, TypeVar

from modelloop.entities.dataset import DatasetInput
from modelloop.entities.experiment import LifecycleStage

T = TypeVar("T")


class RunStatus(enum.StrEnum):
    """The state of a run. Only a RUNNING run (or SCHEDULED) accepts new data."""

    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    @property
    def is_terminal(self) -> bool:
        """True once the run has ended."""
        return self in (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED)


@dataclasses.dataclass(frozen=True, slots=True)
class Metric:
    """One point of a metric's time series. ``timestamp`` is milliseconds since the epoch."""

    key: str
    value: float
    timestamp: int
    step: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class Param:
    """An immutable run parameter."""

    key: str
    value: str


@dataclasses.dataclass(frozen=True, slots=True)
class ArtifactInfo:
    """A file (or folder, ``is_dir``) in a run's artifact tree."""

    path: str
    is_dir: bool
    size: int | None = None
    digest: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Run:
    """A run with its latest metrics, params, tags and inputs."""

    run_id: str
    experiment_id: str
    name: str
    status: RunStatus
    start_time: int
    end_time: int | None
    lifecycle_stage: LifecycleStage
    user: str
    parent_run_id: str | None = None
    status_message: str | None = None
    params: dict[str, str] = dataclasses.field(default_factory=dict)
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    tags: dict[str, str] = dataclasses.field(default_factory=dict)
    inputs: tuple[DatasetInput, ...] = ()

    @property
    def artifact_uri(self) -> str:
        """The run's artifact root, as a URI usable with ``runs:/``."""
        return f"runs:/{self.run_id}"


@dataclasses.dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of results; ``next_page_token`` is None on the last page."""

    items: Sequence[T]
    next_page_token: str | None = None

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> T:
        return self.items[index]
