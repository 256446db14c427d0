"""MLflow's error shape, and the one place modelloop's typed errors become MLflow's codes.

Every error answered under the MLflow-compatible prefixes is
``{"error_code": "<MLflow ErrorCode name>", "message": "..."}`` with the HTTP
status MLflow uses for that code (``mlflow/exceptions.py``). The stock client
turns the body back into an ``MlflowException`` carrying the same code, and
retries 429/5xx, so a client error must never be answered as a 5xx.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from modelloop.errors import (
    AlreadyExists,
    Conflict,
    DataCorrupted,
    InvalidArgument,
    InvalidState,
    ModelloopError,
    NotFound,
    PermissionDenied,
    SchemaOutdated,
    StoreUnavailable,
    Unauthenticated,
)

__all__ = [
    "MLFLOW_PREFIXES",
    "MlflowError",
    "MlflowRoute",
    "install_endpoint_errors",
    "mlflow_error_for",
]

logger = logging.getLogger("modelloop.server")

#: Path prefixes (after the app's root path) answered in MLflow's error shape.
MLFLOW_PREFIXES = (
    "/api/2.0/mlflow/",
    "/api/2.0/mlflow-artifacts/",
    "/api/3.0/mlflow/",
    "/ajax-api/2.0/mlflow/",
    "/ajax-api/2.0/mlflow-artifacts/",
    "/ajax-api/3.0/mlflow/",
)

INVALID_PARAMETER_VALUE = "INVALID_PARAMETER_VALUE"
RESOURCE_DOES_NOT_EXIST = "RESOURCE_DOES_NOT_EXIST"

#: modelloop error class -> (MLflow error code, HTTP status). The most specific class
#: wins (classes are looked up along the exception's MRO).
_BY_CLASS: dict[type[ModelloopError], tuple[str, int]] = {
    NotFound: (RESOURCE_DOES_NOT_EXIST, 404),
    AlreadyExists: ("RESOURCE_ALREADY_EXISTS", 400),
    InvalidArgument: (INVALID_PARAMETER_VALUE, 400),
    # MLflow answers logging to a deleted run with 400 INVALID_PARAMETER_VALUE ("must be
    # in the 'active' state"); its own INVALID_STATE code would be a 500, which the
    # client retries for minutes.
    InvalidState: (INVALID_PARAMETER_VALUE, 400),
    # The only Conflicts are param changes: MLflow's "Changing param values is not allowed".
    Conflict: (INVALID_PARAMETER_VALUE, 400),
    Unauthenticated: ("UNAUTHENTICATED", 401),
    PermissionDenied: ("PERMISSION_DENIED", 403),
    SchemaOutdated: ("TEMPORARILY_UNAVAILABLE", 503),
    StoreUnavailable: ("TEMPORARILY_UNAVAILABLE", 503),
    DataCorrupted: ("DATA_LOSS", 500),
}


class MlflowError(Exception):
    """An error answered in MLflow's shape: an MLflow error code, an HTTP status, a message."""

    def __init__(self, message: str, code: str = INVALID_PARAMETER_VALUE, status: int = 400):
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status

    def response(self) -> JSONResponse:
        """The JSON response MLflow's server would send."""
        body = {"error_code": self.code, "message": self.message}
        return JSONResponse(body, status_code=self.status)


def mlflow_error_for(exc: ModelloopError) -> MlflowError:
    """The MLflow error for a modelloop error (``INTERNAL_ERROR``/500 for an unknown class)."""
    code, status = "INTERNAL_ERROR", 500
    for cls in type(exc).__mro__:
        if cls in _BY_CLASS:
            code, status = _BY_CLASS[cls]
            break
    message = exc.message
    if isinstance(exc, Conflict):
        message = f"Changing param values is not allowed. {message}"
    return MlflowError(message, code, status)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in list(exc.errors())[:5]:
        field = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query"))
        parts.append(f"{field or 'request'}: {err.get('msg', 'invalid')}")
    return "Invalid request: " + "; ".join(parts)


class MlflowRoute(APIRoute):
    """A route whose errors are answered in MLflow's shape (typed modelloop errors mapped
    by :func:`mlflow_error_for`, validation errors as 400 INVALID_PARAMETER_VALUE).
    Errors raised while a streamed response is under way are not seen here: they abort
    the connection, as on the native API."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except MlflowError as exc:
                return exc.response()
            except ModelloopError as exc:
                error = mlflow_error_for(exc)
                if error.status >= 500:
                    logger.error("%s %s failed: %s", request.method, request.url.path, exc)
                return error.response()
            except RequestValidationError as exc:
                return MlflowError(_validation_message(exc)).response()

        return handle


def _route_path(request: Request) -> str:
    path = request.url.path
    root = str(request.scope.get("root_path", ""))
    return path[len(root) :] if root and path.startswith(root) else path


def install_endpoint_errors(app: FastAPI) -> None:
    """Answer an unknown route or a wrong method under the MLflow prefixes in MLflow's
    shape (404 ``ENDPOINT_NOT_FOUND``), delegating every other path to the handler
    already installed (the native API's)."""
    native = app.exception_handlers[StarletteHTTPException]

    async def handle(request: Request, exc: Exception) -> Any:
        assert isinstance(exc, StarletteHTTPException)
        if not _route_path(request).startswith(MLFLOW_PREFIXES):
            response = native(request, exc)
            return await response if inspect.isawaitable(response) else response
        where = f"{request.method} {request.url.path}"
        if exc.status_code == 404:
            return MlflowError(f"No such endpoint: {where}", "ENDPOINT_NOT_FOUND", 404).response()
        if exc.status_code == 405:
            return MlflowError(f"Method not allowed: {where}", "BAD_REQUEST", 405).response()
        return MlflowError(str(exc.detail), "BAD_REQUEST", exc.status_code).response()

    app.add_exception_handler(StarletteHTTPException, handle)
