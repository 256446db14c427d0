"""``/api/v1/experiments``: create, get, list, rename, delete, restore, tag."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from modelloop.entities import ViewType
from modelloop.server.deps import BackendDep
from modelloop.server.errors import ERROR_RESPONSES
from modelloop.server.schemas import (
    CreateExperimentRequest,
    ExperimentCreated,
    ExperimentList,
    ExperimentModel,
    RenameExperimentRequest,
    SetTagRequest,
)

__all__ = ["router"]

router = APIRouter(prefix="/experiments", tags=["experiments"], responses=ERROR_RESPONSES)

ExperimentId = Annotated[str, Path(description="The experiment id (a decimal string).")]


@router.post("", status_code=201, operation_id="create_experiment")
def create_experiment(body: CreateExperimentRequest, backend: BackendDep) -> ExperimentCreated:
    """Create an experiment."""
    eid = backend.create_experiment(body.name, body.artifact_location, body.tags)
    return ExperimentCreated(experiment_id=eid)


@router.get("", operation_id="list_experiments")
def list_experiments(
    backend: BackendDep, view_type: Annotated[ViewType, Query()] = ViewType.ACTIVE_ONLY
) -> ExperimentList:
    """All experiments in a view, newest first."""
    found = backend.list_experiments(view_type)
    return ExperimentList(experiments=[ExperimentModel.from_entity(e) for e in found])


# Declared before /{experiment_id} so that "by-name" is not taken for an id.
@router.get("/by-name", operation_id="get_experiment_by_name")
def get_experiment_by_name(
    backend: BackendDep, name: Annotated[str, Query(description="The exact name.")]
) -> ExperimentModel:
    """An experiment by name."""
    return ExperimentModel.from_entity(backend.get_experiment_by_name(name))


@router.get("/{experiment_id}", operation_id="get_experiment")
def get_experiment(experiment_id: ExperimentId, backend: BackendDep) -> ExperimentModel:
    """An experiment by id."""
    return ExperimentModel.from_entity(backend.get_experiment(experiment_id))


@router.patch("/{experiment_id}", status_code=204, operation_id="rename_experiment")
def rename_experiment(
    experiment_id: ExperimentId, body: RenameExperimentRequest, backend: BackendDep
) -> None:
    """Rename an experiment."""
    backend.rename_experiment(experiment_id, body.name)


@router.post("/{experiment_id}/delete", status_code=204, operation_id="delete_experiment")
def delete_experiment(experiment_id: ExperimentId, backend: BackendDep) -> None:
    """Soft-delete an experiment (its runs are hidden with it)."""
    backend.delete_experiment(experiment_id)


@router.post("/{experiment_id}/restore", status_code=204, operation_id="restore_experiment")
def restore_experiment(experiment_id: ExperimentId, backend: BackendDep) -> None:
    """Undo a soft delete."""
    backend.restore_experiment(experiment_id)


@router.put("/{experiment_id}/tags/{key:path}", status_code=204, operation_id="set_experiment_tag")
def set_experiment_tag(
    experiment_id: ExperimentId, key: str, body: SetTagRequest, backend: BackendDep
) -> None:
    """Set (overwrite) an experiment tag. Keys may contain slashes."""
    backend.set_experiment_tag(experiment_id, key, body.value)
