"""The deployments part of :class:`~modelloop.backends.LocalBackend`: numbered,
audited revisions of each deployment's routing spec."""

from __future__ import annotations

from typing import Any

from modelloop import validation as v
from modelloop.backends.local_artifacts import LocalStoreBase
from modelloop.entities import DeploymentRevision
from modelloop.errors import InvalidArgument
from modelloop.store import audit, deployments

__all__ = ["LocalDeployments"]


class LocalDeployments(LocalStoreBase):
    """Deployment revisions over the metadata store."""

    def put_deployment(
        self, name: str, spec: dict[str, Any], reason: str = ""
    ) -> DeploymentRevision:
        """Store a new revision of a deployment's spec (validated); it becomes live."""
        from modelloop.serving.deployment import DeploymentSpec

        v.check_name(name, "deployment name", 256)
        clean = DeploymentSpec.parse(spec).to_dict()
        why = v.check_text(reason, "reason")
        return self._write(
            lambda c: deployments.add_revision(c, name, clean, why, audit.current_actor()),
            "deployment.update",
            "deployment",
            name,
            {"reason": why, "models": [r["model"] for r in clean["routes"]]},
        )

    def get_deployment(self, name: str, revision: int | None = None) -> DeploymentRevision:
        """A deployment's live revision, or a given one."""
        number = None if revision is None else v.check_int("revision", revision)
        return self._read(lambda c: deployments.get(c, name, number))

    def list_deployments(self) -> list[DeploymentRevision]:
        """The live revision of every deployment."""
        return self._read(deployments.list_latest)

    def deployment_history(self, name: str) -> list[DeploymentRevision]:
        """Every revision of a deployment, oldest first."""
        return self._read(lambda c: deployments.history(c, name))

    def rollback_deployment(
        self, name: str, to_revision: int | None = None, reason: str = ""
    ) -> DeploymentRevision:
        """Make an earlier revision's spec live again, as a new revision (the previous
        one by default)."""
        why = v.check_text(reason, "reason")
        target = None if to_revision is None else v.check_int("revision", to_revision)

        def rollback(c: Any) -> DeploymentRevision:
            current = deployments.get(c, name)
            number = current.revision - 1 if target is None else target
            if number < 1:
                raise InvalidArgument(
                    f"deployment {name!r} has no earlier revision to roll back to"
                )
            if number >= current.revision:
                raise InvalidArgument(
                    f"revision {number} is not earlier than the live revision {current.revision}"
                )
            old = deployments.get(c, name, number)
            text = why or f"rollback to revision {number}"
            return deployments.add_revision(c, name, old.spec, text, audit.current_actor())

        return self._write(
            rollback, "deployment.rollback", "deployment", name, {"to": target, "reason": why}
        )
