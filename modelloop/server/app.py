"""The app factory: ``create_app(settings)`` builds one server over one backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from modelloop import __version__
from modelloop.backends.base import Backend
from modelloop.backends.factory import open_backend
from modelloop.gc_tuning import tune_gc_for_server
from modelloop.server.auth import AuthMiddleware, add_route, include_router
from modelloop.server.errors import install_error_handlers
from modelloop.server.mlflow import install_mlflow_api
from modelloop.server.routes import (
    artifacts,
    deployments,
    experiments,
    maintenance,
    monitor_metrics,
    monitors,
    registry,
    runs,
    users,
)
from modelloop.settings import Settings, load_settings

__all__ = ["API_PREFIX", "create_app", "create_app_from_environment"]

API_PREFIX = "/api/v1"


def create_app(settings: Settings, backend: Backend | None = None) -> FastAPI:
    """A FastAPI app serving the native REST API under ``/api/v1``, ``GET /health``, and
    MLflow's REST API under ``/api/2.0/mlflow...`` (:mod:`modelloop.server.mlflow`).

    Without ``backend`` the app opens the store named by ``settings`` now (so a
    missing or outdated database fails at startup) and closes it at shutdown; a
    given ``backend`` stays the caller's to close. Each app has its own backend on
    ``app.state``: there is no module-level state. Every route goes through
    :class:`~modelloop.server.auth.AuthMiddleware` (auth is on once the store has users).
    """
    owned = backend is None
    store = open_backend(settings) if backend is None else backend

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if owned:
                store.close()

    app = FastAPI(
        title="modelloop",
        version=__version__,
        summary="Tracking server: experiments, runs, metrics, artifacts.",
        lifespan=lifespan,
        redirect_slashes=False,  # an API answers the URL it was given, never a redirect
        # Swagger UI and ReDoc load from a CDN; the UI must work offline. The schema
        # itself is served at /openapi.json.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.backend = store
    # Added first, so the error middleware wraps it: a store failure while
    # authenticating is still a JSON error.
    app.add_middleware(AuthMiddleware)
    install_error_handlers(app)
    for module in (
        experiments,
        runs,
        artifacts,
        maintenance,
        users,
        registry,
        deployments,
        monitors,
    ):
        include_router(app, module.router, prefix=API_PREFIX)
    include_router(app, registry.versions_router, prefix=API_PREFIX)
    include_router(app, registry.datasets_router, prefix=API_PREFIX)
    include_router(app, maintenance.health_router)
    include_router(app, monitor_metrics.router)
    add_route(app, "/openapi.json", {"GET"})
    install_mlflow_api(app)
    return app


def create_app_from_environment() -> FastAPI:
    """``create_app(load_settings())``: the factory uvicorn's worker processes import
    by name when ``modelloop server --workers N`` runs several of them (each worker
    process is the server's own, so its collector is tuned as a server's)."""
    app = create_app(load_settings())
    tune_gc_for_server()
    return app
