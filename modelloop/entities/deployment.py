"""A deployment revision: one numbered version of a deployment's routing spec."""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["DeploymentRevision"]


@dataclasses.dataclass(frozen=True, slots=True)
class DeploymentRevision:
    """Revision ``revision`` of deployment ``name``: its spec (routes, shadows, sticky
    key, batching and logging settings), who made it, when and why."""

    name: str
    revision: int
    spec: dict[str, Any]
    reason: str
    actor: str
    created_time: int
