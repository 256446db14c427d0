"""Errors become JSON, in one place.

Every error response has the body ``{"error_code": ..., "message": ..., "details": ...}``
(:class:`~modelloop.server.schemas.ErrorBody`), so a client can turn it back into
the typed exception (:func:`modelloop.errors.error_class_for_code`):

- a :class:`~modelloop.errors.ModelloopError` answers with its own status and code;
- a request that does not match the schema (bad JSON, a wrong type, a missing
  field) is 400 ``INVALID_ARGUMENT`` naming the field;
- an unknown route is 404 ``NOT_FOUND``, a wrong method 405, never an HTML page;
- anything else is a bug: 500 ``INTERNAL_ERROR``, logged with its traceback,
  which stays out of the response.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelloop.errors import ModelloopError
from modelloop.server.schemas import ErrorBody

__all__ = ["ERROR_RESPONSES", "install_error_handlers"]

logger = logging.getLogger("modelloop.server")

#: Status code -> error code for errors raised by the routing layer itself.
_HTTP_CODES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}
_MAX_LISTED_ERRORS = 10

#: The error responses every route documents in the OpenAPI schema.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Invalid argument or state"},
    401: {"model": ErrorBody, "description": "No valid credentials (once users exist)"},
    403: {"model": ErrorBody, "description": "The caller's role does not allow this"},
    404: {"model": ErrorBody, "description": "Not found"},
    409: {"model": ErrorBody, "description": "Already exists or conflicts"},
    500: {"model": ErrorBody, "description": "Internal error or corrupted data"},
    503: {"model": ErrorBody, "description": "Store unavailable or schema outdated"},
}


def _error_response(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"error_code": code, "message": message}
    if details:
        body["details"] = details
    return JSONResponse(body, status_code=status, headers=headers)


async def _modelloop_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ModelloopError)
    if exc.http_status >= 500:
        logger.error("%s %s failed: %s: %s", request.method, request.url.path, exc.code, exc)
    return JSONResponse(exc.to_dict(), status_code=exc.http_status)


def _field(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    content_type = request.headers.get("content-type", "")
    for err in errors:
        if err.get("type") == "json_invalid":
            reason = (err.get("ctx") or {}).get("error", "malformed JSON")
            return _error_response(
                400, "INVALID_ARGUMENT", f"the request body is not JSON: {reason}"
            )
        if tuple(err.get("loc", ())) == ("body",) and "json" not in content_type:
            # FastAPI parses a body as JSON only when the request says it is JSON.
            return _error_response(
                400,
                "INVALID_ARGUMENT",
                "the request body must be a JSON object sent with "
                f"Content-Type: application/json (got {content_type or 'no content type'!r})",
            )
    listed = [
        {
            "field": _field(err.get("loc", ())),
            "message": str(err.get("msg", "")),
            "type": err["type"],
        }
        for err in errors[:_MAX_LISTED_ERRORS]
    ]
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in listed)
    more = f" (and {len(errors) - len(listed)} more)" if len(errors) > len(listed) else ""
    return _error_response(
        400, "INVALID_ARGUMENT", f"invalid request: {summary}{more}", {"errors": listed}
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    if status == 404 and exc.detail == "Not Found":
        message = f"no such endpoint: {request.method} {request.url.path}"
    elif status == 405:
        message = f"method {request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    code = _HTTP_CODES.get(status, "INTERNAL_ERROR" if status >= 500 else "HTTP_ERROR")
    return _error_response(status, code, message, headers=dict(exc.headers or {}))


class _UnexpectedErrors:
    """Turns an exception no handler claimed into a 500 JSON response (logged, no traceback
    in the body). Once a response has started (a streamed download) nothing can be
    sent any more: the exception propagates and the server aborts the connection, so
    the client sees an incomplete body rather than a clean-looking end."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except ClientDisconnect:
            logger.info("%s %s: the client went away", scope["method"], scope["path"])
        except Exception:
            if started:
                raise
            logger.exception("%s %s: unexpected error", scope["method"], scope["path"])
            response = _error_response(
                500, "INTERNAL_ERROR", "internal server error (the server log has the details)"
            )
            await response(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    """Register the JSON error handlers on ``app``."""
    app.add_exception_handler(ModelloopError, _modelloop_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_middleware(_UnexpectedErrors)
