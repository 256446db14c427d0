"""``/api/v1/gc`` and ``/health``."""

from __future__ import annotations

from fastapi import APIRouter

from modelloop import __version__
from modelloop.server.deps import BackendDep
from modelloop.server.errors import ERROR_RESPONSES
from modelloop.server.schemas import GcReportModel, GcRequest, Health

__all__ = ["health_router", "router"]

router = APIRouter(tags=["maintenance"], responses=ERROR_RESPONSES)
health_router = APIRouter(tags=["maintenance"])


@router.post("/gc", operation_id="gc")
def gc(body: GcRequest, backend: BackendDep) -> GcReportModel:
    """Find (and unless ``dry_run`` remove) artifact blobs no live record refers to."""
    report = backend.gc(dry_run=body.dry_run, grace_seconds=body.grace_seconds)
    return GcReportModel.from_entity(report)


@health_router.get("/health", operation_id="health")
async def health() -> Health:
    """Liveness: the server process answers."""
    return Health(status="ok", version=__version__)
