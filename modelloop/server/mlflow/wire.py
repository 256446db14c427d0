"""Reading MLflow requests: proto3 JSON bodies and query strings into typed messages.

MLflow's server parses a POST body as proto3 JSON (int64 as a number or a decimal
string, doubles as numbers or ``"NaN"``/``"Infinity"``, unknown fields ignored) and
a GET request's query string field by field (repeated fields from repeated keys).
These messages do the same, strictly typed otherwise: a number where a string is
expected, a fraction where an integer is, or an int64 overflow is a 400
``INVALID_PARAMETER_VALUE`` naming the field, never a 500.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, TypeVar, get_origin

import orjson
from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, PlainValidator, StrictStr, ValidationError

from modelloop.entities import ViewType
from modelloop.server.mlflow.errors import RESOURCE_DOES_NOT_EXIST, MlflowError

__all__ = [
    "MAX_BODY_BYTES",
    "Double",
    "Int64",
    "Message",
    "Required",
    "RunMessage",
    "TagMessage",
    "ViewTypeField",
    "message",
    "ok",
    "decode_json",
    "parse_message",
    "read_body",
    "required_run_id",
]

M = TypeVar("M", bound="Message")

#: A JSON request body larger than this is refused (MLflow's own limit is 1 MB for
#: log-batch; artifact uploads are streamed and not bound by it).
MAX_BODY_BYTES = 16 * 1024 * 1024

_INT_RE = re.compile(r"[+-]?\d{1,30}")
_RUN_ID_RE = re.compile(r"[0-9a-f]{32}")


def _int64(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected an integer, got a boolean")
    integral = isinstance(value, float) and value.is_integer()
    if (
        isinstance(value, int)
        or integral
        or (isinstance(value, str) and _INT_RE.fullmatch(value.strip()))
    ):
        number = int(value)
    else:
        raise ValueError(f"expected an integer, got {type(value).__name__}")
    if not -(2**63) <= number < 2**63:
        raise ValueError("the integer does not fit in 64 bits")
    return number


def _double(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected a number, got {type(value).__name__}")
    try:
        return float(value)  # "NaN", "Infinity", "-Infinity" and numeric strings too
    except (ValueError, OverflowError):
        raise ValueError(f"expected a number, got {value!r:.40}") from None


_VIEW_TYPES = {
    "ACTIVE_ONLY": ViewType.ACTIVE_ONLY,
    "DELETED_ONLY": ViewType.DELETED_ONLY,
    "ALL": ViewType.ALL,
    1: ViewType.ACTIVE_ONLY,
    2: ViewType.DELETED_ONLY,
    3: ViewType.ALL,
}


def _view_type(value: Any) -> ViewType:
    key = value if isinstance(value, str) else value if type(value) is int else None
    if isinstance(key, str) and key.isdigit():
        key = int(key)
    if key is None or key not in _VIEW_TYPES:
        raise ValueError("expected ACTIVE_ONLY, DELETED_ONLY or ALL")
    return _VIEW_TYPES[key]


Required = Annotated[StrictStr, Field(min_length=1)]
"""A required string: MLflow treats an empty string as missing."""
Int64 = Annotated[int, PlainValidator(_int64)]
"""An int64: a JSON number or a decimal string."""
Double = Annotated[float, PlainValidator(_double)]
"""A double: a JSON number, a numeric string, or ``"NaN"``/``"Infinity"``/``"-Infinity"``."""
ViewTypeField = Annotated[ViewType, PlainValidator(_view_type)]
"""MLflow's ViewType enum, by name or number."""


class Message(BaseModel):
    """A request message; unknown fields are ignored, as MLflow's proto parser does."""

    model_config = ConfigDict(extra="ignore")


class TagMessage(Message):
    """A key/value pair (tags and params)."""

    key: StrictStr
    value: StrictStr = ""


class RunMessage(Message):
    """A request naming a run by ``run_id`` or its legacy alias ``run_uuid``."""

    run_id: StrictStr | None = None
    run_uuid: StrictStr | None = None

    def required_run_id(self) -> str:
        """The run id; 400 when missing or when both aliases disagree, and 404 (as MLflow,
        for which any string may name a run) when it cannot be a run id at all."""
        return required_run_id(self.run_id, self.run_uuid)


def required_run_id(run_id: str | None, run_uuid: str | None) -> str:
    """:meth:`RunMessage.required_run_id` of a request's ``run_id`` and ``run_uuid``."""
    if run_id and run_uuid and run_id != run_uuid:
        raise MlflowError("'run_id' and 'run_uuid' name different runs")
    found = run_id or run_uuid
    if not found:
        raise MlflowError("Missing value for required parameter 'run_id'.")
    if not _RUN_ID_RE.fullmatch(found):
        raise MlflowError(f"Run '{found:.100}' not found", RESOURCE_DOES_NOT_EXIST, 404)
    return found


def _describe(err: Any) -> str:
    field = ""
    for part in err.get("loc", ()):
        field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
    if err.get("type") == "missing" or (
        err.get("type") == "string_too_short" and not err.get("input")
    ):
        return f"Missing value for required parameter '{field}'."
    shown = json.dumps(err.get("input"), default=str)[:100]
    return f"Invalid value {shown} for parameter '{field}' supplied: {err.get('msg')}"


def _has_nul(data: Any) -> bool:
    if isinstance(data, str):
        return "\x00" in data
    if isinstance(data, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in data.items())
    if isinstance(data, list):
        return any(_has_nul(v) for v in data)
    return False


def parse_message(model: type[M], data: Any) -> M:
    """Validate ``data`` (a decoded JSON object) as ``model``; 400 naming the fields."""
    if not isinstance(data, dict):
        raise MlflowError(f"The request body must be a JSON object, got {type(data).__name__}")
    if _has_nul(data):  # PostgreSQL cannot store NUL characters in text
        raise MlflowError("NUL characters (\\u0000) are not allowed in request fields")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        text = " ".join(_describe(e) for e in errors[:5])
        more = f" (and {len(errors) - 5} more errors)" if len(errors) > 5 else ""
        raise MlflowError(text + more) from None


def _repeated(model: type[Message]) -> set[str]:
    out = set()
    for name, field in model.model_fields.items():
        if get_origin(field.annotation) is list:
            out.add(name)
    return out


async def read_body(request: Request) -> bytes:
    """The request body; 400 past :data:`MAX_BODY_BYTES`."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise MlflowError(f"The request body exceeds {MAX_BODY_BYTES} bytes")
    return bytes(body)


def decode_json(body: bytes, content_type: str) -> Any:
    """A request body as JSON (``{}`` when empty); 400 when it is not JSON."""
    if not body.strip():
        return {}
    if content_type and "json" not in content_type.lower():
        raise MlflowError(
            f"Bad Request. Content-Type must be 'application/json', not {content_type!r}"
        )
    try:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            # What orjson refuses and the standard parser may still accept (NaN
            # literals, integers beyond 64 bits, lone surrogates, a BOM): parsed, or
            # refused with its message, exactly as before.
            data = json.loads(body)
        if isinstance(data, str):  # old clients double-encode their JSON
            data = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise MlflowError(f"Malformed JSON in the request body: {exc}"[:300]) from None
    return data


async def _read_json(request: Request) -> Any:
    return decode_json(await read_body(request), request.headers.get("content-type", ""))


async def read_message(request: Request, model: type[M]) -> M:
    """The request's message: from the query string of a GET (when it has one), else
    from the JSON body."""
    if request.method == "GET" and request.query_params:
        repeated = _repeated(model)
        data: dict[str, Any] = {}
        for key in request.query_params:
            values = request.query_params.getlist(key)
            data[key] = values if key in repeated else values[-1]
        return parse_message(model, data)
    return parse_message(model, await _read_json(request))


def message(model: type[M]) -> Any:
    """A FastAPI dependency reading the request as ``model``: a route declares
    ``body: Annotated[Model, message(Model)]`` and can stay synchronous (run in the
    thread pool) while the body is read on the event loop."""

    async def read(request: Request) -> M:
        return await read_message(request, model)

    return Depends(read)


def ok(payload: dict[str, Any] | None = None) -> JSONResponse:
    """A 200 response with ``payload`` (``{}`` by default), as MLflow answers."""
    return JSONResponse(payload or {})
