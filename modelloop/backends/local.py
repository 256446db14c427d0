"""LocalBackend: the service code, over the metadata store and the blob store."""

from __future__ import annotations

import getpass
import uuid
from collections.abc import Sequence

from sqlalchemy import Connection

from modelloop import validation as v
from modelloop.backends.local_artifacts import LocalArtifacts
from modelloop.backends.local_deployments import LocalDeployments
from modelloop.backends.local_logged_models import LocalLoggedModels
from modelloop.backends.local_monitors import LocalMonitors
from modelloop.backends.local_registry import LocalRegistry
from modelloop.entities import (
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
from modelloop.store import experiments, run_data, runs
from modelloop.store._util import now_ms
from modelloop.store.search import search_run_ids

__all__ = ["LocalBackend"]


def _default_run_name() -> str:
    return f"run-{uuid.uuid4().hex[:8]}"


class LocalBackend(
    LocalArtifacts, LocalRegistry, LocalLoggedModels, LocalDeployments, LocalMonitors
):
    """Implements :class:`~modelloop.backends.Backend` in this process.

    Each method is one transaction: it validates its input, then writes and
    commits, or raises a typed error and leaves nothing behind. The artifact and
    maintenance operations live in :class:`~modelloop.backends.local_artifacts.LocalArtifacts`.
    """

    # experiments -------------------------------------------------------------

    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: dict[str, str] | None = None
    ) -> str:
        """Create an experiment and return its id."""
        v.check_name(name, "experiment name", v.MAX_EXPERIMENT_NAME_LENGTH)
        clean_tags = self._tags(tags)
        return self._write(
            lambda c: experiments.create(c, name, artifact_location or "", clean_tags),
            "experiment.create",
            "experiment",
            lambda eid: eid,
            {"name": name},
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
        self._write(
            lambda c: experiments.rename(c, experiment_id, new_name),
            "experiment.rename",
            "experiment",
            experiment_id,
            {"name": new_name},
        )

    def delete_experiment(self, experiment_id: str) -> None:
        """Soft-delete an experiment (its runs are hidden with it)."""
        if experiments.parse_id(experiment_id) == 0:
            raise InvalidArgument("the Default experiment (id 0) cannot be deleted")
        self._write(
            lambda c: experiments.set_stage(c, experiment_id, LifecycleStage.DELETED),
            "experiment.delete",
            "experiment",
            experiment_id,
        )

    def restore_experiment(self, experiment_id: str) -> None:
        """Undo a soft delete."""
        self._write(
            lambda c: experiments.set_stage(c, experiment_id, LifecycleStage.ACTIVE),
            "experiment.restore",
            "experiment",
            experiment_id,
        )

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        """Set an experiment tag."""
        tags = self._tags({key: value})
        self._write(
            lambda c: experiments.set_tags(c, experiment_id, tags),
            "experiment.set_tag",
            "experiment",
            experiment_id,
            {"key": key},
        )

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
        owner = v.check_name(user, "user", v.MAX_USER_LENGTH) if user else current_user()

        def create(conn: Connection) -> Run:
            exp_name, stage = experiments.name_and_stage(conn, eid)
            if stage is not LifecycleStage.ACTIVE:
                raise InvalidArgument(f"experiment {exp_name!r} is deleted; restore it first")
            if parent_run_id is not None:
                parent = runs.get_row(conn, parent_run_id)
                if parent["experiment_id"] != eid:
                    raise InvalidArgument("a nested run must be in its parent's experiment")
            run_name_stored = run_name or _default_run_name()
            runs.insert(
                conn,
                run_id=run_id,
                experiment_id=eid,
                name=run_name_stored,
                user=owner,
                start_time=start,
                parent_run_id=parent_run_id,
            )
            run_data.set_tags(conn, run_id, clean_tags)
            # Built from what was inserted (as get_run would read it back, tags in key
            # order) rather than re-read: a new run has no params, metrics or inputs.
            return Run(
                run_id=run_id,
                experiment_id=str(eid),
                name=run_name_stored,
                status=RunStatus.RUNNING,
                start_time=start,
                end_time=None,
                lifecycle_stage=LifecycleStage.ACTIVE,
                user=owner,
                parent_run_id=parent_run_id,
                tags=dict(sorted(clean_tags.items())),
            )

        return self._write(create, "run.create", "run", run_id, {"experiment_id": str(eid)})

    def get_run(self, run_id: str) -> Run:
        """A run with its params, latest metrics, tags and inputs."""
        return self._read(lambda c: runs.get(c, run_id))

    def get_run_with_latest(self, run_id: str) -> tuple[Run, list[Metric]]:
        """:meth:`get_run` and the run's :meth:`latest_metrics`, from one read."""

        def read(conn: Connection) -> tuple[Run, list[Metric]]:
            runs.check_run_id(run_id)
            found, latest = runs.load_with_latest(conn, [run_id])
            if not found:
                raise NotFound(f"run {run_id!r} does not exist", run_id=run_id)
            return found[0], latest[run_id]

        return self._read(read)

    def update_run(
        self,
        run_id: str,
        status: RunStatus | None = None,
        end_time: int | None = None,
        name: str | None = None,
        status_message: str | None = None,
    ) -> None:
        """Change a run's status, end time or name."""
        self.update_run_info(run_id, status, end_time, name, status_message)

    def update_run_info(
        self,
        run_id: str,
        status: RunStatus | None = None,
        end_time: int | None = None,
        name: str | None = None,
        status_message: str | None = None,
    ) -> Run:
        """:meth:`update_run`, returning the run's fields as committed (read in the same
        transaction; its params, metrics, tags and inputs are not loaded)."""
        new_status = None if status is None else _status(status)
        end = None if end_time is None else v.check_int("end_time", end_time)
        new_name = None if name is None else v.check_name(name, "run name", v.MAX_RUN_NAME_LENGTH)
        message = None if status_message is None else str(status_message)[:8000]

        def write(conn: Connection) -> Run:
            runs.set_status(
                conn, run_id, status=new_status, end_time=end, name=new_name, status_message=message
            )
            return runs.info(conn, run_id)

        return self._write(
            write,
            "run.update",
            "run",
            run_id,
            {"status": None if new_status is None else new_status.value, "name": new_name},
        )

    def delete_run(self, run_id: str) -> None:
        """Soft-delete a run."""
        self._write(
            lambda c: runs.set_stage(c, run_id, LifecycleStage.DELETED), "run.delete", "run", run_id
        )

    def restore_run(self, run_id: str) -> None:
        """Undo a soft delete."""
        self._write(
            lambda c: runs.set_stage(c, run_id, LifecycleStage.ACTIVE), "run.restore", "run", run_id
        )

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: dict[str, str] | None = None,
        *,
        allow_ended: bool = False,
    ) -> None:
        """Record metrics, params and tags atomically. Params and metrics need a run
        that has not ended unless ``allow_ended`` (MLflow's semantics: only a deleted
        run refuses data); tags may always be set on an ended run."""
        runs.check_run_id(run_id)
        points = [v.check_metric(m) for m in metrics]
        param_values: dict[str, str] = {}
        for p in params:
            value = v.param_value(v.check_key(p.key, "param"), p.value)
            if param_values.setdefault(p.key, value) != value:
                raise Conflict(f"param {p.key!r} given twice with different values in one batch")
        clean_tags = self._tags(tags)

        def write(conn: Connection) -> None:
            ended_ok = allow_ended or (not points and not param_values)
            runs.require_writable(conn, run_id, allow_ended=ended_ok)
            run_data.log_params(conn, run_id, param_values)
            run_data.set_tags(conn, run_id, clean_tags)
            run_data.log_metrics(conn, run_id, points)

        # One audit row per batch, with counts: metric points never flood the log.
        counts = {"metrics": len(points), "params": len(param_values), "tags": len(clean_tags)}
        self._write(write, "run.log_batch", "run", run_id, counts)

    def delete_tag(self, run_id: str, key: str) -> None:
        """Remove a run tag."""
        v.check_key(key, "tag")

        def write(conn: Connection) -> None:
            runs.require_writable(conn, run_id, allow_ended=True)
            run_data.delete_tag(conn, run_id, key)

        self._write(write, "tag.delete", "run", run_id, {"key": key})

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every point of one metric, by step."""
        v.check_key(key, "metric")

        def read(conn: Connection) -> list[Metric]:
            runs.get_row(conn, run_id)
            return run_data.metric_history(conn, run_id, key)

        return self._read(read)

    def latest_metrics(self, run_ids: Sequence[str]) -> dict[str, list[Metric]]:
        """The latest point (highest step, then timestamp) of each metric of each run,
        with its step and timestamp (``Run.metrics`` holds only the values)."""
        ids = [runs.check_run_id(r) for r in run_ids]
        return self._read(lambda c: run_data.latest_points(c, ids))

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
        return self.search_runs_with_latest(
            experiment_ids, filter_string, view_type, max_results, order_by, page_token
        )[0]

    def search_runs_with_latest(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> tuple[Page[Run], dict[str, list[Metric]]]:
        """:meth:`search_runs` and the :meth:`latest_metrics` of the runs found, from
        one read."""

        def read(conn: Connection) -> tuple[Page[Run], dict[str, list[Metric]]]:
            ids, token = search_run_ids(
                conn,
                list(experiment_ids),
                filter_string,
                ViewType(view_type),
                max_results,
                order_by,
                page_token,
            )
            found, latest = runs.load_with_latest(conn, ids)
            return Page(found, token), latest

        return self._read(read)

    def log_inputs(
        self, run_id: str, inputs: Sequence[DatasetInput], *, allow_ended: bool = False
    ) -> None:
        """Record datasets a run used (each dataset stored once per digest); an ended run
        refuses them unless ``allow_ended``."""
        runs.check_run_id(run_id)
        for item in inputs:
            v.check_name(item.context, "dataset context", v.MAX_CONTEXT_LENGTH)
            v.check_name(item.dataset.name, "dataset name", 500)
            v.check_name(item.dataset.digest, "dataset digest", 64)
            if len(item.dataset.source_type) > 32:
                raise InvalidArgument("dataset source type exceeds the maximum length of 32")
            # Stored as 64-bit integers: refused here, not as a database overflow.
            if item.dataset.num_rows is not None:
                v.check_int("dataset num_rows", item.dataset.num_rows)
            v.check_int("dataset created_time", item.dataset.created_time)

        def write(conn: Connection) -> None:
            runs.require_writable(conn, run_id, allow_ended=allow_ended)
            for item in inputs:
                run_data.log_input(conn, run_id, item.dataset, item.context)

        digests = sorted({item.dataset.digest for item in inputs})
        self._write(write, "run.log_inputs", "run", run_id, {"datasets": digests})

    # helpers -----------------------------------------------------------------

    @staticmethod
    def _tags(tags: dict[str, str] | None) -> dict[str, str]:
        return v.check_tags(tags)


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
