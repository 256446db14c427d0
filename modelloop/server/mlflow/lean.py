"""A lean path for the MLflow calls a tracking client makes for every run.

``runs/create``, ``runs/log-batch``, ``runs/get``, ``runs/update`` and ``runs/search``
(under ``/api`` and ``/ajax-api``) are answered by one Starlette route placed ahead
of the app's routers, which skips FastAPI's route scan (over every native route),
its dependency solving and pydantic validation of well-formed requests.

Behaviour is the FastAPI routes' own, which stay registered (and answer ``HEAD``,
other methods, and whatever this module does not serve):

- the request still passes through every middleware, authentication and its audit
  actor included, because this is a route, not a middleware;
- a body is read, size-checked and decoded by the same functions
  (:func:`~modelloop.server.mlflow.wire.read_body`,
  :func:`~modelloop.server.mlflow.wire.decode_json`);
- a message is accepted here only when it is plainly well-formed (known fields only,
  exact JSON types, no NUL escape anywhere in the body): anything else goes through
  :func:`~modelloop.server.mlflow.wire.parse_message` and its model, which answer
  the very same error, or the same values;
- the work itself is the routes' functions in :mod:`.runs`, run in the thread pool
  as FastAPI runs a synchronous route, and errors are mapped as
  :class:`~modelloop.server.mlflow.errors.MlflowRoute` maps them.

Answers are encoded with orjson: compact JSON of the same values.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio.to_thread
import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Scope, Send

from modelloop.entities import Metric, Param, ViewType
from modelloop.errors import ModelloopError
from modelloop.server.auth import app_path
from modelloop.server.mlflow import runs
from modelloop.server.mlflow.deps import get_store
from modelloop.server.mlflow.errors import MlflowError, mlflow_error_for
from modelloop.server.mlflow.wire import (
    RunMessage,
    _view_type,
    decode_json,
    parse_message,
    read_body,
    read_message,
    required_run_id,
)

__all__ = ["LEAN_PATHS", "LeanRoute"]

logger = logging.getLogger("modelloop.server")

_Work = Callable[[], dict[str, Any]]
_Handler = Callable[[Request], Awaitable[_Work]]

_I64_MIN = -(2**63)
_I64_MAX = 2**63 - 1
_NUL_ESCAPE = b"\\u0000"


def _int64(value: Any) -> bool:
    return type(value) is int and _I64_MIN <= value <= _I64_MAX


def _opt_str(value: Any) -> bool:
    return value is None or type(value) is str


def _pairs(items: Any) -> list[tuple[str, str]] | None:
    """A list of ``{key, value}`` messages (tags, params), or None when not plainly so."""
    if type(items) is not list:
        return None
    out = []
    for item in items:
        if type(item) is not dict or not item.keys() <= _PAIR_FIELDS:
            return None
        key = item.get("key")
        value = item.get("value", "")
        if type(key) is not str or type(value) is not str:
            return None
        out.append((key, value))
    return out


_PAIR_FIELDS = frozenset({"key", "value"})
_METRIC_FIELDS = frozenset({"key", "value", "timestamp", "step"})
_CREATE_FIELDS = frozenset({"experiment_id", "user_id", "run_name", "start_time", "tags"})
_UPDATE_FIELDS = frozenset({"run_id", "run_uuid", "status", "end_time", "run_name"})
_BATCH_FIELDS = frozenset({"run_id", "run_uuid", "metrics", "params", "tags"})
_SEARCH_FIELDS = frozenset(
    {"experiment_ids", "filter", "run_view_type", "max_results", "order_by", "page_token"}
)


def _metrics(items: Any) -> list[Metric] | None:
    if type(items) is not list:
        return None
    out = []
    for item in items:
        if type(item) is not dict or not item.keys() <= _METRIC_FIELDS:
            return None
        key = item.get("key")
        value = item.get("value")
        timestamp: Any = item.get("timestamp")
        step = item.get("step", 0)
        if type(key) is not str or not key or not _int64(timestamp) or not _int64(step):
            return None
        if type(value) is int and _I64_MIN <= value <= _I64_MAX:
            value = float(value)
        elif type(value) is not float:
            return None
        out.append(Metric(key, value, timestamp, step))
    return out


async def _plain_body(request: Request) -> tuple[Any, bool]:
    """The decoded body, and whether the fast checks may read it (a JSON object with
    no NUL escape: the model's NUL check could not fail on it)."""
    body = await read_body(request)
    data = decode_json(body, request.headers.get("content-type", ""))
    plain = type(data) is dict and _NUL_ESCAPE not in body
    return data, plain


async def _create(request: Request) -> _Work:
    data, plain = await _plain_body(request)
    tags = _pairs(data.get("tags", [])) if plain and data.keys() <= _CREATE_FIELDS else None
    if (
        tags is not None
        and _opt_str(data.get("experiment_id"))
        and _opt_str(data.get("user_id"))
        and _opt_str(data.get("run_name"))
        and (data.get("start_time") is None or _int64(data.get("start_time")))
    ):
        experiment_id = data.get("experiment_id")
        user_id = data.get("user_id")
        run_name = data.get("run_name")
        start_time = data.get("start_time")
    else:
        msg = parse_message(runs.CreateRun, data)
        experiment_id, user_id, run_name = msg.experiment_id, msg.user_id, msg.run_name
        start_time = msg.start_time
        tags = [(t.key, t.value) for t in msg.tags]
    store = await get_store(request)
    tag_map = dict(tags)
    return lambda: runs.create_run(store, experiment_id, user_id, run_name, start_time, tag_map)


async def _log_batch(request: Request) -> _Work:
    data, plain = await _plain_body(request)
    fast = plain and data.keys() <= _BATCH_FIELDS
    metrics = _metrics(data.get("metrics", [])) if fast else None
    params = _pairs(data.get("params", [])) if metrics is not None else None
    tags = _pairs(data.get("tags", [])) if params is not None else None
    if tags is not None and _opt_str(data.get("run_id")) and _opt_str(data.get("run_uuid")):
        assert metrics is not None
        assert params is not None
        run_id, run_uuid = data.get("run_id"), data.get("run_uuid")
        param_list = [Param(k, v) for k, v in params]
    else:
        msg = parse_message(runs.LogBatch, data)
        run_id, run_uuid = msg.run_id, msg.run_uuid
        metrics = [Metric(m.key, m.value, m.timestamp, m.step) for m in msg.metrics]
        param_list = [Param(p.key, p.value) for p in msg.params]
        tags = [(t.key, t.value) for t in msg.tags]
    store = await get_store(request)
    batch_metrics, batch_tags = metrics, tags

    def work() -> dict[str, Any]:
        runs.check_batch(len(batch_metrics), param_list, len(batch_tags))
        target = required_run_id(run_id, run_uuid)
        runs.log_batch_data(store, target, batch_metrics, param_list, batch_tags)
        return {}

    return work


async def _update(request: Request) -> _Work:
    data, plain = await _plain_body(request)
    status = data.get("status") if plain else None
    if (
        plain
        and data.keys() <= _UPDATE_FIELDS
        and _opt_str(data.get("run_id"))
        and _opt_str(data.get("run_uuid"))
        and (status is None or type(status) is str or type(status) is int)
        and (data.get("end_time") is None or _int64(data.get("end_time")))
        and _opt_str(data.get("run_name"))
    ):
        run_id, run_uuid = data.get("run_id"), data.get("run_uuid")
        end_time, run_name = data.get("end_time"), data.get("run_name")
    else:
        msg = parse_message(runs.UpdateRun, data)
        run_id, run_uuid, status = msg.run_id, msg.run_uuid, msg.status
        end_time, run_name = msg.end_time, msg.run_name
    store = await get_store(request)

    def work() -> dict[str, Any]:
        target = required_run_id(run_id, run_uuid)
        return runs.update_run(store, target, status, end_time, run_name)

    return work


def _str_list(value: Any) -> bool:
    return type(value) is list and all(type(v) is str for v in value)


async def _search(request: Request) -> _Work:
    data, plain = await _plain_body(request)
    view: ViewType | None = None
    if plain and data.keys() <= _SEARCH_FIELDS:
        try:
            given = data.get("run_view_type")
            view = ViewType.ACTIVE_ONLY if "run_view_type" not in data else _view_type(given)
        except ValueError:
            view = None
    max_results = data.get("max_results", 1000) if view is not None else None
    if (
        view is not None
        and _int64(max_results)
        and _str_list(data.get("experiment_ids", []))
        and _str_list(data.get("order_by", []))
        and _opt_str(data.get("filter"))
        and _opt_str(data.get("page_token"))
    ):
        ids, order_by = data.get("experiment_ids", []), data.get("order_by", [])
        filter_string, page_token = data.get("filter"), data.get("page_token")
    else:
        msg = parse_message(runs.SearchRuns, data)
        ids, order_by, filter_string = msg.experiment_ids, msg.order_by, msg.filter
        page_token, view, max_results = msg.page_token, msg.run_view_type, msg.max_results
    store = await get_store(request)
    assert view is not None
    assert type(max_results) is int
    view_type, limit = view, max_results
    return lambda: runs.search_runs(
        store, ids, filter_string, view_type, limit, order_by, page_token
    )


async def _get(request: Request) -> _Work:
    msg = await read_message(request, RunMessage)  # GET: a short query string
    store = await get_store(request)
    return lambda: {"run": runs.full_run(store, msg.required_run_id())}


#: Path (after the prefix) and method of each call served here.
_HANDLERS: dict[tuple[str, str], _Handler] = {
    ("POST", "runs/create"): _create,
    ("POST", "runs/log-batch"): _log_batch,
    ("POST", "runs/update"): _update,
    ("POST", "runs/search"): _search,
    ("GET", "runs/get"): _get,
}
_PREFIXES = ("/api/2.0/mlflow/", "/ajax-api/2.0/mlflow/")
#: (method, path) of every call served on the lean path.
LEAN_PATHS = frozenset(
    (method, prefix + path) for prefix in _PREFIXES for method, path in _HANDLERS
)


def _response(payload: dict[str, Any]) -> Response:
    try:
        content = orjson.dumps(payload)
    except TypeError:  # what orjson cannot encode goes the standard way (and fails the same)
        return JSONResponse(payload)
    return Response(content, media_type="application/json")


class LeanRoute(BaseRoute):
    """One route serving every call of :data:`LEAN_PATHS` (exact method and path);
    anything else is not matched and goes on to the app's routers."""

    def __init__(self) -> None:
        self._handlers = {
            (method, prefix + path): handler
            for prefix in _PREFIXES
            for (method, path), handler in _HANDLERS.items()
        }

    def _handler(self, scope: Scope) -> _Handler | None:
        if scope["type"] != "http":
            return None
        return self._handlers.get((scope["method"], app_path(scope)))

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """A full match for a lean call, no match otherwise."""
        return (Match.NONE, {}) if self._handler(scope) is None else (Match.FULL, {})

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        """No named routes here."""
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer the call, errors in MLflow's shape."""
        handler = self._handler(scope)
        assert handler is not None
        request = Request(scope, receive, send)
        response: Response
        try:
            work = await handler(request)
            response = _response(await anyio.to_thread.run_sync(work))
        except MlflowError as exc:
            response = exc.response()
        except ModelloopError as exc:
            error = mlflow_error_for(exc)
            if error.status >= 500:
                logger.error("%s %s failed: %s", request.method, request.url.path, exc)
            response = error.response()
        await response(scope, receive, send)
