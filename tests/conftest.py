"""Shared fixtures: a real SQLite file per test, the same tests on PostgreSQL, and
the same tests again through a real HTTP server.

Set ``MODELLOOP_TEST_DB_URL`` (CI does) to run every ``db_url``-parametrised
test on PostgreSQL too: each test gets a fresh database cloned from a migrated
template, dropped afterwards.

``settings`` (and so ``client`` and ``fluent``) is parametrised over the
transport: ``local`` uses the store in process; ``http`` serves the same store
with ``create_app`` on a real uvicorn server and points the client at it. One
uvicorn runs for the whole session on a free loopback port; each test's app is
mounted under its own path prefix (``/s/<id>``), so a test costs an app, not a
server start.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import create_engine, text
from starlette.types import ASGIApp, Receive, Scope, Send

from modelloop.backends import open_backend
from modelloop.server import create_app
from modelloop.server.background import BackgroundServer
from modelloop.settings import Settings
from modelloop.store import Database, normalize_db_url
from modelloop.tracking.client import Client

PG_URL = os.environ.get("MODELLOOP_TEST_DB_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
TRANSPORTS = ["local", "http"]


class PgDatabases:
    """Creates throwaway databases on the test server from a migrated template."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.engine = create_engine(normalize_db_url(admin_url), isolation_level="AUTOCOMMIT")
        self.template = f"modelloop_tpl_{uuid.uuid4().hex[:10]}"
        self.created: list[str] = []
        with self.engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.template}"'))
        db = Database(self.url(self.template))
        db.dispose()

    def url(self, name: str) -> str:
        base, _, _ = self.admin_url.rpartition("/")
        return f"{base}/{name}"

    def fresh(self, migrated: bool = True) -> str:
        name = f"modelloop_t_{uuid.uuid4().hex[:12]}"
        with self.engine.connect() as conn:
            if migrated:
                conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"'))
            else:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return self.url(name)

    def drop(self, url: str) -> None:
        name = url.rpartition("/")[2]
        with self.engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def close(self) -> None:
        with self.engine.connect() as conn:
            for name in [*self.created, self.template]:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.engine.dispose()


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[PgDatabases]:
    if not PG_URL:
        pytest.skip("MODELLOOP_TEST_DB_URL is not set")
    dbs = PgDatabases(PG_URL)
    yield dbs
    dbs.close()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty-at-head metadata database URL: SQLite, then PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'meta' / 'modelloop.db'}"
        return
    dbs: PgDatabases = request.getfixturevalue("pg_databases")
    url = dbs.fresh()
    yield url
    dbs.drop(url)


class LiveServer:
    """A real uvicorn on a free loopback port, in a thread, serving many apps: each
    under its own prefix ``/s/<id>`` (the app sees it as its ``root_path``, as behind
    a reverse proxy)."""

    def __init__(self) -> None:
        self.apps: dict[str, ASGIApp] = {}
        self.server = BackgroundServer(self._dispatch)
        self.url = self.server.start()

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        parts = scope["path"].split("/", 3)
        app = self.apps.get(parts[2]) if len(parts) > 2 and parts[1] == "s" else None
        if app is None:
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b"no such test app"})
            return
        root = scope.get("root_path", "") + f"/s/{parts[2]}"
        await app({**scope, "root_path": root}, receive, send)

    @contextlib.contextmanager
    def mount(self, app: ASGIApp) -> Iterator[str]:
        """Serve ``app`` under a fresh prefix; yields its base URL."""
        key = uuid.uuid4().hex[:12]
        self.apps[key] = app
        try:
            yield f"{self.url}/s/{key}"
        finally:
            del self.apps[key]

    @contextlib.contextmanager
    def serving(self, store: Settings) -> Iterator[str]:
        """Serve ``create_app`` over the store ``store`` names; yields its base URL."""
        backend = open_backend(store)
        try:
            with self.mount(create_app(store, backend)) as url:
                yield url
        finally:
            backend.close()

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture(scope="session")
def live_server() -> Iterator[LiveServer]:
    """One real HTTP server for the session; see :class:`LiveServer`."""
    server = LiveServer()
    yield server
    server.stop()


@pytest.fixture
def artifacts_dir(tmp_path: Path) -> Path:
    """The folder of the test store's artifacts (blob store), whatever the transport."""
    return tmp_path / "artifacts"


@pytest.fixture
def store_settings(db_url: str, artifacts_dir: Path) -> Settings:
    """Settings naming a fresh local store; no git/environment capture unless asked."""
    return Settings(
        tracking_uri=db_url,
        artifacts_uri=str(artifacts_dir),
        capture_git=False,
        capture_environment=False,
    )


@pytest.fixture(params=TRANSPORTS)
def settings(request: pytest.FixtureRequest, store_settings: Settings) -> Iterator[Settings]:
    """Client settings for a fresh store: in process (``local``), or through a real
    server over that store (``http``)."""
    if request.param == "local":
        yield store_settings
        return
    server: LiveServer = request.getfixturevalue("live_server")
    with server.serving(store_settings) as url:
        yield store_settings.replace(tracking_uri=url, artifacts_uri="")


@pytest.fixture
def client(settings: Settings) -> Iterator[Client]:
    """A tracking client on a fresh store (SQLite and PostgreSQL; local and over HTTP)."""
    c = Client(settings=settings)
    yield c
    c.close()


@pytest.fixture
def folder_store(tmp_path: Path) -> Settings:
    """A fresh folder store (SQLite + local artifacts), no context capture."""
    return Settings(
        tracking_uri=str(tmp_path / "store"), capture_git=False, capture_environment=False
    )


@pytest.fixture
def folder_client(folder_store: Settings) -> Iterator[Client]:
    """A client on ``folder_store``, closed after the test."""
    client = Client(settings=folder_store)
    yield client
    client.close()


@pytest.fixture
def server_url(live_server: LiveServer, folder_store: Settings) -> Iterator[str]:
    """The base URL of the live test server serving ``folder_store``."""
    with live_server.serving(folder_store) as url:
        yield url


# data for the model packaging tests -------------------------------------------------


@pytest.fixture(scope="module")
def table() -> tuple[pd.DataFrame, pd.Series]:
    """A small mixed table (int, float, string columns) and a binary target."""
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, 120),
            "income": rng.normal(50_000, 12_000, 120),
            "city": rng.choice(["paris", "lyon", "nice"], 120),
        }
    )
    target = ((frame["income"] > 50_000) ^ (frame["city"] == "nice")).astype(int)
    return frame, target


@pytest.fixture(scope="module")
def numeric(table: tuple[pd.DataFrame, pd.Series]) -> tuple[pd.DataFrame, pd.Series]:
    """The numeric columns of ``table`` and its target."""
    frame, target = table
    return frame[["age", "income"]], target
