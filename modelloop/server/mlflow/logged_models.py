"""MLflow 3's ``logged-models``, and ``runs/outputs`` (the client links a logged model
to its run with it).

MLflow 3 clients log a model as a *logged model*: ``POST logged-models`` (PENDING),
the files uploaded through the artifact proxy to the model's ``artifact_uri``
(``mlflow-artifacts:/<exp>/models/<model_id>/artifacts``), then ``PATCH
logged-models/{id}`` to READY. In modelloop a logged model always belongs to a source
run, and its files are artifacts of that run under ``_logged_models/<model_id>/``
(the proxy maps the model's paths there, see :mod:`.artifacts`). A request without
``source_run_id`` is refused with 400 ``INVALID_PARAMETER_VALUE``.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import Field, StrictInt, StrictStr

from modelloop.backends import LocalBackend
from modelloop.backends.local_logged_models import LoggedModel, LoggedModelStatus
from modelloop.server.mlflow import search_filter as sf
from modelloop.server.mlflow.convert import tags_json
from modelloop.server.mlflow.deps import StoreDep
from modelloop.server.mlflow.errors import MlflowError, MlflowRoute
from modelloop.server.mlflow.wire import (
    Int64,
    Message,
    Required,
    RunMessage,
    TagMessage,
    message,
    ok,
)

__all__ = ["logged_model_json", "model_artifact_uri", "outputs_router", "router"]

router = APIRouter(prefix="/logged-models", route_class=MlflowRoute)
#: ``runs/outputs``: in this module because it links runs to logged models.
outputs_router = APIRouter(prefix="/runs", route_class=MlflowRoute)

MAX_RESULTS = 1000
_STATUS_NUMBERS = {
    1: "LOGGED_MODEL_PENDING",
    2: "LOGGED_MODEL_READY",
    3: "LOGGED_MODEL_UPLOAD_FAILED",
}
_STRING_ATTRS = ("name", "model_id", "source_run_id", "status", "model_type")
_NUMBER_ATTRS = ("creation_timestamp", "last_updated_timestamp")
_ORDER_KEYS = {
    "name": lambda m: m.name,
    "model_id": lambda m: m.model_id,
    "creation_timestamp": lambda m: m.creation_time,
    "creation_time": lambda m: m.creation_time,
    "last_updated_timestamp": lambda m: m.last_updated_time,
}
# Fetching candidates from the store in pages of this size.
_FETCH = 10_000


def model_artifact_uri(experiment_id: str, model_id: str) -> str:
    """A logged model's artifact URI as MLflow clients see it (served by the proxy)."""
    return f"mlflow-artifacts:/{experiment_id}/models/{model_id}/artifacts"


def logged_model_json(model: LoggedModel) -> dict[str, Any]:
    """An MLflow ``LoggedModel``: ``info`` and ``data`` (params; metrics are the run's)."""
    info: dict[str, Any] = {
        "model_id": model.model_id,
        "experiment_id": model.experiment_id,
        "name": model.name,
        "creation_timestamp_ms": model.creation_time,
        "last_updated_timestamp_ms": model.last_updated_time,
        "artifact_uri": model_artifact_uri(model.experiment_id, model.model_id),
        "status": model.status.value,
        "source_run_id": model.source_run_id,
    }
    if model.model_type:
        info["model_type"] = model.model_type
    if model.status_message:
        info["status_message"] = model.status_message
    if model.tags:
        info["tags"] = tags_json(model.tags)
    data = {"params": tags_json(model.params)} if model.params else {}
    return {"info": info, "data": data}


def _status(value: str | int) -> LoggedModelStatus:
    name = _STATUS_NUMBERS.get(value, "") if isinstance(value, int) else value
    try:
        return LoggedModelStatus(name)
    except ValueError:
        allowed = ", ".join(s.value for s in LoggedModelStatus)
        raise MlflowError(
            f"Invalid logged model status {value!r}; expected one of {allowed}"
        ) from None


class CreateLoggedModel(Message):
    experiment_id: Required
    name: StrictStr | None = None
    model_type: StrictStr | None = None
    source_run_id: StrictStr | None = None
    params: list[TagMessage] = Field(default_factory=list)
    tags: list[TagMessage] = Field(default_factory=list)


class FinalizeLoggedModel(Message):
    status: StrictStr | StrictInt


class SetLoggedModelTags(Message):
    tags: list[TagMessage] = Field(default_factory=list)


class LogLoggedModelParams(Message):
    params: list[TagMessage] = Field(default_factory=list)


class OrderBy(Message):
    field_name: Required
    ascending: bool = True


class SearchLoggedModels(Message):
    experiment_ids: list[StrictStr] = Field(default_factory=list)
    filter: StrictStr | None = None
    max_results: Int64 | None = None
    order_by: list[OrderBy] = Field(default_factory=list)
    page_token: StrictStr | None = None


class ListArtifacts(Message):
    artifact_directory_path: StrictStr | None = None
    page_token: StrictStr | None = None


class ModelOutput(Message):
    model_id: Required
    step: Int64 = 0


class LogOutputs(RunMessage):
    models: list[ModelOutput] = Field(default_factory=list)


@router.post("")
def create(
    body: Annotated[CreateLoggedModel, message(CreateLoggedModel)], store: StoreDep
) -> JSONResponse:
    """Create a PENDING logged model of a run; its files then go to its artifact URI."""
    if not body.source_run_id:
        raise MlflowError(
            "A logged model needs a source run on this server: 'source_run_id' is required "
            "(log the model inside a run)"
        )
    model = store.create_logged_model(
        body.experiment_id,
        body.source_run_id,
        body.name or f"model-{uuid.uuid4().hex[:8]}",
        model_type=body.model_type or None,
        tags={t.key: t.value for t in body.tags},
        params={p.key: p.value for p in body.params},
    )
    return ok({"model": logged_model_json(model)})


def _attribute(model: LoggedModel, key: str) -> str | int | None:
    values: dict[str, str | int | None] = {
        "name": model.name,
        "model_id": model.model_id,
        "source_run_id": model.source_run_id,
        "status": model.status.value,
        "model_type": model.model_type,
        "creation_timestamp": model.creation_time,
        "last_updated_timestamp": model.last_updated_time,
    }
    return values[key]


def _matches(model: LoggedModel, c: sf.Comparison) -> bool:
    if c.kind == "tag":
        return sf.matches(c, model.tags.get(c.key))
    if c.kind == "param":
        return sf.matches(c, model.params.get(c.key))
    return sf.matches(c, _attribute(model, c.key))


def _candidates(
    store: LocalBackend, experiment_ids: list[str], comparisons: list[sf.Comparison]
) -> list[LoggedModel]:
    """Every logged model the store can narrow down to by name and source run."""
    pushed = {
        c.key: str(c.value)
        for c in comparisons
        if c.kind == "attr" and c.op == "=" and c.key in ("name", "source_run_id")
    }
    found: list[LoggedModel] = []
    token: str | None = None
    while True:
        batch = store.search_logged_models(
            experiment_ids or None,
            name=pushed.get("name"),
            source_run_id=pushed.get("source_run_id"),
            max_results=_FETCH,
            page_token=token,
        )
        found.extend(batch.items)
        token = batch.next_page_token
        if not token:
            return found


@router.post("/search")
def search(
    body: Annotated[SearchLoggedModels, message(SearchLoggedModels)], store: StoreDep
) -> JSONResponse:
    """One page of the logged models of some experiments matching a filter (on
    ``name``, ``model_id``, ``source_run_id``, ``status``, ``model_type``, the
    timestamps, ``tags.<k>`` and ``params.<k>``), newest first by default."""
    for experiment_id in body.experiment_ids:
        store.get_experiment(experiment_id)
    comparisons = sf.parse_filter(body.filter, _STRING_ATTRS, _NUMBER_ATTRS, ("tag", "param"))
    terms = []
    for order in body.order_by:
        if order.field_name not in _ORDER_KEYS:
            raise MlflowError(
                f"Invalid order_by field {order.field_name[:100]!r}: order logged models by "
                f"one of {', '.join(sorted(_ORDER_KEYS))}"
            )
        terms.append(sf.OrderTerm(order.field_name, order.ascending))
    found = [
        m
        for m in _candidates(store, body.experiment_ids, comparisons)
        if all(_matches(m, c) for c in comparisons)
    ]
    ordered = sf.sort(found, terms, lambda m, key: _ORDER_KEYS[key](m))
    max_results = 100 if body.max_results is None else body.max_results
    models, token = sf.page(ordered, max_results, body.page_token, MAX_RESULTS)
    payload: dict[str, Any] = {"models": [logged_model_json(m) for m in models]}
    if token:
        payload["next_page_token"] = token
    return ok(payload)


@router.get("/{model_id}")
def get(model_id: str, store: StoreDep) -> JSONResponse:
    """A logged model."""
    return ok({"model": logged_model_json(store.get_logged_model(model_id))})


@router.patch("/{model_id}")
def finalize(
    model_id: str,
    body: Annotated[FinalizeLoggedModel, message(FinalizeLoggedModel)],
    store: StoreDep,
) -> JSONResponse:
    """Set a logged model's status (READY once its files are uploaded)."""
    model = store.finalize_logged_model(model_id, _status(body.status))
    return ok({"model": logged_model_json(model)})


@router.delete("/{model_id}")
def delete(model_id: str, store: StoreDep) -> JSONResponse:
    """Forget a logged model (its files stay in the run's artifacts)."""
    store.delete_logged_model(model_id)
    return ok()


@router.patch("/{model_id}/tags")
def set_tags(
    model_id: str,
    body: Annotated[SetLoggedModelTags, message(SetLoggedModelTags)],
    store: StoreDep,
) -> JSONResponse:
    """Set (overwrite) tags of a logged model."""
    store.set_logged_model_tags(model_id, {t.key: t.value for t in body.tags})
    return ok()


@router.delete("/{model_id}/tags/{tag_key:path}")
def delete_tag(model_id: str, tag_key: str, store: StoreDep) -> JSONResponse:
    """Remove a tag of a logged model."""
    store.delete_logged_model_tag(model_id, tag_key)
    return ok()


@router.post("/{model_id}/params")
def log_params(
    model_id: str,
    body: Annotated[LogLoggedModelParams, message(LogLoggedModelParams)],
    store: StoreDep,
) -> JSONResponse:
    """Record params of a logged model."""
    store.log_logged_model_params(model_id, {p.key: p.value for p in body.params})
    return ok()


@router.get("/{model_id}/artifacts/directories")
def list_artifacts(
    model_id: str, body: Annotated[ListArtifacts, message(ListArtifacts)], store: StoreDep
) -> JSONResponse:
    """A folder of a logged model's files, paths relative to its ``root_uri``."""
    model = store.get_logged_model(model_id)
    sub = (body.artifact_directory_path or "").strip("/")
    folder = f"{model.artifact_path}/{sub}" if sub else model.artifact_path
    found = store.list_artifacts(model.source_run_id, folder)
    payload: dict[str, Any] = {"root_uri": model_artifact_uri(model.experiment_id, model_id)}
    files = []
    for info in found:
        if info.path == folder:  # ``folder`` is a file: MLflow lists nothing
            continue
        entry: dict[str, Any] = {
            "path": info.path.removeprefix(f"{model.artifact_path}/"),
            "is_dir": info.is_dir,
        }
        if not info.is_dir and info.size is not None:
            entry["file_size"] = info.size
        files.append(entry)
    if files:
        payload["files"] = files
    return ok(payload)


@outputs_router.post("/outputs")
def log_outputs(body: Annotated[LogOutputs, message(LogOutputs)], store: StoreDep) -> JSONResponse:
    """Link logged models to a run as its outputs. A logged model here always records
    its source run, so this checks the link (each model exists and was logged from
    this run) rather than storing a second copy of it."""
    run_id = body.required_run_id()
    store.get_run(run_id)
    for output in body.models:
        model = store.get_logged_model(output.model_id)
        if model.source_run_id != run_id:
            raise MlflowError(
                f"Logged model '{model.model_id}' was logged from run '{model.source_run_id}', "
                f"not '{run_id}': this server records a logged model's source run as its "
                "only output link"
            )
    return ok()
