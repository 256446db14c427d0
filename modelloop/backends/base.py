"""The Backend protocol: every operation of the Python API, once.

``LocalBackend`` implements it over the metadata and artifact stores in this
process; ``HttpBackend`` (the server issue) implements it over HTTP with the
same behaviour and the same typed errors.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from modelloop.entities import (
    ArtifactInfo,
    DatasetInput,
    Experiment,
    Metric,
    Page,
    Param,
    Run,
    RunStatus,
    ViewType,
)


@dataclasses.dataclass(frozen=True, slots=True)
class GcReport:
    """What ``gc`` found: unreferenced blobs, their bytes, and whether they were removed."""

    unreferenced: tuple[str, ...]
    bytes: int
    removed: bool
    kept_young: int = 0


@runtime_checkable
class Backend(Protocol):
    """The operations behind ``modelloop.*``, the CLI and the server's routes."""

    # experiments
    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: dict[str, str] | None = None
    ) -> str:
        """Create an experiment and return its id."""
        ...

    def get_experiment(self, experiment_id: str) -> Experiment:
        """An experiment by id."""
        ...

    def get_experiment_by_name(self, name: str) -> Experiment:
        """An experiment by name."""
        ...

    def list_experiments(self, view_type: ViewType = ViewType.ACTIVE_ONLY) -> list[Experiment]:
        """All experiments in a view."""
        ...

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        """Rename an experiment."""
        ...

    def delete_experiment(self, experiment_id: str) -> None:
        """Soft-delete an experiment and its runs."""
        ...

    def restore_experiment(self, experiment_id: str) -> None:
        """Undo a soft delete."""
        ...

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        """Set an experiment tag."""
        ...

    # runs
    def create_run(
        self,
        experiment_id: str,
        name: str | None = None,
        start_time: int | None = None,
        tags: dict[str, str] | None = None,
        parent_run_id: str | None = None,
        user: str | None = None,
    ) -> Run:
        """Start a RUNNING run."""
        ...

    def get_run(self, run_id: str) -> Run:
        """A run with its params, latest metrics, tags and inputs."""
        ...

    def update_run(
        self,
        run_id: str,
        status: RunStatus | None = None,
        end_time: int | None = None,
        name: str | None = None,
        status_message: str | None = None,
    ) -> None:
        """Change a run's status (ending it), end time or name."""
        ...

    def delete_run(self, run_id: str) -> None:
        """Soft-delete a run."""
        ...

    def restore_run(self, run_id: str) -> None:
        """Undo a soft delete."""
        ...

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: dict[str, str] | None = None,
    ) -> None:
        """Record metrics, params and tags in one transaction (all or nothing)."""
        ...

    def delete_tag(self, run_id: str, key: str) -> None:
        """Remove a run tag."""
        ...

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every point of one metric."""
        ...

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> Page[Run]:
        """One page of runs matching a filter, in order."""
        ...

    def log_inputs(self, run_id: str, inputs: Sequence[DatasetInput]) -> None:
        """Record datasets a run used."""
        ...

    # artifacts
    def upload_artifact(self, run_id: str, path: str, stream: BinaryIO) -> ArtifactInfo:
        """Store one file of a run's artifact tree, streamed."""
        ...

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[ArtifactInfo]:
        """Direct children of a folder in a run's artifact tree."""
        ...

    def open_artifact(self, run_id: str, path: str) -> BinaryIO:
        """A verified reader of one artifact file."""
        ...

    def download_artifacts(self, run_id: str, path: str | None, dest: Path) -> Path:
        """Copy a file or folder of a run's artifacts under ``dest``; returns the local path."""
        ...

    # maintenance
    def gc(self, dry_run: bool = True, grace_seconds: int | None = None) -> GcReport:
        """Find (and unless ``dry_run`` remove) blobs no live record refers to."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
