"""LocalBackend: the service code, over the metadata store and the blob store."""

from __future__ import annotations

import getpass
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO, TypeVar

from sqlalchemy import Connection

from modelloop import validation as v
from modelloop.artifacts import BlobStore
from modelloop.backends.base import GcReport
from modelloop.entities import (
    ArtifactInfo,
    DatasetInput,
    Experiment,
    LifecycleStage,
    Metric,
    Page,
    Param,
    Run,
    RunStatus,
    ViewType,
)
from modelloop.errors import Conflict, InvalidArgument, NotFound
from modelloop.store import Database, artifact_index, experiments, run_data, runs
from modelloop.store._util import now_ms
from modelloop.store.search import search_run_ids

T = TypeVar("T")

__all__ = ["LocalBackend"]


def _default_run_name() -> str:
    return f"run-{uuid.uuid4().hex[:8]}"


class LocalBackend:
    """Implements :class:`~modelloop.backends.Backend` in this process.

    Each method is one transaction: it validates its input, then writes and
    commits, or raises a typed error and leaves nothing behind.
    """

    def __init__(self, db: Database, blobs: BlobStore) -> None:
        self.db = db
        self.blobs = blobs

    def __repr__(self) -> str:
        return f"LocalBackend(db={self.db.url!r}, artifacts={self.blobs.uri!r})"

    def _write(self, fn: Callable[[Connection], T]) -> T:
        def run() -> T:
            with self.db.write() as conn:
                return fn(conn)

        return self.db.retrying(run)

    def _read(self, fn: Callable[[Connection], T]) -> T:
        def run() -> T:
            with self.db.read() as conn:
                return fn(conn)

        return self.db.retrying(run)

    # experiments -------------------------------------------------------------

    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: dict[str, str] | None = None
    ) -> str:
        """Create an experiment and return its id."""
        v.check_name(name, "experiment name", v.MAX_EXPERIMENT_NAME_LENGTH)
        clean_tags = self._tags(tags)
        return self._write(
            lambda c: experiments.create(c, name, artifact_location or "", clean_tags)
        )

    def get_experiment(self, experiment_id: str) -> Experiment:
        """An experiment by id."""
        return self._read(lambda c: experiments.get(c, experiment_id))

    def get_experiment_by_name(self, name: str) -> Experiment:
        """An experiment by name."""
        return self._read(lambda c: experiments.get_by_name(c, name))

    def list_experiments(self, view_type: ViewType = ViewType.ACTIVE_ONLY) -> list[Experiment]:
        """All experiments in a view, newest first."""
        return self._read(lambda c: experiments.list_all(c, ViewType(view_type)))

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        """Rename an experiment."""
        v.check_name(new_name, "experiment name", v.MAX_EXPERIMENT_NAME_LENGTH)
        self._write(lambda c: experiments.rename(c, experiment_id, new_name))

    def delete_experiment(self, experiment_id: str) -> None:
        """Soft-delete an experiment (its runs are hidden with it)."""
        if experiments.parse_id(experiment_id) == 0:
            raise InvalidArgument("the Default experiment (id 0) cannot be deleted")
        self._write(lambda c: experiments.set_stage(c, experiment_id, LifecycleStage.DELETED))

    def restore_experiment(self, experiment_id: str) -> None:
        """Undo a soft delete."""
        self._write(lambda c: experiments.set_stage(c, experiment_id, LifecycleStage.ACTIVE))

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        """Set an experiment tag."""
        tags = self._tags({key: value})
        self._write(lambda c: experiments.set_tags(c, experiment_id, tags))

    # runs --------------------------------------------------------------------

    def create_run(
        self,
        experiment_id: str,
        name: str | None = None,
        start_time: int | None = None,
        tags: dict[str, str] | None = None,
        parent_run_id: str | None = None,
        user: str | None = None,
    ) -> Run:
        """Start a RUNNING run in an active experiment."""
        eid = experiments.parse_id(experiment_id)
        run_name = v.check_name(name, "run name", v.MAX_RUN_NAME_LENGTH) if name else None
        start = v.check_int("start_time", start_time) if start_time is not None else now_ms()
        clean_tags = self._tags(tags)
        if parent_run_id is not None:
            runs.check_run_id(parent_run_id)
        run_id = uuid.uuid4().hex
        owner = user or current_user()

        def create(conn: Connection) -> Run:
            exp = experiments.get(conn, eid)
            if exp.lifecycle_stage is not LifecycleStage.ACTIVE:
                raise InvalidArgument(f"experiment {exp.name!r} is deleted; restore it first")
            if parent_run_id is not None:
                parent = runs.get_row(conn, parent_run_id)
                if parent["experiment_id"] != eid:
                    raise InvalidArgument("a nested run must be in its parent's experiment")
            runs.insert(
                conn,
                run_id=run_id,
                experiment_id=eid,
                name=run_name or _default_run_name(),
                user=owner,
                start_time=start,
                parent_run_id=parent_run_id,
            )
            run_data.set_tags(conn, run_id, clean_tags)
            return runs.get(conn, run_id)

        return self._write(create)

    def get_run(self, run_id: str) -> Run:
        """A run with its params, latest metrics, tags and inputs."""
        return self._read(lambda c: runs.get(c, run_id))

    def update_run(
        self,
        run_id: str,
        status: RunStatus | None = None,
        end_time: int | None = None,
        name: str | None = None,
        status_message: str | None = None,
    ) -> None:
        """Change a run's status, end time or name."""
        new_status = None if status is None else _status(status)
        end = None if end_time is None else v.check_int("end_time", end_time)
        new_name = None if name is None else v.check_name(name, "run name", v.MAX_RUN_NAME_LENGTH)
        message = None if status_message is None else str(status_message)[:8000]
        self._write(
            lambda c: runs.set_status(
                c, run_id, status=new_status, end_time=end, name=new_name, status_message=message
            )
        )

    def delete_run(self, run_id: str) -> None:
        """Soft-delete a run."""
        self._write(lambda c: runs.set_stage(c, run_id, LifecycleStage.DELETED))

    def restore_run(self, run_id: str) -> None:
        """Undo a soft delete."""
        self._write(lambda c: runs.set_stage(c, run_id, LifecycleStage.ACTIVE))

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: dict[str, str] | None = None,
    ) -> None:
        """Record metrics, params and tags atomically. Params and metrics need a run
        that has not ended; tags may be set on an ended run."""
        runs.check_run_id(run_id)
        points = [_check_metric(m) for m in metrics]
        param_values: dict[str, str] = {}
        for p in params:
            value = v.param_value(v.check_key(p.key, "param"), p.value)
            if param_values.setdefault(p.key, value) != value:
                raise Conflict(f"param {p.key!r} given twice with different values in one batch")
        clean_tags = self._tags(tags)

        def write(conn: Connection) -> None:
            runs.require_writable(conn, run_id, allow_ended=not points and not param_values)
            run_data.log_params(conn, run_id, param_values)
            run_data.set_tags(conn, run_id, clean_tags)
            run_data.log_metrics(conn, run_id, points)

        self._write(write)

    def delete_tag(self, run_id: str, key: str) -> None:
        """Remove a run tag."""
        v.check_key(key, "tag")

        def write(conn: Connection) -> None:
            runs.require_writable(conn, run_id, allow_ended=True)
            run_data.delete_tag(conn, run_id, key)

        self._write(write)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every point of one metric, by step."""
        v.check_key(key, "metric")

        def read(conn: Connection) -> list[Metric]:
            runs.get_row(conn, run_id)
            return run_data.metric_history(conn, run_id, key)

        return self._read(read)

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> Page[Run]:
        """One page of runs matching an MLflow-syntax filter."""

        def read(conn: Connection) -> Page[Run]:
            ids, token = search_run_ids(
                conn,
                list(experiment_ids),
                filter_string,
                ViewType(view_type),
                max_results,
                order_by,
                page_token,
            )
            return Page(runs.load(conn, ids), token)

        return self._read(read)

    def log_inputs(self, run_id: str, inputs: Sequence[DatasetInput]) -> None:
        """Record datasets a run used (each dataset stored once per digest)."""
        runs.check_run_id(run_id)
        for item in inputs:
            v.check_name(item.context, "dataset context", v.MAX_CONTEXT_LENGTH)
            v.check_name(item.dataset.name, "dataset name", 500)

        def write(conn: Connection) -> None:
            runs.require_writable(conn, run_id)
            for item in inputs:
                run_data.log_input(conn, run_id, item.dataset, item.context)

        self._write(write)

    # artifacts ---------------------------------------------------------------

    def upload_artifact(self, run_id: str, path: str, stream: BinaryIO) -> ArtifactInfo:
        """Store one artifact file: the blob first, then its record (so a recorded
        artifact always has its content)."""
        clean = v.check_artifact_path(path)
        self._read(lambda c: runs.require_writable(c, run_id))
        ref = self.blobs.put_stream(stream)

        def write(conn: Connection) -> None:
            runs.require_writable(conn, run_id)
            artifact_index.put(conn, run_id, clean, ref.digest, ref.size)

        self._write(write)
        return ArtifactInfo(path=clean, is_dir=False, size=ref.size, digest=ref.digest)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[ArtifactInfo]:
        """Direct children of a folder in a run's artifact tree."""
        prefix = None if path in (None, "", "/") else v.check_artifact_path(path)

        def read(conn: Connection) -> list[ArtifactInfo]:
            runs.get_row(conn, run_id)
            return artifact_index.list_dir(conn, run_id, prefix)

        return self._read(read)

    def open_artifact(self, run_id: str, path: str) -> BinaryIO:
        """A reader that verifies the content against its digest."""
        clean = v.check_artifact_path(path)

        def read(conn: Connection) -> ArtifactInfo:
            runs.get_row(conn, run_id)
            return artifact_index.get(conn, run_id, clean)

        info = self._read(read)
        assert info.digest is not None
        return self.blobs.open(info.digest)

    def download_artifacts(self, run_id: str, path: str | None, dest: Path) -> Path:
        """Copy a file or a folder of artifacts under ``dest`` (verified, atomic per file)."""
        prefix = None if path in (None, "", "/") else v.check_artifact_path(path)

        def read(conn: Connection) -> list[ArtifactInfo]:
            runs.get_row(conn, run_id)
            return artifact_index.files_under(conn, run_id, prefix)

        files = self._read(read)
        if not files:
            raise NotFound(f"run {run_id} has no artifact {prefix or '(root)'!r}")
        dest = Path(dest)
        for f in files:
            assert f.digest is not None
            self.blobs.copy_to(f.digest, dest / f.path)
        return dest / prefix if prefix else dest

    # maintenance -------------------------------------------------------------

    def gc(self, dry_run: bool = True, grace_seconds: int | None = None) -> GcReport:
        """Blobs that no record refers to; removed unless ``dry_run``. Blobs younger
        than ``grace_seconds`` are kept: their record may not be committed yet."""
        grace = 3600 if grace_seconds is None else grace_seconds
        live = self._read(artifact_index.referenced_digests)
        cutoff = time.time() - grace
        dead: list[str] = []
        size = 0
        young = 0
        for blob in self.blobs.iter_blobs():
            if blob.digest in live:
                continue
            if blob.mtime > cutoff:
                young += 1
                continue
            dead.append(blob.digest)
            size += blob.size
        if not dry_run:
            # Re-check against records committed since the first look.
            live = self._read(artifact_index.referenced_digests)
            dead = [d for d in dead if d not in live]
            for digest in dead:
                self.blobs.delete(digest)
        return GcReport(tuple(sorted(dead)), size, not dry_run, young)

    def close(self) -> None:
        """Release pooled database connections."""
        self.db.dispose()

    # helpers -----------------------------------------------------------------

    @staticmethod
    def _tags(tags: dict[str, str] | None) -> dict[str, str]:
        if not tags:
            return {}
        return {v.check_key(k, "tag"): v.tag_value(k, val) for k, val in tags.items()}


def _check_metric(m: Metric) -> Metric:
    key = v.check_key(m.key, "metric")
    value = v.check_metric_value(key, m.value)
    return Metric(key, value, v.check_int("timestamp", m.timestamp), v.check_int("step", m.step))


def _status(status: RunStatus | str) -> RunStatus:
    try:
        return RunStatus(status)
    except ValueError:
        allowed = ", ".join(s.value for s in RunStatus)
        raise InvalidArgument(f"invalid run status {status!r}; one of {allowed}") from None


def current_user() -> str:
    """The OS user running this process (``"unknown"`` if there is none), the default
    owner of a new run."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
