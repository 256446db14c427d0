"""The fluent API: ``with modelloop.start_run(): modelloop.log_metric(...)``.

It is a thin convenience over :class:`~modelloop.tracking.client.Client`. Its
state (the tracking URI, the lazily opened client, each thread's stack of active
runs, the current experiment) lives in one ``_FluentState`` object, reset by
:func:`set_tracking_uri`; code that wants no implicit state uses ``Client``.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import types
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from modelloop.entities import (
    ArtifactInfo,
    Dataset,
    Experiment,
    Page,
    Run,
    RunStatus,
    ViewType,
)
from modelloop.errors import InvalidArgument, NotFound
from modelloop.settings import load_settings
from modelloop.tracking import seed as _seed
from modelloop.tracking.client import Client

if TYPE_CHECKING:
    import pandas as pd

MAX_STATUS_MESSAGE = 2000


class ActiveRun:
    """A started run; use it as a context manager to end it.

    Leaving the block normally ends the run FINISHED; an exception ends it FAILED
    with the exception summary as its status message (KILLED on Ctrl-C).
    """

    def __init__(self, client: Client, run: Run) -> None:
        self.client = client
        self.run_id = run.run_id
        self.info = run

    def __repr__(self) -> str:
        return f"ActiveRun(run_id={self.run_id!r}, name={self.info.name!r})"

    @property
    def data(self) -> Run:
        """The run as stored now."""
        return self.client.get_run(self.run_id)

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        if exc is None:
            end_run(RunStatus.FINISHED, run_id=self.run_id)
        else:
            status = RunStatus.KILLED if isinstance(exc, KeyboardInterrupt) else RunStatus.FAILED
            end_run(status, _summary(exc), run_id=self.run_id)


class _FluentState:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.tracking_uri: str | None = None
        self.client: Client | None = None
        self.experiment_id: str | None = None
        self.seed: int | None = None
        self.local = threading.local()
        self.all_active: dict[str, ActiveRun] = {}
        self.crashed: BaseException | None = None
        self.hooks_installed = False

    def stack(self) -> list[ActiveRun]:
        stack: list[ActiveRun] | None = getattr(self.local, "stack", None)
        if stack is None:
            stack = []
            self.local.stack = stack
        return stack


_state = _FluentState()


def _client() -> Client:
    with _state.lock:
        if _state.client is None:
            _state.client = Client(_state.tracking_uri)
        return _state.client


def get_client() -> Client:
    """The client behind the fluent API."""
    return _client()


def set_tracking_uri(uri: str | os.PathLike[str] | None) -> None:
    """Use another store from now on (None: back to settings). Ends nothing."""
    with _state.lock:
        if _state.client is not None:
            _state.client.flush()
        _state.tracking_uri = None if uri is None else os.fspath(uri)
        _state.client = None
        _state.experiment_id = None


def get_tracking_uri() -> str:
    """The tracking URI in use."""
    return _state.tracking_uri or load_settings().tracking_uri


def set_experiment(name: str | None = None, experiment_id: str | None = None) -> Experiment:
    """Make an experiment current (creating it by name when missing)."""
    client = _client()
    if experiment_id is not None:
        exp = client.get_experiment(experiment_id)
    elif name is not None:
        try:
            exp = client.get_experiment_by_name(name)
        except NotFound:
            exp = client.get_experiment(client.create_experiment(name))
    else:
        raise InvalidArgument("set_experiment needs a name or an experiment_id")
    if exp.lifecycle_stage != "active":
        raise InvalidArgument(f"experiment {exp.name!r} is deleted; restore it first")
    _state.experiment_id = exp.experiment_id
    return exp


def start_run(
    run_name: str | None = None,
    *,
    experiment_id: str | None = None,
    nested: bool = False,
    tags: Mapping[str, Any] | None = None,
    description: str | None = None,
) -> ActiveRun:
    """Start a run and make it active in this thread.

    With ``nested=True`` the new run is a child of the active one; without it,
    starting while a run is active is an error.
    """
    _install_exit_hooks()
    client = _client()
    stack = _state.stack()
    if stack and not nested:
        raise InvalidArgument(
            f"run {stack[-1].run_id} is already active; end it first or pass nested=True"
        )
    parent = stack[-1] if stack else None
    exp_id = experiment_id or (parent.info.experiment_id if parent else None)
    exp_id = exp_id or _state.experiment_id or "0"
    all_tags = dict(tags or {})
    if description:
        all_tags["modelloop.note"] = description
    run = client.create_run(
        exp_id,
        name=run_name,
        tags=all_tags,
        parent_run_id=parent.run_id if parent else None,
    )
    active = ActiveRun(client, run)
    stack.append(active)
    with _state.lock:
        _state.all_active[run.run_id] = active
    if _state.seed is not None:
        client.log_param(run.run_id, "seed", _state.seed)
    return active


def active_run() -> ActiveRun | None:
    """The innermost active run of this thread, if any."""
    stack = _state.stack()
    return stack[-1] if stack else None


def end_run(
    status: RunStatus | str = RunStatus.FINISHED,
    status_message: str | None = None,
    *,
    run_id: str | None = None,
) -> None:
    """End the active run (or ``run_id``) and pop it from this thread's stack."""
    stack = _state.stack()
    target = run_id or (stack[-1].run_id if stack else None)
    if target is None:
        return
    _client().end_run(target, status, status_message)
    stack[:] = [a for a in stack if a.run_id != target]
    with _state.lock:
        _state.all_active.pop(target, None)


def _run_id() -> str:
    run = active_run()
    if run is None:
        raise InvalidArgument("no active run: call modelloop.start_run() first")
    return run.run_id


def log_param(key: str, value: Any) -> None:
    """Log a param of the active run."""
    _client().log_param(_run_id(), key, value)


def log_params(params: Mapping[str, Any]) -> None:
    """Log params of the active run."""
    _client().log_params(_run_id(), params)


def log_metric(key: str, value: float, step: int | None = None) -> None:
    """Log a metric point of the active run (buffered)."""
    _client().log_metric(_run_id(), key, value, step=step)


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    """Log metric points of the active run (buffered)."""
    _client().log_metrics(_run_id(), metrics, step=step)


def set_tag(key: str, value: Any) -> None:
    """Set a tag of the active run."""
    _client().set_tag(_run_id(), key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    """Set tags of the active run."""
    _client().set_tags(_run_id(), tags)


def flush() -> int:
    """Write buffered metrics; returns once they are committed."""
    return _client().flush()


def log_artifact(local_path: str | os.PathLike[str], artifact_path: str | None = None) -> None:
    """Store a file in the active run's artifacts."""
    _client().log_artifact(_run_id(), local_path, artifact_path)


def log_artifacts(local_dir: str | os.PathLike[str], artifact_path: str | None = None) -> None:
    """Store a folder in the active run's artifacts."""
    _client().log_artifacts(_run_id(), local_dir, artifact_path)


def log_text(text: str, artifact_file: str) -> ArtifactInfo:
    """Store text as an artifact of the active run."""
    return _client().log_text(_run_id(), text, artifact_file)


def log_dict(data: Mapping[str, Any], artifact_file: str) -> ArtifactInfo:
    """Store a dict as JSON or YAML in the active run's artifacts."""
    return _client().log_dict(_run_id(), data, artifact_file)


def log_figure(figure: Any, artifact_file: str) -> ArtifactInfo:
    """Store a matplotlib figure in the active run's artifacts."""
    return _client().log_figure(_run_id(), figure, artifact_file)


def log_input(data: Any, name: str | None = None, context: str = "train") -> Dataset:
    """Record a dataset the active run used."""
    return _client().log_input(_run_id(), data, name=name, context=context)


def search_runs(
    experiments: Sequence[str] | str | None = None,
    filter_string: str | None = None,
    order_by: Sequence[str] | None = None,
    max_results: int = 1000,
    page_token: str | None = None,
    view_type: ViewType = ViewType.ACTIVE_ONLY,
    output_format: Literal["list", "pandas"] = "list",
) -> Page[Run] | pd.DataFrame:
    """Search runs; see :meth:`Client.search_runs`."""
    client = _client()
    if output_format == "pandas":
        return client.search_runs(
            experiments,
            filter_string,
            order_by,
            max_results,
            page_token,
            view_type,
            output_format="pandas",
        )
    return client.search_runs(
        experiments, filter_string, order_by, max_results, page_token, view_type
    )


def seed_everything(seed: int) -> int:
    """Seed Python, NumPy (and PyTorch when imported) and record the seed as the
    ``seed`` param of the active run and of every run started afterwards."""
    value = _seed.seed_everything(seed)
    _state.seed = value
    run = active_run()
    if run is not None:
        _client().log_param(run.run_id, "seed", value)
    return value


def _summary(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text[:MAX_STATUS_MESSAGE]


def _excepthook(
    exc_type: type[BaseException], exc: BaseException, tb: types.TracebackType | None
) -> None:
    _state.crashed = exc
    _previous_excepthook(exc_type, exc, tb)


def _end_all_at_exit() -> None:
    with _state.lock:
        active = list(_state.all_active.values())
    if not active:
        return
    crashed = _state.crashed
    status = RunStatus.FINISHED if crashed is None else RunStatus.FAILED
    message = None if crashed is None else _summary(crashed)
    for run in reversed(active):
        try:
            run.client.end_run(run.run_id, status, message)
        except Exception as exc:
            print(f"modelloop: could not end run {run.run_id} at exit: {exc}", file=sys.stderr)


def _install_exit_hooks() -> None:
    """On first use: end runs left active at exit (FAILED after an uncaught exception)."""
    global _previous_excepthook
    with _state.lock:
        if _state.hooks_installed:
            return
        _state.hooks_installed = True
        _previous_excepthook = sys.excepthook
        sys.excepthook = _excepthook
        atexit.register(_end_all_at_exit)


_previous_excepthook = sys.excepthook
