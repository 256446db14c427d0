"""Errors of the inference server and how they become HTTP responses.

The Open Inference Protocol answers ``{"error": "..."}``; MLflow's scoring protocol
answers ``{"error_code": ..., "message": ...}``. Both are built here so the routes
only raise.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

__all__ = [
    "BadRequest",
    "ModelFailed",
    "ModelNotServed",
    "ServingError",
    "mlflow_error_response",
    "oip_error_response",
    "route_error",
]


class ServingError(Exception):
    """An error with the HTTP status the inference server answers with."""

    status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(ServingError):
    """The request is malformed: unparsable body, missing input, wrong shape or datatype."""

    status = 400


class ModelNotServed(ServingError):
    """No served model (or version) has the requested name."""

    status = 404


class ModelFailed(ServingError):
    """The model itself raised while predicting (the server keeps serving)."""

    status = 500


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response serialised with orjson (numpy arrays included)."""
    return Response(
        orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        headers=headers,
        media_type="application/json",
    )


def oip_error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    """The Open Inference Protocol's error body: ``{"error": message}``."""
    return json_response({"error": message}, status, headers)


def mlflow_error_response(
    status: int, error_code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    """MLflow's scoring-server error body: ``{"error_code": ..., "message": ...}``."""
    return json_response({"error_code": error_code, "message": message}, status, headers)


async def route_error(request: Request, exc: Exception) -> Response:
    """Starlette's handler for unknown paths (404) and methods (405): JSON like every
    other error of the server, not Starlette's plain text."""
    status = getattr(exc, "status_code", 404)
    return oip_error_response(status, f"{request.method} {request.url.path}: {exc}")
