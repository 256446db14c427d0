"""Authentication and authorisation of every request, in one middleware.

With no users in the store the server runs as the local default: it listens on
loopback only (``modelloop server`` refuses another ``--host`` without ``--insecure``)
and every caller is an admin named ``"local"``. Once a user exists, every request
except ``GET /health`` must authenticate, with HTTP Basic (a user's password, or an
API token as the password: what MLflow's client sends for
``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD``) or
``Authorization: Bearer <token>`` (``MLFLOW_TRACKING_TOKEN``, modelloop's
``http_token``). A missing or bad credential is 401 with ``WWW-Authenticate: Basic``;
a role too low for the route is 403. Both answer ``{"error_code", "message"}``,
which is the shape of the native API and of MLflow's alike.

What a route needs is decided by :func:`required_role` alone, from the route's
method and path template: reads need a viewer, writes an editor, gc and user
management an admin.

The caller's name is put in :data:`modelloop.store.audit.ACTOR` for the request, so
the backend records it in the audit log inside the transaction of the change.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import logging
import re
from collections.abc import Iterable
from functools import partial
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.responses import JSONResponse
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from modelloop import accounts
from modelloop.accounts import Identity, Role
from modelloop.backends.local_artifacts import LocalStoreBase
from modelloop.errors import ModelloopError
from modelloop.store.audit import ACTOR

__all__ = [
    "ADMIN_ROUTES",
    "LOCAL_ACTOR",
    "PUBLIC_ROUTES",
    "READ_POSTS",
    "AuthMiddleware",
    "RouteEntry",
    "add_route",
    "app_path",
    "include_router",
    "required_role",
    "route_table",
]

logger = logging.getLogger("modelloop.server")

#: The actor recorded when the server has no users (auth off, loopback only).
LOCAL_ACTOR = "local"

#: (method, path template) anyone may call.
PUBLIC_ROUTES = frozenset({("GET", "/health")})
#: (method, path template) that need an admin: gc and user management.
ADMIN_ROUTES = frozenset(
    {
        ("POST", "/api/v1/gc"),
        ("GET", "/api/v1/users"),
        ("POST", "/api/v1/users"),
        ("DELETE", "/api/v1/users/{name}"),
        ("POST", "/api/v1/users/{name}/tokens"),
        ("GET", "/api/v1/tokens"),
        ("POST", "/api/v1/tokens/{token_id}/revoke"),
    }
)
#: POST routes that only read (searches with a JSON body). MLflow paths are listed
#: under ``/api``; their ``/ajax-api`` twins follow.
READ_POSTS = frozenset(
    {
        ("POST", "/api/v1/runs/search"),
        ("POST", "/api/2.0/mlflow/runs/search"),
        ("POST", "/api/2.0/mlflow/experiments/search"),
        ("POST", "/api/2.0/mlflow/logged-models/search"),
    }
)
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_LOCAL_ADMIN = Identity(LOCAL_ACTOR, Role.ADMIN)
_CACHE_LIMIT = 1024


def required_role(method: str, path: str) -> Role | None:
    """The least role that may call ``method path`` (a route's path template); None
    for a public route. The one place routes are classified."""
    if path.startswith("/ajax-api/"):
        path = "/api/" + path[len("/ajax-api/") :]
    method = method.upper()
    key = ("GET" if method == "HEAD" else method, path)  # HEAD is a GET without a body
    if key in PUBLIC_ROUTES:
        return None
    if key in ADMIN_ROUTES:
        return Role.ADMIN
    if key[0] in _READ_METHODS or key in READ_POSTS:
        return Role.VIEWER
    return Role.EDITOR


@dataclasses.dataclass(frozen=True)
class RouteEntry:
    """One (method, path template) the app serves, and what it needs."""

    method: str
    path: str
    regex: re.Pattern[str]

    @property
    def role(self) -> Role | None:
        """:func:`required_role` of this route."""
        return required_role(self.method, self.path)


def include_router(app: FastAPI, router: APIRouter, prefix: str = "", **kwargs: Any) -> None:
    """``app.include_router`` that also records the routes in the app's route table
    (:func:`route_table`), which the middleware matches requests against."""
    app.include_router(router, prefix=prefix, **kwargs)
    for route in router.routes:
        if isinstance(route, APIRoute):
            add_route(app, prefix + route.path, route.methods or ())


def add_route(app: FastAPI, path: str, methods: Iterable[str]) -> None:
    """Record a route served outside :func:`include_router` (``/openapi.json``)."""
    table = route_table(app)
    regex = compile_path(path)[0]
    for method in sorted(methods):
        table.append(RouteEntry(method.upper(), path, regex))
    if "GET" in methods and "HEAD" not in methods:
        table.append(RouteEntry("HEAD", path, regex))


def route_table(app: FastAPI) -> list[RouteEntry]:
    """Every (method, path template) the app serves."""
    table: list[RouteEntry] | None = getattr(app.state, "auth_routes", None)
    if table is None:
        table = app.state.auth_routes = []
    return table


def app_path(scope: Scope) -> str:
    """The request's path as the app's routes see it: without the ``root_path`` the
    app is mounted under (behind a proxy, or a test server serving many apps)."""
    path: str = scope["path"]
    root = str(scope.get("root_path", ""))
    if root and path.startswith(root):
        path = path[len(root) :]
    return path


def _template_for(table: list[RouteEntry], method: str, path: str) -> str:
    """The template of the first route of ``table`` serving ``method path`` (else of the
    last route matching the path, else the path itself): the routers' own order."""
    fallback = path
    for entry in table:
        if entry.regex.match(path):
            if entry.method == method:
                return entry.path
            fallback = entry.path
    return fallback


def _error(status: int, code: str, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Basic realm="modelloop"'} if status == 401 else None
    return JSONResponse({"error_code": code, "message": message}, status, headers=headers)


class AuthMiddleware:
    """Authenticates each HTTP request, checks its role, and sets the audit actor."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # (user, sha256(password)) -> the stored hash it was verified against: a client
        # sending Basic on every request pays the KDF once, and a changed or deleted
        # user is looked up afresh each time. Per app instance, never module-global.
        self._verified: dict[tuple[str, str], str] = {}
        # (method, path) -> route template, for the route table of the given length:
        # a client calls the same few paths over and over; scanning every route's
        # regex for each request is what this saves. Bounded, cleared when full.
        self._templates: dict[tuple[str, str], str] = {}
        self._templates_for = 0

    def _template(self, scope: Scope) -> str:
        table = route_table(scope["app"])
        if len(table) != self._templates_for or len(self._templates) > _CACHE_LIMIT:
            self._templates.clear()
            self._templates_for = len(table)
        key = (scope["method"], app_path(scope))
        template = self._templates.get(key)
        if template is None:
            template = self._templates[key] = _template_for(table, *key)
        return template

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        needed = required_role(method, self._template(scope))
        if needed is None:
            # Public (the health check): answers without touching the store.
            await self.app(scope, receive, send)
            return
        backend = scope["app"].state.backend
        if isinstance(backend, LocalStoreBase) and accounts.has_users_now(backend.db) is False:
            # Auth is off (no users), told without a thread hop or a pooled connection.
            identity: Identity | None = _LOCAL_ADMIN
        else:
            try:
                identity = await anyio.to_thread.run_sync(partial(self._identify, backend, scope))
            except ModelloopError as exc:
                await JSONResponse(exc.to_dict(), exc.http_status)(scope, receive, send)
                return
        if identity is None:
            response = _error(
                401,
                "UNAUTHENTICATED",
                "authentication required: send HTTP Basic credentials or an API token "
                "(Authorization: Bearer ...)",
            )
            await response(scope, receive, send)
            return
        if identity.role < needed:
            response = _error(
                403,
                "PERMISSION_DENIED",
                f"user {identity.name!r} ({identity.role.label}) may not {method} "
                f"{scope['path']}: it needs the {needed.label} role",
            )
            await response(scope, receive, send)
            return
        token = ACTOR.set(identity.name)
        try:
            await self.app(scope, receive, send)
        finally:
            ACTOR.reset(token)

    def _identify(self, backend: object, scope: Scope) -> Identity | None:
        """The caller: the local admin when auth is off, None when credentials are
        missing or wrong."""
        if not isinstance(backend, LocalStoreBase) or not accounts.has_users(backend.db):
            return _LOCAL_ADMIN
        header = ""
        for name, value in scope["headers"]:
            if name == b"authorization":
                header = value.decode("latin-1")
                break
        scheme, _, credentials = header.partition(" ")
        credentials = credentials.strip()
        if scheme.lower() == "bearer" and credentials:
            return accounts.authenticate_token(backend.db, credentials)
        if scheme.lower() != "basic" or not credentials:
            return None
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, sep, password = decoded.partition(":")
        if not sep:
            return None
        if len(self._verified) > _CACHE_LIMIT:
            self._verified.clear()
        identity = accounts.authenticate_password(backend.db, user, password, self._verified)
        if identity is None and password.startswith(accounts.TOKEN_PREFIX):
            # MLflow's client can only send a token as a Basic password.
            identity = accounts.authenticate_token(backend.db, password)
        return identity
