"""The MLflow-compatible REST API: the stock ``mlflow`` client works against
``modelloop server`` with ``MLFLOW_TRACKING_URI=http://host:port``.

One module per resource, each a router of :class:`~modelloop.server.mlflow.errors.MlflowRoute`
routes (errors in MLflow's shape):

- ``experiments``, ``runs``, ``metrics``, ``artifacts`` (``artifacts/list``) under
  ``/api/2.0/mlflow`` (the tracking service);
- ``artifacts.proxy_router`` under ``/api/2.0/mlflow-artifacts`` (the artifact proxy
  behind ``mlflow-artifacts:`` URIs);
- ``server-info`` under ``/api/3.0/mlflow``;
- ``logged_models``: MLflow 3's logged models (``logged-models/*``, and ``runs/outputs``);
  their files are artifacts of their source run, reached through the proxy's
  ``<exp>/models/<model_id>/artifacts`` paths;
- ``registry_models`` and ``registry_versions``: the model registry
  (``registered-models/*``, ``model-versions/*``) over modelloop's registry, sharing
  :mod:`.registry` (shapes, source resolution) and :mod:`.search_filter`.

The calls a client makes for every run (``runs/create``, ``log-batch``, ``get``,
``update``, ``search``) are answered first by :class:`~.lean.LeanRoute`, with the
same behaviour at a fraction of the cost.

Each is also served under ``/ajax-api/...``, the prefix MLflow's web UI uses. These
routes are not in the native API's OpenAPI schema: MLflow's documentation describes them.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse

from modelloop.server.auth import include_router
from modelloop.server.mlflow import (
    artifacts,
    experiments,
    logged_models,
    metrics,
    registry_models,
    registry_versions,
    runs,
)
from modelloop.server.mlflow.errors import MlflowRoute, install_endpoint_errors
from modelloop.server.mlflow.lean import LeanRoute
from modelloop.server.mlflow.wire import ok

__all__ = ["TRACKING_ROUTERS", "install_mlflow_api"]

#: The routers of MLflow's tracking service, mounted at ``/api/2.0/mlflow``.
TRACKING_ROUTERS = (
    experiments.router,
    runs.router,
    metrics.router,
    artifacts.router,
    logged_models.router,
    logged_models.outputs_router,
    registry_models.router,
    registry_versions.router,
)

_v3 = APIRouter(route_class=MlflowRoute)


@_v3.get("/server-info")
def server_info() -> JSONResponse:
    """What MLflow 3 clients probe: no multipart or presigned artifact transfers, no
    workspaces (so the client streams artifacts through the proxy)."""
    return ok(
        {
            "store_type": "SqlStore",
            "workspaces_enabled": False,
            "trace_archival_enabled": False,
            "multipart_uploads_enabled": False,
            "multipart_downloads_enabled": False,
            "presigned_upload_run_id_supported": False,
            "presigned_upload_model_id_supported": False,
            "features_enabled": {"gateway": False},
        }
    )


def install_mlflow_api(app: FastAPI) -> None:
    """Serve the MLflow-compatible API on ``app`` (after the native error handlers)."""
    for base in ("/api", "/ajax-api"):
        for router in TRACKING_ROUTERS:
            include_router(app, router, prefix=f"{base}/2.0/mlflow", include_in_schema=False)
        include_router(
            app,
            artifacts.proxy_router,
            prefix=f"{base}/2.0/mlflow-artifacts",
            include_in_schema=False,
        )
        include_router(app, _v3, prefix=f"{base}/3.0/mlflow", include_in_schema=False)
    # First in line: the calls made for every run skip the scan of every router
    # (their FastAPI routes stay, for everything the lean route does not match).
    app.router.routes.insert(0, LeanRoute())
    install_endpoint_errors(app)
