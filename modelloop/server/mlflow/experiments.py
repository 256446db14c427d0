"""MLflow ``experiments/*``: create, get, get-by-name, search, update, delete, restore, tag."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import Field, StrictStr

from modelloop.entities import ViewType
from modelloop.errors import NotFound
from modelloop.server.mlflow.convert import experiment_json
from modelloop.server.mlflow.deps import StoreDep
from modelloop.server.mlflow.errors import RESOURCE_DOES_NOT_EXIST, MlflowError, MlflowRoute
from modelloop.server.mlflow.experiment_search import search_experiments
from modelloop.server.mlflow.wire import (
    Int64,
    Message,
    Required,
    TagMessage,
    ViewTypeField,
    message,
    ok,
)

__all__ = ["router"]

router = APIRouter(prefix="/experiments", route_class=MlflowRoute)


class CreateExperiment(Message):
    name: Required
    artifact_location: StrictStr | None = None
    tags: list[TagMessage] = Field(default_factory=list)


class ExperimentId(Message):
    experiment_id: Required


class GetByName(Message):
    experiment_name: Required


class SearchExperiments(Message):
    max_results: Int64 = 1000
    page_token: StrictStr | None = None
    filter: StrictStr | None = None
    order_by: list[StrictStr] = Field(default_factory=list)
    view_type: ViewTypeField = ViewType.ACTIVE_ONLY


class UpdateExperiment(Message):
    experiment_id: Required
    new_name: Required


class SetExperimentTag(Message):
    experiment_id: Required
    key: Required
    value: StrictStr


@router.post("/create")
def create(
    body: Annotated[CreateExperiment, message(CreateExperiment)], store: StoreDep
) -> JSONResponse:
    """Create an experiment; 400 RESOURCE_ALREADY_EXISTS when the name is taken."""
    tags = {t.key: t.value for t in body.tags}
    experiment_id = store.create_experiment(body.name, body.artifact_location or None, tags)
    return ok({"experiment_id": experiment_id})


@router.get("/get")
def get(body: Annotated[ExperimentId, message(ExperimentId)], store: StoreDep) -> JSONResponse:
    """An experiment by id."""
    return ok({"experiment": experiment_json(store.get_experiment(body.experiment_id))})


@router.get("/get-by-name")
def get_by_name(body: Annotated[GetByName, message(GetByName)], store: StoreDep) -> JSONResponse:
    """An experiment by name; 404 RESOURCE_DOES_NOT_EXIST (the client's "None") if missing."""
    try:
        exp = store.get_experiment_by_name(body.experiment_name)
    except NotFound:
        raise MlflowError(
            f"Could not find experiment with name '{body.experiment_name}'",
            RESOURCE_DOES_NOT_EXIST,
            404,
        ) from None
    return ok({"experiment": experiment_json(exp)})


@router.api_route("/search", methods=["GET", "POST"])
def search(
    body: Annotated[SearchExperiments, message(SearchExperiments)], store: StoreDep
) -> JSONResponse:
    """One page of experiments matching a filter, in order."""
    found, token = search_experiments(
        store.list_experiments(body.view_type),
        body.filter,
        body.order_by,
        body.max_results,
        body.page_token,
    )
    payload: dict[str, object] = {"experiments": [experiment_json(e) for e in found]}
    if token:
        payload["next_page_token"] = token
    return ok(payload)


@router.post("/update")
def update(
    body: Annotated[UpdateExperiment, message(UpdateExperiment)], store: StoreDep
) -> JSONResponse:
    """Rename an experiment."""
    store.rename_experiment(body.experiment_id, body.new_name)
    return ok()


@router.post("/delete")
def delete(body: Annotated[ExperimentId, message(ExperimentId)], store: StoreDep) -> JSONResponse:
    """Soft-delete an experiment and its runs."""
    store.delete_experiment(body.experiment_id)
    return ok()


@router.post("/restore")
def restore(body: Annotated[ExperimentId, message(ExperimentId)], store: StoreDep) -> JSONResponse:
    """Undo a soft delete."""
    store.restore_experiment(body.experiment_id)
    return ok()


@router.post("/set-experiment-tag")
def set_tag(
    body: Annotated[SetExperimentTag, message(SetExperimentTag)], store: StoreDep
) -> JSONResponse:
    """Set (overwrite) an experiment tag."""
    store.set_experiment_tag(body.experiment_id, body.key, body.value)
    return ok()
