"""The tracking client: explicit run ids, no global state."""

from __future__ import annotations

import atexit
import io
import json
import os
import tempfile
import weakref
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, overload

from modelloop import validation as v
from modelloop.backends import Backend, GcReport, open_backend
from modelloop.entities import (
    ArtifactInfo,
    Dataset,
    DatasetInput,
    Experiment,
    Metric,
    Page,
    Param,
    Run,
    RunStatus,
    ViewType,
)
from modelloop.errors import InvalidArgument, NotFound
from modelloop.monitoring.client import MonitorMixin
from modelloop.registry.lineage import LineageMixin
from modelloop.serving.deploy_client import DeploymentMixin
from modelloop.settings import Settings, load_settings
from modelloop.store._util import now_ms
from modelloop.tracking import capture
from modelloop.tracking.buffer import MetricBuffer
from modelloop.tracking.datasets import fingerprint

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Client"]

SYSTEM_ARTIFACT_DIR = "_modelloop"


class Client(LineageMixin, DeploymentMixin, MonitorMixin):
    """Talks to one tracking backend. Every method names its run explicitly.

    ``Client()`` resolves settings from the environment and config file;
    ``Client("path/or/url")`` overrides the tracking URI. Metric points are
    buffered and written in bulk; :meth:`flush` returns once they are committed.
    """

    def __init__(
        self,
        tracking_uri: str | None = None,
        *,
        settings: Settings | None = None,
        backend: Backend | None = None,
    ) -> None:
        base = settings or load_settings()
        self.settings = base.replace(tracking_uri=tracking_uri) if tracking_uri else base
        self._backend = backend or open_backend(self.settings)
        self._buffer = MetricBuffer(
            self._write_metrics,
            max_points=self.settings.metric_buffer_size,
            max_age=self.settings.metric_flush_interval,
        )
        self._writable: set[str] = set()
        # Flush at interpreter exit without keeping the client alive.
        atexit.register(_flush_at_exit, weakref.ref(self))

    def __repr__(self) -> str:
        return f"Client({self.settings.tracking_uri!r})"

    @property
    def backend(self) -> Backend:
        """The backend this client talks to."""
        return self._backend

    @property
    def tracking_uri(self) -> str:
        """Where this client stores runs."""
        return self.settings.tracking_uri

    def close(self) -> None:
        """Flush buffered metrics and release connections."""
        try:
            self.flush()
        finally:
            self._backend.close()

    # experiments -------------------------------------------------------------

    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: dict[str, str] | None = None
    ) -> str:
        """Create an experiment; returns its id."""
        return self._backend.create_experiment(name, artifact_location, tags)

    def get_experiment(self, experiment_id: str) -> Experiment:
        """An experiment by id."""
        return self._backend.get_experiment(str(experiment_id))

    def get_experiment_by_name(self, name: str) -> Experiment:
        """An experiment by name."""
        return self._backend.get_experiment_by_name(name)

    def list_experiments(self, view_type: ViewType = ViewType.ACTIVE_ONLY) -> list[Experiment]:
        """All experiments in a view."""
        return self._backend.list_experiments(view_type)

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        """Rename an experiment."""
        self._backend.rename_experiment(str(experiment_id), new_name)

    def delete_experiment(self, experiment_id: str) -> None:
        """Soft-delete an experiment; :meth:`restore_experiment` undoes it."""
        self._backend.delete_experiment(str(experiment_id))

    def restore_experiment(self, experiment_id: str) -> None:
        """Restore a deleted experiment."""
        self._backend.restore_experiment(str(experiment_id))

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        """Set an experiment tag."""
        self._backend.set_experiment_tag(str(experiment_id), key, str(value))

    # runs --------------------------------------------------------------------

    def create_run(
        self,
        experiment_id: str = "0",
        name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        parent_run_id: str | None = None,
        *,
        capture_context: bool = True,
    ) -> Run:
        """Start a RUNNING run, recording git and environment facts unless disabled."""
        all_tags = {k: str(val) for k, val in (tags or {}).items()}
        git = env = None
        if capture_context:
            git = capture.git_info() if self.settings.capture_git else None
            env = capture.environment_info() if self.settings.capture_environment else None
            all_tags = {**_context_tags(git, env), **all_tags}
        run = self._backend.create_run(
            str(experiment_id), name=name, tags=all_tags, parent_run_id=parent_run_id
        )
        self._writable.add(run.run_id)
        if env is not None:
            self.log_text(run.run_id, capture.requirements_text(env), _system("requirements.txt"))
        if git is not None and git.dirty and git.diff:
            self.log_text(run.run_id, git.diff, _system("git.diff"))
        return run

    def get_run(self, run_id: str) -> Run:
        """A run with its params, latest metrics, tags and inputs (buffered points included)."""
        self._buffer.flush(run_id)
        return self._backend.get_run(run_id)

    def end_run(
        self,
        run_id: str,
        status: RunStatus | str = RunStatus.FINISHED,
        status_message: str | None = None,
    ) -> None:
        """Flush the run's metrics, then mark it ended (FINISHED, FAILED or KILLED)."""
        final = RunStatus(status)
        if not final.is_terminal:
            raise InvalidArgument(f"end_run needs FINISHED, FAILED or KILLED, not {final}")
        try:
            self._buffer.flush(run_id)
        finally:
            self._backend.update_run(run_id, status=final, status_message=status_message)
            self._writable.discard(run_id)

    def set_run_name(self, run_id: str, name: str) -> None:
        """Rename a run."""
        self._backend.update_run(run_id, name=name)

    def delete_run(self, run_id: str) -> None:
        """Soft-delete a run; :meth:`restore_run` undoes it."""
        self._buffer.discard(run_id)
        self._backend.delete_run(run_id)
        self._writable.discard(run_id)

    def restore_run(self, run_id: str) -> None:
        """Restore a deleted run."""
        self._backend.restore_run(run_id)

    # params, tags, metrics ---------------------------------------------------

    def log_param(self, run_id: str, key: str, value: Any) -> None:
        """Log one immutable param (the same value again is fine; another is Conflict)."""
        self.log_params(run_id, {key: value})

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        """Log several params in one transaction."""
        self._backend.log_batch(
            run_id, params=[Param(k, _to_str(val)) for k, val in params.items()]
        )

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        """Set (overwrite) a run tag. Tags may be set on an ended run."""
        self._backend.log_batch(run_id, tags={key: _to_str(value)})

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        """Set several tags in one transaction."""
        self._backend.log_batch(run_id, tags={k: _to_str(val) for k, val in tags.items()})

    def delete_tag(self, run_id: str, key: str) -> None:
        """Remove a run tag."""
        self._backend.delete_tag(run_id, key)

    def log_metric(
        self,
        run_id: str,
        key: str,
        value: float,
        step: int | None = None,
        timestamp: int | None = None,
    ) -> None:
        """Buffer one metric point (validated now, written in bulk)."""
        ts = now_ms() if timestamp is None else timestamp
        point = v.check_metric(Metric(key, value, ts, 0 if step is None else step))
        self._check_writable(run_id)
        self._buffer.add(run_id, (point,))

    def log_metrics(
        self,
        run_id: str,
        metrics: Mapping[str, float],
        step: int | None = None,
        timestamp: int | None = None,
    ) -> None:
        """Buffer metric points sharing a step and timestamp."""
        ts = now_ms() if timestamp is None else timestamp
        st = 0 if step is None else step
        points = [v.check_metric(Metric(k, val, ts, st)) for k, val in metrics.items()]
        self._check_writable(run_id)
        self._buffer.add(run_id, points)

    def log_metric_points(self, run_id: str, points: Iterable[Metric]) -> None:
        """Buffer prepared points (each with its own step and timestamp)."""
        checked = [v.check_metric(p) for p in points]
        self._check_writable(run_id)
        self._buffer.add(run_id, checked)

    def flush(self, run_id: str | None = None) -> int:
        """Write buffered metric points; when this returns they are committed.
        Returns the number of points written."""
        return self._buffer.flush(run_id)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every point of a metric, by step (buffered points included)."""
        self._buffer.flush(run_id)
        return self._backend.get_metric_history(run_id, key)

    def _check_writable(self, run_id: str) -> None:
        if run_id in self._writable:
            return
        run = self._backend.get_run(run_id)
        v.check_writable(run_id, run.lifecycle_stage, run.status)
        self._writable.add(run_id)

    def _write_metrics(self, run_id: str, points: Sequence[Metric]) -> None:
        self._backend.log_batch(run_id, metrics=points)

    # artifacts ---------------------------------------------------------------

    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> ArtifactInfo:
        """Store a local file under ``artifact_path/<file name>`` (streamed)."""
        src = Path(local_path)
        if not src.is_file():
            raise InvalidArgument(f"{str(src)!r} is not a file")
        dest = f"{artifact_path.strip('/')}/{src.name}" if artifact_path else src.name
        with open(src, "rb") as fh:
            return self._backend.upload_artifact(run_id, dest, fh)

    def log_artifacts(
        self, run_id: str, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> list[ArtifactInfo]:
        """Store every file below a local folder, keeping relative paths."""
        root = Path(local_dir)
        if not root.is_dir():
            raise InvalidArgument(f"{str(root)!r} is not a folder")
        out = []
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            rel = path.relative_to(root).as_posix()
            dest = f"{artifact_path.strip('/')}/{rel}" if artifact_path else rel
            with open(path, "rb") as fh:
                out.append(self._backend.upload_artifact(run_id, dest, fh))
        return out

    def log_bytes(self, run_id: str, data: bytes, artifact_file: str) -> ArtifactInfo:
        """Store bytes as one artifact file."""
        return self._backend.upload_artifact(run_id, artifact_file, io.BytesIO(data))

    def log_text(self, run_id: str, text: str, artifact_file: str) -> ArtifactInfo:
        """Store a string (UTF-8) as an artifact file."""
        return self.log_bytes(run_id, text.encode("utf-8"), artifact_file)

    def log_dict(self, run_id: str, data: Mapping[str, Any], artifact_file: str) -> ArtifactInfo:
        """Store a JSON-able dict as JSON (or YAML for ``.yaml``/``.yml`` names)."""
        try:
            if artifact_file.endswith((".yaml", ".yml")):
                import yaml

                text = yaml.safe_dump(dict(data), sort_keys=False)
            else:
                text = json.dumps(data, indent=2, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidArgument(f"log_dict: the data is not serialisable: {exc}") from None
        return self.log_text(run_id, text, artifact_file)

    def log_figure(self, run_id: str, figure: Any, artifact_file: str) -> ArtifactInfo:
        """Store a matplotlib figure; the format follows the file extension (png, svg, pdf)."""
        if not hasattr(figure, "savefig"):
            raise InvalidArgument("log_figure needs a matplotlib Figure (an object with savefig)")
        buf = io.BytesIO()
        fmt = Path(artifact_file).suffix.lstrip(".") or "png"
        try:
            figure.savefig(buf, format=fmt)
        except ValueError as exc:
            raise InvalidArgument(f"log_figure: cannot save as {fmt!r}: {exc}") from None
        return self.log_bytes(run_id, buf.getvalue(), artifact_file)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[ArtifactInfo]:
        """Direct children of a folder in the run's artifacts."""
        return self._backend.list_artifacts(run_id, path)

    def open_artifact(self, run_id: str, path: str) -> BinaryIO:
        """A verified reader of one artifact file."""
        return self._backend.open_artifact(run_id, path)

    def download_artifacts(
        self, run_id: str, path: str | None = None, dst_path: str | os.PathLike[str] | None = None
    ) -> Path:
        """Copy a file or folder of artifacts locally (a new temp folder by default)."""
        dest = Path(dst_path) if dst_path else Path(tempfile.mkdtemp(prefix="modelloop-"))
        return self._backend.download_artifacts(run_id, path, dest)

    # datasets ----------------------------------------------------------------

    def log_input(
        self,
        run_id: str,
        data: Any,
        name: str | None = None,
        context: str = "train",
    ) -> Dataset:
        """Record a dataset (DataFrame, array or file path) the run used: its digest,
        schema, row count and per-column profile. The same data is one dataset."""
        dataset = fingerprint(data, name=name)
        self._backend.log_inputs(run_id, [DatasetInput(dataset, context)])
        return dataset

    # search ------------------------------------------------------------------

    @overload
    def search_runs(
        self,
        experiments: Sequence[str] | str | None = ...,
        filter_string: str | None = ...,
        order_by: Sequence[str] | None = ...,
        max_results: int = ...,
        page_token: str | None = ...,
        view_type: ViewType = ...,
        output_format: Literal["list"] = ...,
    ) -> Page[Run]: ...

    @overload
    def search_runs(
        self,
        experiments: Sequence[str] | str | None = ...,
        filter_string: str | None = ...,
        order_by: Sequence[str] | None = ...,
        max_results: int = ...,
        page_token: str | None = ...,
        view_type: ViewType = ...,
        *,
        output_format: Literal["pandas"],
    ) -> pd.DataFrame: ...

    def search_runs(
        self,
        experiments: Sequence[str] | str | None = None,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
        view_type: ViewType = ViewType.ACTIVE_ONLY,
        output_format: Literal["list", "pandas"] = "list",
    ) -> Page[Run] | pd.DataFrame:
        """Runs matching an MLflow-syntax filter, e.g.
        ``"metrics.acc > 0.9 AND params.model = 'rf'"``, one page at a time.

        ``experiments`` are ids or names (all active experiments when None). With
        ``output_format="pandas"`` the page is a DataFrame whose
        ``attrs["next_page_token"]`` continues it.
        """
        self._buffer.flush()
        ids = self._experiment_ids(experiments)
        page = self._backend.search_runs(
            ids, filter_string, view_type, max_results, order_by, page_token
        )
        if output_format == "pandas":
            from modelloop.tracking.frames import runs_to_frame

            frame = runs_to_frame(page.items)
            frame.attrs["next_page_token"] = page.next_page_token
            return frame
        if output_format != "list":
            raise InvalidArgument(
                f"output_format must be 'list' or 'pandas', not {output_format!r}"
            )
        return page

    def _experiment_ids(self, experiments: Sequence[str] | str | None) -> list[str]:
        if experiments is None:
            return [e.experiment_id for e in self._backend.list_experiments()]
        items = [experiments] if isinstance(experiments, str | int) else list(experiments)
        ids = []
        for item in items:
            text = str(item)
            if text.isdigit():
                ids.append(text)
            else:
                try:
                    ids.append(self._backend.get_experiment_by_name(text).experiment_id)
                except NotFound:
                    raise NotFound(f"experiment {text!r} does not exist", name=text) from None
        return ids

    # maintenance -------------------------------------------------------------

    def gc(self, dry_run: bool = True, grace_seconds: int | None = None) -> GcReport:
        """Find (and unless ``dry_run`` remove) blobs that no record refers to."""
        grace = self.settings.gc_grace_seconds if grace_seconds is None else grace_seconds
        return self._backend.gc(dry_run=dry_run, grace_seconds=grace)


def _system(name: str) -> str:
    return f"{SYSTEM_ARTIFACT_DIR}/{name}"


def _to_str(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _context_tags(
    git: capture.GitInfo | None, env: capture.EnvironmentInfo | None
) -> dict[str, str]:
    tags: dict[str, str] = {}
    if git is not None:
        tags["modelloop.git.commit"] = git.commit
        if git.branch:
            tags["modelloop.git.branch"] = git.branch
        tags["modelloop.git.dirty"] = str(git.dirty).lower()
    if env is not None:
        tags["modelloop.python"] = f"{env.python_implementation} {env.python_version}"
        tags["modelloop.platform"] = env.platform
        tags["modelloop.host"] = env.host
        tags["modelloop.user"] = env.user
        tags["modelloop.command"] = env.command_line
    return tags


def _flush_at_exit(ref: weakref.ReferenceType[Client]) -> None:
    client = ref()
    if client is not None:
        try:
            client.flush()
        except Exception as exc:
            import sys

            print(f"modelloop: could not flush metrics at exit: {exc}", file=sys.stderr)
