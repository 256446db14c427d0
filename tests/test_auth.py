"""Authentication and authorisation: the role matrix over every route, credentials
(Basic, Bearer, tokens as Basic passwords, bad and revoked ones), the stock MLflow
client against an auth-enabled server, and the secrets never stored in clear.

The servers are the session's real uvicorn (``live_server`` in conftest.py), each
test app over its own store.
"""

from __future__ import annotations

import dataclasses
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import mlflow
import mlflow.tracking._tracking_service.utils as mlflow_uri_state
import mlflow.tracking.fluent as mlflow_fluent
import pytest
from mlflow.exceptions import MlflowException

from modelloop import accounts
from modelloop.accounts import Role
from modelloop.backends import open_backend
from modelloop.backends.factory import DB_FILE_NAME
from modelloop.errors import Unauthenticated
from modelloop.server import create_app
from modelloop.server.auth import ADMIN_ROUTES, READ_POSTS, RouteEntry, required_role, route_table
from modelloop.settings import Settings
from modelloop.store import Database

if TYPE_CHECKING:
    from conftest import LiveServer

PASSWORD = "correct horse battery"
USERS = {"vera": Role.VIEWER, "eddie": Role.EDITOR, "ada": Role.ADMIN}


def _settings(folder: Path) -> Settings:
    return Settings(tracking_uri=str(folder), capture_git=False, capture_environment=False)


def _database(folder: Path) -> Database:
    return Database(f"sqlite:///{folder / DB_FILE_NAME}")


def _add_users(folder: Path) -> None:
    db = _database(folder)
    try:
        for name, role in USERS.items():
            accounts.create_user(db, name, role.label, PASSWORD)
    finally:
        db.dispose()


@dataclasses.dataclass
class Secured:
    url: str
    app: Any
    folder: Path


@pytest.fixture(scope="module")
def secured(live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    """One auth-enabled server (users vera/viewer, eddie/editor, ada/admin) for the
    tests of this module that need no fresh store."""
    folder = tmp_path_factory.mktemp("secured") / "store"
    settings = _settings(folder)
    backend = open_backend(settings)
    _add_users(folder)
    app = create_app(settings, backend)
    try:
        with live_server.mount(app) as url:
            yield Secured(url, app, folder)
    finally:
        backend.close()


@pytest.fixture
def web(secured: Secured) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=secured.url) as c:
        yield c


# the classification --------------------------------------------------------------


def _served(app: Any) -> set[tuple[str, str]]:
    """(method, path) of every endpoint FastAPI serves, found through ``app.routes``
    (newer FastAPI keeps included routers as nodes: ``iter_route_contexts`` flattens)."""
    from fastapi import routing

    flatten = getattr(routing, "iter_route_contexts", None)
    items = list(flatten(app.routes)) if flatten else list(app.routes)
    out: set[tuple[str, str]] = set()
    for item in items:
        methods = getattr(getattr(item, "original_route", item), "methods", None) or set()
        out.update((m, str(item.path)) for m in methods)
    assert len(out) > 50, "the app's routes were not found"
    return out


def test_the_route_table_covers_every_route_the_app_serves(secured: Secured) -> None:
    app = secured.app
    table = {(e.method, e.path) for e in route_table(app)}
    assert _served(app) <= table
    assert ("POST", "/api/2.0/mlflow/runs/log-batch") in table
    assert ("PUT", "/ajax-api/2.0/mlflow-artifacts/artifacts/{path:path}") in table


def test_the_classification_table(secured: Secured) -> None:
    table = route_table(secured.app)
    roles = {(e.method, e.path): e.role for e in table}
    # Public: only the health check.
    assert {k for k, r in roles.items() if r is None} == {("GET", "/health"), ("HEAD", "/health")}
    # Admin: gc and user management (HEAD follows GET).
    admin = {k for k, r in roles.items() if r is Role.ADMIN and k[0] != "HEAD"}
    assert admin == set(ADMIN_ROUTES)
    assert ("POST", "/api/v1/gc") in admin
    assert required_role("HEAD", "/api/v1/users") is Role.ADMIN
    # Reads: every GET, plus exactly the search POSTs (both MLflow prefixes).
    read_posts = {k for k, r in roles.items() if r is Role.VIEWER and k[0] == "POST"}
    twins = {("POST", p.replace("/api/", "/ajax-api/", 1)) for _, p in READ_POSTS if "2.0" in p}
    assert read_posts == set(READ_POSTS) | twins
    for (method, path), role in roles.items():
        if method in ("GET", "HEAD") and path != "/health" and ("GET", path) not in admin:
            assert role is Role.VIEWER, (method, path)
        if method in ("PUT", "PATCH", "DELETE") and (method, path) not in admin:
            assert role is Role.EDITOR, (method, path)
    assert required_role("POST", "/api/2.0/mlflow/runs/log-batch") is Role.EDITOR
    assert required_role("POST", "/ajax-api/2.0/mlflow/runs/search") is Role.VIEWER


# the role matrix -----------------------------------------------------------------


def _url(entry: RouteEntry) -> str:
    return re.sub(r"\{[^}]+\}", "x", entry.path)


def _basic(name: str) -> dict[str, str]:
    return {"Authorization": httpx.BasicAuth(name, PASSWORD)._auth_header}


IDENTITIES: dict[str, tuple[dict[str, str], Role | None]] = {
    "anonymous": ({}, None),
    "viewer": (_basic("vera"), Role.VIEWER),
    "editor": (_basic("eddie"), Role.EDITOR),
    "admin": (_basic("ada"), Role.ADMIN),
}


@pytest.mark.parametrize("who", list(IDENTITIES))
def test_role_matrix_over_every_route(secured: Secured, web: httpx.Client, who: str) -> None:
    headers, role = IDENTITIES[who]
    entries = route_table(secured.app)
    wrong: list[str] = []
    for entry in entries:
        r = web.request(entry.method, _url(entry), headers=headers, json={})
        needed = entry.role
        if needed is None or (role is not None and role >= needed):
            refused = r.status_code in (401, 403)
            expected = "allowed"
        elif role is None:
            refused = r.status_code != 401
            expected = "401"
        else:
            refused = r.status_code != 403
            expected = "403"
        if refused:
            wrong.append(f"{entry.method} {entry.path}: {r.status_code}, expected {expected}")
        if r.status_code in (401, 403) and entry.method != "HEAD":
            body = r.json()
            assert body["error_code"] in ("UNAUTHENTICATED", "PERMISSION_DENIED")
            if r.status_code == 401:
                assert r.headers["www-authenticate"].startswith("Basic")
    assert not wrong, "\n".join(wrong)


# credentials -----------------------------------------------------------------------


def _token(folder: Path, user: str) -> tuple[int, str]:
    db = _database(folder)
    try:
        return accounts.create_token(db, user, "ci")
    finally:
        db.dispose()


def test_health_is_public_and_everything_else_needs_credentials(web: httpx.Client) -> None:
    assert web.get("/health").status_code == 200
    for path in ("/api/v1/experiments", "/api/2.0/mlflow/experiments/get?experiment_id=0"):
        r = web.get(path)
        assert r.status_code == 401
        assert r.json()["error_code"] == "UNAUTHENTICATED"
        assert r.headers["www-authenticate"] == 'Basic realm="modelloop"'


@pytest.mark.parametrize(
    "header",
    [
        httpx.BasicAuth("vera", "wrong password")._auth_header,
        httpx.BasicAuth("nobody", PASSWORD)._auth_header,
        httpx.BasicAuth("vera", "")._auth_header,
        "Basic !!!not-base64",
        "Bearer mlp_unknown-token",
        "Bearer",
        "Digest whatever",
    ],
)
def test_bad_credentials_are_401(web: httpx.Client, header: str) -> None:
    r = web.get("/api/v1/experiments", headers={"Authorization": header})
    assert r.status_code == 401, r.text


def test_tokens_as_bearer_or_basic_password_and_revocation(
    secured: Secured, web: httpx.Client
) -> None:
    token_id, token = _token(secured.folder, "eddie")
    bearer = {"Authorization": f"Bearer {token}"}
    assert web.get("/api/v1/experiments", headers=bearer).status_code == 200
    as_password = {"Authorization": httpx.BasicAuth("eddie", token)._auth_header}
    r = web.post("/api/v1/experiments", headers=as_password, json={"name": "by-token"})
    assert r.status_code == 201, r.text
    db = _database(secured.folder)
    try:
        listed = {t.id: t for t in accounts.list_tokens(db, "eddie")}
        assert listed[token_id].last_used_time is not None
        accounts.revoke_token(db, token_id)
    finally:
        db.dispose()
    assert web.get("/api/v1/experiments", headers=bearer).status_code == 401
    assert web.get("/api/v1/experiments", headers=as_password).status_code == 401


def test_a_viewer_gets_403_in_each_familys_shape(web: httpx.Client) -> None:
    viewer = _basic("vera")
    native = web.post("/api/v1/experiments", headers=viewer, json={"name": "x"})
    assert native.status_code == 403
    assert native.json()["error_code"] == "PERMISSION_DENIED"
    assert "viewer" in native.json()["message"]
    ours = web.post("/api/2.0/mlflow/experiments/create", headers=viewer, json={"name": "x"})
    assert ours.status_code == 403
    assert ours.json()["error_code"] == "PERMISSION_DENIED"
    search = web.post("/api/2.0/mlflow/runs/search", headers=viewer, json={})
    assert search.status_code == 200, search.text


def test_the_modelloop_client_sends_its_token(secured: Secured) -> None:
    from modelloop.tracking.client import Client

    _, token = _token(secured.folder, "eddie")
    base = _settings(secured.folder).replace(tracking_uri=secured.url)
    anonymous = Client(settings=base)
    try:
        with pytest.raises(Unauthenticated, match="authentication required"):
            anonymous.list_experiments()
    finally:
        anonymous.close()
    client = Client(settings=base.replace(http_token=token))
    try:
        exp = client.create_experiment("with-token")
        assert client.get_experiment(exp).name == "with-token"
    finally:
        client.close()


def test_no_users_means_everyone_is_the_local_admin_until_one_is_created(
    live_server: LiveServer, tmp_path: Path
) -> None:
    folder = tmp_path / "store"
    settings = _settings(folder)
    with live_server.serving(settings) as url, httpx.Client(base_url=url) as web:
        assert web.post("/api/v1/gc", json={}).status_code == 200
        assert web.post("/api/v1/experiments", json={"name": "a"}).status_code == 201
        _add_users(folder)
        assert web.post("/api/v1/experiments", json={"name": "b"}).status_code == 401
        assert web.post("/api/v1/gc", json={}, headers=_basic("eddie")).status_code == 403
        assert web.post("/api/v1/gc", json={}, headers=_basic("ada")).status_code == 200


def test_passwords_and_tokens_are_never_stored_in_clear(secured: Secured) -> None:
    _, token = _token(secured.folder, "vera")
    path = secured.folder / DB_FILE_NAME
    with sqlite3.connect(path) as conn:
        dump = "\n".join(conn.iterdump())
    wal = path.with_name(path.name + "-wal")
    raw = path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    for secret in (token, PASSWORD):
        assert secret not in dump
        assert secret.encode() not in raw
    assert accounts.hash_token(token) in dump
    assert "scrypt$" in dump


def test_password_hashes_are_salted_and_verified_in_constant_time() -> None:
    a, b = accounts.hash_password("s3cret-pass"), accounts.hash_password("s3cret-pass")
    assert a != b
    assert accounts.verify_password("s3cret-pass", a)
    assert not accounts.verify_password("s3cret-pasS", a)
    assert not accounts.verify_password("s3cret-pass", "garbage")


# the stock MLflow client -------------------------------------------------------------


@pytest.fixture
def mlflow_at(secured: Secured, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setattr(mlflow_uri_state, "_tracking_uri", None)
    monkeypatch.setattr(mlflow_fluent, "_active_experiment_id", None)
    mlflow.set_tracking_uri(secured.url)
    try:
        yield secured.url
    finally:
        while mlflow.active_run() is not None:
            mlflow.end_run()


def test_mlflow_client_logs_with_basic_credentials(
    mlflow_at: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "eddie")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    client = mlflow.MlflowClient()
    exp_id = client.create_experiment("mlflow-auth")
    run = client.create_run(exp_id)
    client.log_metric(run.info.run_id, "acc", 0.9)
    client.log_param(run.info.run_id, "lr", "0.1")
    client.set_terminated(run.info.run_id)
    got = client.get_run(run.info.run_id)
    assert got.data.metrics == {"acc": 0.9}
    assert got.data.params == {"lr": "0.1"}


def test_mlflow_client_as_a_viewer_reads_but_cannot_log(
    mlflow_at: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "vera")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    client = mlflow.MlflowClient()
    assert [e.name for e in client.search_experiments()]
    with pytest.raises(MlflowException) as info:
        client.create_experiment("not-allowed")
    assert info.value.error_code == "PERMISSION_DENIED"
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "wrong password")
    with pytest.raises(MlflowException) as info:
        client.search_experiments()
    assert "401" in str(info.value) or info.value.error_code == "UNAUTHENTICATED"


def test_mlflow_client_with_a_bearer_token(
    secured: Secured, mlflow_at: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, token = _token(secured.folder, "eddie")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
    client = mlflow.MlflowClient()
    exp_id = client.create_experiment("bearer")
    assert client.get_experiment(exp_id).name == "bearer"


def test_admins_manage_users_and_tokens_over_the_api(secured: Secured, web: httpx.Client) -> None:
    admin, editor = _basic("ada"), _basic("eddie")
    body = {"name": "newbie", "role": "viewer", "password": "a long password"}
    assert web.post("/api/v1/users", json=body, headers=editor).status_code == 403
    r = web.post("/api/v1/users", json=body, headers=admin)
    assert r.status_code == 201, r.text
    assert r.json() == {**r.json(), "name": "newbie", "role": "viewer", "has_password": True}
    assert "newbie" in {u["name"] for u in web.get("/api/v1/users", headers=admin).json()["users"]}
    assert web.get("/api/v1/users", headers=editor).status_code == 403
    created = web.post("/api/v1/users/newbie/tokens", json={"name": "t"}, headers=admin).json()
    bearer = {"Authorization": f"Bearer {created['token']}"}
    assert web.get("/api/v1/experiments", headers=bearer).status_code == 200
    assert web.post("/api/v1/experiments", json={"name": "n"}, headers=bearer).status_code == 403
    listed = web.get("/api/v1/tokens", params={"user": "newbie"}, headers=admin).json()
    assert [t["id"] for t in listed["tokens"]] == [created["id"]]
    assert "token" not in listed["tokens"][0]
    revoked = web.post(f"/api/v1/tokens/{created['id']}/revoke", headers=admin)
    assert revoked.json()["revoked_time"] is not None
    assert web.get("/api/v1/experiments", headers=bearer).status_code == 401
    assert web.delete("/api/v1/users/newbie", headers=admin).status_code == 204
    assert web.delete("/api/v1/users/newbie", headers=admin).status_code == 404
    db = _database(secured.folder)
    try:
        actions = [(e.actor, e.action) for e in accounts.audit_log(db, object_id="newbie")]
    finally:
        db.dispose()
    assert actions == [("ada", "user.delete"), ("ada", "user.create")]


def test_has_users_now_sees_committed_users_at_once_and_never_waits(db_url: str) -> None:
    """The middleware's loop-side check: on SQLite it answers from a connection of its
    own that sees each commit of another connection at once, ignores an open write
    transaction (no dirty read, no wait for the write lock); on PostgreSQL it never
    answers (the caller asks :func:`accounts.has_users` in a thread)."""
    db = Database(db_url)
    other = Database(db_url)
    try:
        if db.dialect != "sqlite":
            assert db.read_now("SELECT 1") is None
            assert accounts.has_users_now(db) is None
            return
        assert accounts.has_users_now(db) is False
        with other.write() as conn:  # holds SQLite's write lock, uncommitted
            conn.exec_driver_sql(
                "INSERT INTO users (name, role, created_time) VALUES ('w', 'viewer', 0)"
            )
            assert accounts.has_users_now(db) is False
        assert accounts.has_users_now(db) is True
        accounts.create_user(other, "ada", "admin", PASSWORD)
        accounts.delete_user(other, "w")
        assert db.read_now("DELETE FROM users") is None  # it cannot write
        assert accounts.has_users_now(db) is True
        assert db.read_now("SELECT no_such_column FROM users") is None  # an error: no answer
        accounts.delete_user(other, "ada")
        assert accounts.has_users_now(db) is False
    finally:
        db.dispose()
        other.dispose()
