"""The deployments part of :class:`~modelloop.backends.http.HttpBackend`."""

from __future__ import annotations

from typing import Any

from modelloop.backends._http_io import url_segment, wire_request
from modelloop.backends.http_monitors import HttpMonitors
from modelloop.entities import DeploymentRevision
from modelloop.server.registry_schemas import (
    DeploymentList,
    DeploymentModel,
    PutDeploymentRequest,
    RollbackDeploymentRequest,
)

__all__ = ["HttpDeployments"]


class HttpDeployments(HttpMonitors):
    """Deployment calls over ``/api/v1/deployments``."""

    def put_deployment(
        self, name: str, spec: dict[str, Any], reason: str = ""
    ) -> DeploymentRevision:
        """Store a new (live) revision of a deployment's spec."""
        body = wire_request(PutDeploymentRequest, spec=spec, reason=reason)
        path = f"/deployments/{url_segment(name)}"
        return self._call("PUT", path, DeploymentModel, body=body).to_entity()

    def get_deployment(self, name: str, revision: int | None = None) -> DeploymentRevision:
        """A deployment's live revision, or a given one."""
        params = None if revision is None else {"revision": str(revision)}
        path = f"/deployments/{url_segment(name)}"
        return self._call("GET", path, DeploymentModel, params=params).to_entity()

    def list_deployments(self) -> list[DeploymentRevision]:
        """The live revision of every deployment."""
        found = self._call("GET", "/deployments", DeploymentList)
        return [d.to_entity() for d in found.deployments]

    def deployment_history(self, name: str) -> list[DeploymentRevision]:
        """Every revision of a deployment, oldest first."""
        path = f"/deployments/{url_segment(name)}/history"
        return [d.to_entity() for d in self._call("GET", path, DeploymentList).deployments]

    def rollback_deployment(
        self, name: str, to_revision: int | None = None, reason: str = ""
    ) -> DeploymentRevision:
        """Make an earlier revision live again, as a new revision."""
        body = wire_request(RollbackDeploymentRequest, to_revision=to_revision, reason=reason)
        path = f"/deployments/{url_segment(name)}/rollback"
        return self._call("POST", path, DeploymentModel, body=body).to_entity()
