"""MLflow ``runs/*``: create, get, update, delete, restore, search, and logging.

MLflow accepts metrics, params, tags, inputs and artifacts until a run is
*deleted*, ended or not (its client logs system metrics and inputs after
``end_run``), so every write here passes ``allow_ended=True`` to the store; the
native API keeps refusing data on an ended run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import Field, StrictInt, StrictStr

from modelloop import validation as v
from modelloop.backends import LocalBackend
from modelloop.entities import Metric, Param, RunStatus, ViewType
from modelloop.server.mlflow.convert import (
    SYSTEM_TAGS,
    SystemFields,
    dataset_input_from_json,
    run_info_json,
    run_json,
    split_system_tags,
)
from modelloop.server.mlflow.deps import StoreDep
from modelloop.server.mlflow.errors import MlflowError, MlflowRoute
from modelloop.server.mlflow.wire import (
    Double,
    Int64,
    Message,
    Required,
    RunMessage,
    TagMessage,
    ViewTypeField,
    message,
    ok,
)

__all__ = [
    "MAX_ENTITIES_PER_BATCH",
    "MAX_METRICS_PER_BATCH",
    "MAX_PARAMS_TAGS_PER_BATCH",
    "check_batch",
    "create_run",
    "full_run",
    "log_batch_data",
    "router",
    "search_runs",
    "update_run",
]

router = APIRouter(prefix="/runs", route_class=MlflowRoute)

MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000

_STATUS_NUMBERS = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}


class CreateRun(Message):
    experiment_id: StrictStr | None = None
    user_id: StrictStr | None = None
    run_name: StrictStr | None = None
    start_time: Int64 | None = None
    tags: list[TagMessage] = Field(default_factory=list)


class UpdateRun(RunMessage):
    status: StrictStr | StrictInt | None = None
    end_time: Int64 | None = None
    run_name: StrictStr | None = None


class SearchRuns(Message):
    experiment_ids: list[StrictStr] = Field(default_factory=list)
    filter: StrictStr | None = None
    run_view_type: ViewTypeField = ViewType.ACTIVE_ONLY
    max_results: Int64 = 1000
    order_by: list[StrictStr] = Field(default_factory=list)
    page_token: StrictStr | None = None


class MetricMessage(Message):
    key: Required
    value: Double
    timestamp: Int64
    step: Int64 = 0


class LogMetric(RunMessage, MetricMessage):
    pass


class LogParam(RunMessage):
    key: Required
    value: StrictStr = ""


class SetTag(RunMessage):
    key: Required
    value: StrictStr = ""


class DeleteTag(RunMessage):
    key: Required


class LogBatch(RunMessage):
    metrics: list[MetricMessage] = Field(default_factory=list)
    params: list[TagMessage] = Field(default_factory=list)
    tags: list[TagMessage] = Field(default_factory=list)


class DatasetMessage(Message):
    name: Required
    digest: Required
    source_type: Required
    source: StrictStr = ""
    schema_: StrictStr = Field("", alias="schema")
    profile: StrictStr = ""


class DatasetInputMessage(Message):
    tags: list[TagMessage] = Field(default_factory=list)
    dataset: DatasetMessage


class LogInputs(RunMessage):
    datasets: list[DatasetInputMessage] = Field(default_factory=list)


def full_run(store: LocalBackend, run_id: str) -> dict[str, object]:
    """A run as MLflow's ``Run`` message, latest metrics with their steps."""
    run, latest = store.get_run_with_latest(run_id)
    return run_json(run, latest)


def _status(value: str | int | None) -> RunStatus | None:
    if value is None:
        return None
    name = _STATUS_NUMBERS.get(value, "") if isinstance(value, int) else value
    try:
        return RunStatus(name)
    except ValueError:
        allowed = ", ".join(s.value for s in RunStatus)
        raise MlflowError(f"Invalid run status {value!r}; expected one of {allowed}") from None


def _log(
    store: LocalBackend,
    run_id: str,
    metrics: Sequence[Metric] = (),
    params: Sequence[Param] = (),
    tags: dict[str, str] | None = None,
) -> None:
    """Log to a run the MLflow way: system tags set the run's fields, ended runs accept
    data. ``mlflow.user`` and ``mlflow.parentRunId`` are fixed when a run is created."""
    plain, fields = split_system_tags(tags or {})
    if fields.name is not None:
        v.check_name(fields.name, "run name", v.MAX_RUN_NAME_LENGTH)
    if fields != SystemFields(name=fields.name):
        run = store.get_run(run_id)
        for tag, given, actual in (
            ("mlflow.user", fields.user, run.user),
            ("mlflow.parentRunId", fields.parent_run_id, run.parent_run_id or ""),
        ):
            if given is not None and given != actual:
                raise MlflowError(
                    f"The tag '{tag}' of run {run_id} is set when the run is created "
                    f"(it is {actual!r}) and cannot be changed to {given!r:.100}"
                )
    store.log_batch(run_id, metrics, params, plain, allow_ended=True)
    if fields.name is not None:
        store.update_run(run_id, name=fields.name)


def create_run(
    store: LocalBackend,
    experiment_id: str | None,
    user_id: str | None,
    run_name: str | None,
    start_time: int | None,
    tags: dict[str, str],
) -> dict[str, object]:
    """``runs/create``'s answer: the new run."""
    plain, fields = split_system_tags(tags)
    if run_name and fields.name and run_name != fields.name:
        raise MlflowError(
            "Both 'run_name' argument and 'mlflow.runName' tag are specified, but with "
            f"different values (run_name='{run_name}', mlflow.runName='{fields.name}')."
        )
    run = store.create_run(
        experiment_id or "0",
        name=run_name or fields.name or None,
        start_time=start_time,
        tags=plain,
        parent_run_id=fields.parent_run_id or None,
        user=user_id or fields.user or None,
    )
    return {"run": run_json(run, [])}


def update_run(
    store: LocalBackend,
    run_id: str,
    status: str | int | None,
    end_time: int | None,
    run_name: str | None,
) -> dict[str, object]:
    """``runs/update``'s answer: the run's info after the change."""
    run = store.update_run_info(
        run_id, status=_status(status), end_time=end_time, name=run_name or None
    )
    return {"run_info": run_info_json(run)}


def search_runs(
    store: LocalBackend,
    experiment_ids: list[str],
    filter_string: str | None,
    view_type: ViewType,
    max_results: int,
    order_by: list[str],
    page_token: str | None,
) -> dict[str, object]:
    """``runs/search``'s answer: one page of runs, and the next page's token."""
    page, latest = store.search_runs_with_latest(
        experiment_ids,
        filter_string or None,
        view_type,
        max_results,
        order_by or None,
        page_token or None,
    )
    payload: dict[str, object] = {"runs": [run_json(r, latest[r.run_id]) for r in page.items]}
    if page.next_page_token:
        payload["next_page_token"] = page.next_page_token
    return payload


@router.post("/create")
def create(body: Annotated[CreateRun, message(CreateRun)], store: StoreDep) -> JSONResponse:
    """Start a RUNNING run; ``mlflow.runName``/``mlflow.user``/``mlflow.parentRunId`` tags
    become the run's name, user and parent."""
    tags = {t.key: t.value for t in body.tags}
    return ok(
        create_run(store, body.experiment_id, body.user_id, body.run_name, body.start_time, tags)
    )


@router.get("/get")
def get(body: Annotated[RunMessage, message(RunMessage)], store: StoreDep) -> JSONResponse:
    """A run with its latest metrics, params, tags and inputs."""
    return ok({"run": full_run(store, body.required_run_id())})


@router.post("/update")
def update(body: Annotated[UpdateRun, message(UpdateRun)], store: StoreDep) -> JSONResponse:
    """Change a run's status (ending it), end time or name."""
    return ok(update_run(store, body.required_run_id(), body.status, body.end_time, body.run_name))


@router.post("/delete")
def delete(body: Annotated[RunMessage, message(RunMessage)], store: StoreDep) -> JSONResponse:
    """Soft-delete a run."""
    store.delete_run(body.required_run_id())
    return ok()


@router.post("/restore")
def restore(body: Annotated[RunMessage, message(RunMessage)], store: StoreDep) -> JSONResponse:
    """Undo a soft delete."""
    store.restore_run(body.required_run_id())
    return ok()


@router.post("/search")
def search(body: Annotated[SearchRuns, message(SearchRuns)], store: StoreDep) -> JSONResponse:
    """One page of runs matching an MLflow filter, in order."""
    return ok(
        search_runs(
            store,
            body.experiment_ids,
            body.filter,
            body.run_view_type,
            body.max_results,
            body.order_by,
            body.page_token,
        )
    )


@router.post("/log-metric")
def log_metric(body: Annotated[LogMetric, message(LogMetric)], store: StoreDep) -> JSONResponse:
    """Record one metric point."""
    point = Metric(body.key, body.value, body.timestamp, body.step)
    _log(store, body.required_run_id(), metrics=[point])
    return ok()


@router.post("/log-parameter")
def log_param(body: Annotated[LogParam, message(LogParam)], store: StoreDep) -> JSONResponse:
    """Record a param; another value for a logged param is refused."""
    _log(store, body.required_run_id(), params=[Param(body.key, body.value)])
    return ok()


@router.post("/set-tag")
def set_tag(body: Annotated[SetTag, message(SetTag)], store: StoreDep) -> JSONResponse:
    """Set a tag (``mlflow.runName`` renames the run)."""
    _log(store, body.required_run_id(), tags={body.key: body.value})
    return ok()


@router.post("/delete-tag")
def delete_tag(body: Annotated[DeleteTag, message(DeleteTag)], store: StoreDep) -> JSONResponse:
    """Remove a tag; the system tags are the run's fields and cannot be removed."""
    if body.key in SYSTEM_TAGS:
        raise MlflowError(f"The system tag '{body.key}' cannot be deleted")
    store.delete_tag(body.required_run_id(), body.key)
    return ok()


def check_batch(metrics: int, params: Sequence[Param], tags: int) -> None:
    """MLflow's batch limits (counts of metrics, params, tags) and its refusal of a
    param key given twice with different values."""
    counts = (
        ("metrics", metrics, MAX_METRICS_PER_BATCH),
        ("params", len(params), MAX_PARAMS_TAGS_PER_BATCH),
        ("tags", tags, MAX_PARAMS_TAGS_PER_BATCH),
        ("metrics, params, and tags", metrics + len(params) + tags, MAX_ENTITIES_PER_BATCH),
    )
    for what, count, limit in counts:
        if count > limit:
            raise MlflowError(
                f"A batch logging request can contain at most {limit} {what}. Got {count} "
                f"{what}. Please split up {what} across multiple requests and try again."
            )
    values: dict[str, str] = {}
    dupes = sorted({p.key for p in params if values.setdefault(p.key, p.value) != p.value})
    if dupes:
        raise MlflowError(
            f"Duplicate parameter keys have been submitted: {dupes}. Please ensure the "
            "request contains only one param value per param key."
        )


def log_batch_data(
    store: LocalBackend,
    run_id: str,
    metrics: list[Metric],
    params: list[Param],
    tags: list[tuple[str, str]],
) -> None:
    """``runs/log-batch`` once :func:`check_batch` passed: one transaction."""
    _log(store, run_id, metrics=metrics, params=params, tags=dict(tags))


@router.post("/log-batch")
def log_batch(body: Annotated[LogBatch, message(LogBatch)], store: StoreDep) -> JSONResponse:
    """Record metrics, params and tags in one transaction, within MLflow's batch limits."""
    params = [Param(p.key, p.value) for p in body.params]
    check_batch(len(body.metrics), params, len(body.tags))
    log_batch_data(
        store,
        body.required_run_id(),
        [Metric(m.key, m.value, m.timestamp, m.step) for m in body.metrics],
        params,
        [(t.key, t.value) for t in body.tags],
    )
    return ok()


@router.post("/log-inputs")
def log_inputs(body: Annotated[LogInputs, message(LogInputs)], store: StoreDep) -> JSONResponse:
    """Record the datasets a run used (model inputs are not recorded yet)."""
    inputs = [
        dataset_input_from_json(
            d.dataset.name,
            d.dataset.digest,
            d.dataset.source_type,
            d.dataset.source,
            d.dataset.schema_,
            d.dataset.profile,
            {t.key: t.value for t in d.tags},
        )
        for d in body.datasets
    ]
    store.log_inputs(body.required_run_id(), inputs, allow_ended=True)
    return ok()
