"""The deployment half of :class:`~modelloop.Client`: create, inspect and roll back
deployments (versioned routing specs that servers follow)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelloop.registry.uris import resolve_model_uri

if TYPE_CHECKING:
    from modelloop.backends import Backend
    from modelloop.entities import DeploymentRevision

__all__ = ["DeploymentMixin"]


class DeploymentMixin:
    """Deployment operations of :class:`~modelloop.Client`."""

    _backend: Backend

    def deploy(
        self,
        name: str,
        model: str | None = None,
        *,
        canaries: list[tuple[str, float]] | None = None,
        shadows: list[str] | None = None,
        sticky_key: str | None = None,
        spec: dict[str, Any] | None = None,
        reason: str = "",
    ) -> DeploymentRevision:
        """Store a new revision of deployment ``name``: ``model`` takes the traffic the
        ``canaries`` (``(uri, percent)``) leave, ``shadows`` get a logged copy of it;
        or give a full ``spec``. Every model URI must resolve now (a typo is refused
        here, not at serving time)."""
        from modelloop.errors import InvalidArgument
        from modelloop.serving.deployment import DeploymentSpec, simple_spec

        if (model is None) == (spec is None):
            raise InvalidArgument("give either a model URI or a full deployment spec")
        parsed = (
            simple_spec(model, canaries, shadows, sticky_key)
            if model is not None
            else DeploymentSpec.parse(spec)
        )
        for uri in parsed.models():
            resolve_model_uri(self._backend, uri)
        return self._backend.put_deployment(name, parsed.to_dict(), reason)

    def get_deployment(self, name: str, revision: int | None = None) -> DeploymentRevision:
        """A deployment's live revision (or a given one)."""
        return self._backend.get_deployment(name, revision)

    def list_deployments(self) -> list[DeploymentRevision]:
        """The live revision of every deployment."""
        return self._backend.list_deployments()

    def deployment_history(self, name: str) -> list[DeploymentRevision]:
        """Every revision of a deployment, oldest first (each one audited)."""
        return self._backend.deployment_history(name)

    def rollback_deployment(
        self, name: str, to_revision: int | None = None, reason: str = ""
    ) -> DeploymentRevision:
        """Make the previous (or a given) revision live again, as a new revision."""
        return self._backend.rollback_deployment(name, to_revision, reason)
