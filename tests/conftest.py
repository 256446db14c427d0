"""Shared fixtures: a real SQLite file per test, and the same tests on PostgreSQL.

Set ``MODELLOOP_TEST_DB_URL`` (CI does) to run every ``store_url``-parametrised
test on PostgreSQL too: each test gets a fresh database cloned from a migrated
template, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from modelloop.settings import Settings
from modelloop.store import Database, normalize_db_url
from modelloop.tracking.client import Client

PG_URL = os.environ.get("MODELLOOP_TEST_DB_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


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


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """Settings for a fresh store; no git/environment capture unless a test asks."""
    return Settings(
        tracking_uri=db_url,
        artifacts_uri=str(tmp_path / "artifacts"),
        capture_git=False,
        capture_environment=False,
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[Client]:
    """A tracking client on a fresh store (SQLite and PostgreSQL)."""
    c = Client(settings=settings)
    yield c
    c.close()
