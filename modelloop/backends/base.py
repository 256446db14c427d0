"""The Backend protocol: every operation of the Python API, once.

``LocalBackend`` implements it over the metadata and artifact stores in this
process; ``HttpBackend`` (the server issue) implements it over HTTP with the
same behaviour and the same typed errors.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO, Protocol, runtime_checkable

from modelloop.entities import (
    Alert,
    AlertEvent,
    AlertUpdate,
    AliasEvent,
    ArtifactInfo,
    DatasetInput,
    DeploymentRevision,
    EvaluationRecord,
    Experiment,
    Metric,
    ModelVersion,
    Monitor,
    MonitorWindow,
    NewAlert,
    Page,
    Param,
    PromotionRecord,
    RegisteredDataset,
    RegisteredModel,
    Run,
    RunStatus,
    ViewType,
    WindowRecord,
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

    # registry: registered models
    def create_registered_model(
        self, name: str, description: str = "", tags: dict[str, str] | None = None
    ) -> RegisteredModel:
        """Create a registered model."""
        ...

    def get_registered_model(self, name: str) -> RegisteredModel:
        """A registered model with its tags and aliases."""
        ...

    def search_registered_models(
        self,
        name_like: str | None = None,
        tags: dict[str, str] | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> Page[RegisteredModel]:
        """Registered models by name pattern (SQL LIKE) and tags."""
        ...

    def update_registered_model(
        self,
        name: str,
        description: str | None = None,
        intended_use: str | None = None,
        limitations: str | None = None,
        policy: dict[str, Any] | None = None,
    ) -> RegisteredModel:
        """Change card fields or the promotion policy."""
        ...

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        """Rename a registered model."""
        ...

    def delete_registered_model(self, name: str) -> None:
        """Delete a registered model and its versions."""
        ...

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        """Set a registered model tag."""
        ...

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        """Remove a registered model tag."""
        ...

    # registry: versions and aliases
    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        artifact_path: str | None = None,
        description: str = "",
        tags: dict[str, str] | None = None,
        flavor: str | None = None,
        signature: dict[str, Any] | None = None,
        size_bytes: int | None = None,
        model_id: str | None = None,
        create_model: bool = False,
    ) -> ModelVersion:
        """Register the next version of a model (numbers never collide)."""
        ...

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        """One version."""
        ...

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version an alias points at."""
        ...

    def get_latest_model_version(self, name: str) -> ModelVersion:
        """The highest unarchived version."""
        ...

    def search_model_versions(
        self,
        name: str | None = None,
        name_like: str | None = None,
        run_id: str | None = None,
        tags: dict[str, str] | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> Page[ModelVersion]:
        """Versions matching every given condition."""
        ...

    def update_model_version(
        self,
        name: str,
        version: int | str,
        description: str | None = None,
        stage: str | None = None,
    ) -> ModelVersion:
        """Change a version's description or stage (``Archived`` retires it)."""
        ...

    def delete_model_version(self, name: str, version: int | str) -> None:
        """Delete a version."""
        ...

    def set_model_version_tag(self, name: str, version: int | str, key: str, value: str) -> None:
        """Set a version tag."""
        ...

    def delete_model_version_tag(self, name: str, version: int | str, key: str) -> None:
        """Remove a version tag."""
        ...

    def set_model_alias(
        self, name: str, alias: str, version: int | str, reason: str = ""
    ) -> AliasEvent:
        """Point an alias at a version; the move is recorded."""
        ...

    def delete_model_alias(self, name: str, alias: str, reason: str = "") -> None:
        """Remove an alias; recorded."""
        ...

    def get_alias_history(self, name: str, alias: str | None = None) -> list[AliasEvent]:
        """Every recorded alias move, oldest first."""
        ...

    # registry: promotions, evaluations, evaluation datasets
    def record_promotion(
        self,
        name: str,
        version: int | str,
        alias: str,
        passed: bool,
        checks: list[dict[str, Any]],
        forced: bool = False,
        reason: str = "",
        policy: dict[str, Any] | None = None,
    ) -> PromotionRecord:
        """Store a gate verdict; move the alias when it passed or was forced."""
        ...

    def list_promotions(self, name: str, version: int | str | None = None) -> list[PromotionRecord]:
        """Promotion verdicts, oldest first."""
        ...

    def record_evaluation(
        self,
        name: str,
        version: int | str,
        result: dict[str, Any],
        run_id: str | None = None,
        dataset_name: str | None = None,
        dataset_digest: str | None = None,
    ) -> EvaluationRecord:
        """Link an evaluation to a version."""
        ...

    def list_evaluations(self, name: str, version: int | str) -> list[EvaluationRecord]:
        """A version's evaluations."""
        ...

    def register_dataset(
        self,
        name: str,
        stream: BinaryIO,
        digest: str,
        rows: int,
        columns: list[str],
        description: str = "",
    ) -> RegisteredDataset:
        """Store a named evaluation dataset (Parquet bytes)."""
        ...

    def get_dataset(self, name: str) -> RegisteredDataset:
        """A registered evaluation dataset's record."""
        ...

    def list_datasets(self) -> list[RegisteredDataset]:
        """Every registered evaluation dataset."""
        ...

    def open_dataset(self, name: str) -> BinaryIO:
        """A verified reader of a registered dataset's Parquet bytes."""
        ...

    # deployments
    def put_deployment(
        self, name: str, spec: dict[str, Any], reason: str = ""
    ) -> DeploymentRevision:
        """Store a new (live) revision of a deployment's spec."""
        ...

    def get_deployment(self, name: str, revision: int | None = None) -> DeploymentRevision:
        """A deployment's live revision, or a given one."""
        ...

    def list_deployments(self) -> list[DeploymentRevision]:
        """The live revision of every deployment."""
        ...

    def deployment_history(self, name: str) -> list[DeploymentRevision]:
        """Every revision of a deployment, oldest first."""
        ...

    def rollback_deployment(
        self, name: str, to_revision: int | None = None, reason: str = ""
    ) -> DeploymentRevision:
        """Make an earlier revision live again, as a new revision."""
        ...

    # monitoring
    def create_monitor(
        self,
        name: str,
        deployment: str,
        reference: str,
        config: dict[str, Any] | None = None,
        description: str = "",
    ) -> Monitor:
        """Create a monitor of a deployment's prediction logs against a registered dataset."""
        ...

    def get_monitor(self, name: str) -> Monitor:
        """One monitor."""
        ...

    def list_monitors(self, deployment: str | None = None) -> list[Monitor]:
        """Every monitor, or those of one deployment."""
        ...

    def update_monitor(
        self, name: str, config: dict[str, Any] | None = None, description: str | None = None
    ) -> Monitor:
        """Replace a monitor's config and/or description."""
        ...

    def delete_monitor(self, name: str) -> None:
        """Delete a monitor with its windows, metrics and alerts."""
        ...

    def record_monitor_window(
        self,
        name: str,
        window: WindowRecord,
        state: dict[str, Any],
        fired: Sequence[NewAlert] = (),
        updates: Sequence[AlertUpdate] = (),
        deliver: bool = False,
    ) -> list[AlertEvent]:
        """Store one scored window, the monitor's new state and its alert changes at once."""
        ...

    def record_monitor_metrics(
        self,
        name: str,
        seq: int,
        metrics: dict[str, float],
        state: dict[str, Any],
        fired: Sequence[NewAlert] = (),
        updates: Sequence[AlertUpdate] = (),
        deliver: bool = False,
    ) -> list[AlertEvent]:
        """Add metrics to a scored window with the state and alert changes they cause."""
        ...

    def list_monitor_windows(
        self, name: str, since_seq: int = 0, limit: int | None = None, details: bool = False
    ) -> list[MonitorWindow]:
        """Scored windows after ``since_seq``, oldest first."""
        ...

    def monitor_metric_history(
        self, name: str, metrics: Sequence[str] | None = None, since_seq: int = 0
    ) -> dict[str, list[tuple[int, int, float | None]]]:
        """``metric -> [(seq, window end time, value)]`` oldest first."""
        ...

    def list_alerts(
        self, monitor: str | None = None, state: str | None = None, limit: int = 1000
    ) -> list[Alert]:
        """Alerts, newest first."""
        ...

    def list_alert_events(
        self,
        monitor: str | None = None,
        alert_id: str | None = None,
        delivery: str | None = None,
        limit: int = 1000,
    ) -> list[AlertEvent]:
        """Alert events, oldest first."""
        ...

    def set_alert_delivery(
        self, event_id: int, delivery: str, attempts: int, last_error: str = ""
    ) -> AlertEvent:
        """Record a delivery attempt's outcome for an alert event."""
        ...

    # maintenance
    def gc(self, dry_run: bool = True, grace_seconds: int | None = None) -> GcReport:
        """Find (and unless ``dry_run`` remove) blobs no live record refers to."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
