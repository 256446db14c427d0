"""``/api/v1/runs``: runs, batched params/metrics/tags, metric history, search, inputs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from modelloop.server.deps import BackendDep
from modelloop.server.errors import ERROR_RESPONSES
from modelloop.server.schemas import (
    CreateRunRequest,
    LogBatchRequest,
    LogInputsRequest,
    MetricHistory,
    MetricModel,
    RunModel,
    RunPage,
    SearchRunsRequest,
    UpdateRunRequest,
)

__all__ = ["router"]

router = APIRouter(prefix="/runs", tags=["runs"], responses=ERROR_RESPONSES)

RunId = Annotated[str, Path(description="The run id (32 hex characters).")]


@router.post("", status_code=201, operation_id="create_run")
def create_run(body: CreateRunRequest, backend: BackendDep) -> RunModel:
    """Start a RUNNING run."""
    run = backend.create_run(
        body.experiment_id,
        name=body.name,
        start_time=body.start_time,
        tags=body.tags,
        parent_run_id=body.parent_run_id,
        user=body.user,
    )
    return RunModel.from_entity(run)


# Declared before /{run_id} routes; "search" is never a run id (those are hex).
@router.post("/search", operation_id="search_runs")
def search_runs(body: SearchRunsRequest, backend: BackendDep) -> RunPage:
    """One page of runs matching an MLflow-syntax filter, in order."""
    page = backend.search_runs(
        body.experiment_ids,
        body.filter_string,
        body.view_type,
        body.max_results,
        body.order_by,
        body.page_token,
    )
    return RunPage(
        runs=[RunModel.from_entity(r) for r in page.items], next_page_token=page.next_page_token
    )


@router.get("/{run_id}", operation_id="get_run")
def get_run(run_id: RunId, backend: BackendDep) -> RunModel:
    """A run with its params, latest metrics, tags and inputs."""
    return RunModel.from_entity(backend.get_run(run_id))


@router.patch("/{run_id}", status_code=204, operation_id="update_run")
def update_run(run_id: RunId, body: UpdateRunRequest, backend: BackendDep) -> None:
    """Change a run's status (ending it), end time, name or status message."""
    backend.update_run(
        run_id,
        status=body.status,
        end_time=body.end_time,
        name=body.name,
        status_message=body.status_message,
    )


@router.post("/{run_id}/delete", status_code=204, operation_id="delete_run")
def delete_run(run_id: RunId, backend: BackendDep) -> None:
    """Soft-delete a run."""
    backend.delete_run(run_id)


@router.post("/{run_id}/restore", status_code=204, operation_id="restore_run")
def restore_run(run_id: RunId, backend: BackendDep) -> None:
    """Undo a soft delete."""
    backend.restore_run(run_id)


@router.post("/{run_id}/batch", status_code=204, operation_id="log_batch")
def log_batch(run_id: RunId, body: LogBatchRequest, backend: BackendDep) -> None:
    """Record metrics, params and tags in one transaction (all or nothing)."""
    backend.log_batch(
        run_id,
        metrics=[m.to_entity() for m in body.metrics],
        params=[p.to_entity() for p in body.params],
        tags=body.tags,
    )


@router.delete("/{run_id}/tags/{key:path}", status_code=204, operation_id="delete_tag")
def delete_tag(run_id: RunId, key: str, backend: BackendDep) -> None:
    """Remove a run tag. Keys may contain slashes."""
    backend.delete_tag(run_id, key)


@router.get("/{run_id}/metrics/{key:path}/history", operation_id="get_metric_history")
def get_metric_history(run_id: RunId, key: str, backend: BackendDep) -> MetricHistory:
    """Every point of one metric, by step. Keys may contain slashes."""
    points = backend.get_metric_history(run_id, key)
    return MetricHistory(metrics=[MetricModel.from_entity(m) for m in points])


@router.post("/{run_id}/inputs", status_code=204, operation_id="log_inputs")
def log_inputs(run_id: RunId, body: LogInputsRequest, backend: BackendDep) -> None:
    """Record datasets the run used (each dataset is stored once per digest)."""
    backend.log_inputs(run_id, [i.to_entity() for i in body.inputs])
