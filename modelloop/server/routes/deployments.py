"""``/api/v1/deployments``: numbered revisions of deployment specs, and rollback."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from modelloop.server.deps import BackendDep
from modelloop.server.errors import ERROR_RESPONSES
from modelloop.server.registry_schemas import (
    DeploymentList,
    DeploymentModel,
    PutDeploymentRequest,
    RollbackDeploymentRequest,
)

__all__ = ["router"]

router = APIRouter(prefix="/deployments", tags=["deployments"], responses=ERROR_RESPONSES)

Name = Annotated[str, Path(description="The deployment's name.")]


@router.get("", operation_id="list_deployments")
def list_deployments(backend: BackendDep) -> DeploymentList:
    """The live revision of every deployment."""
    found = backend.list_deployments()
    return DeploymentList(deployments=[DeploymentModel.from_entity(d) for d in found])


@router.put("/{name}", operation_id="put_deployment")
def put_deployment(name: Name, body: PutDeploymentRequest, backend: BackendDep) -> DeploymentModel:
    """Store a new revision of the deployment's spec; servers following it switch to it."""
    return DeploymentModel.from_entity(backend.put_deployment(name, body.spec, body.reason))


@router.get("/{name}", operation_id="get_deployment")
def get_deployment(
    name: Name,
    backend: BackendDep,
    revision: Annotated[int | None, Query(ge=1, lt=2**31)] = None,
) -> DeploymentModel:
    """The live revision, or a given one."""
    return DeploymentModel.from_entity(backend.get_deployment(name, revision))


@router.get("/{name}/history", operation_id="deployment_history")
def deployment_history(name: Name, backend: BackendDep) -> DeploymentList:
    """Every revision, oldest first."""
    found = backend.deployment_history(name)
    return DeploymentList(deployments=[DeploymentModel.from_entity(d) for d in found])


@router.post("/{name}/rollback", operation_id="rollback_deployment")
def rollback_deployment(
    name: Name, body: RollbackDeploymentRequest, backend: BackendDep
) -> DeploymentModel:
    """Make an earlier revision live again, as a new revision."""
    found = backend.rollback_deployment(name, body.to_revision, body.reason)
    return DeploymentModel.from_entity(found)
