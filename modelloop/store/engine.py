"""Database engines: SQLite (embedded default) and PostgreSQL, and the schema check."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from modelloop.errors import InvalidArgument, SchemaOutdated, StoreUnavailable

__all__ = [
    "SCHEMA_HEAD",
    "Database",
    "normalize_db_url",
]

# The newest migration; a test pins it to Alembic's head.
SCHEMA_HEAD = "0006"
_PG_LOCK_ID = 0x6D6C6F6F70  # "mloop": serialises concurrent first-time schema creation
_READ_ONLY = "modelloop_read_only"
T = TypeVar("T")


def normalize_db_url(url: str) -> str:
    """Map user-facing database URLs onto SQLAlchemy URLs with the drivers we ship."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    if url.startswith(("sqlite:///", "postgresql+")):
        return url
    raise InvalidArgument(
        f"unsupported database URL {url!r}: use sqlite:///PATH or postgresql://USER@HOST/DB"
    )


class Database:
    """An engine plus the transaction discipline modelloop needs.

    SQLite runs in WAL mode; write transactions start with ``BEGIN IMMEDIATE`` so
    that concurrent writers queue on the busy timeout instead of failing with
    "database is locked" when a read transaction tries to upgrade.
    """

    def __init__(self, url: str, *, busy_timeout: float = 60.0, check_schema: bool = True):
        self.url = normalize_db_url(url)
        try:
            parsed = make_url(self.url)
        except ArgumentError as exc:
            raise InvalidArgument(f"invalid database URL {url!r}: {exc}") from None
        self.dialect = parsed.get_backend_name()
        self.busy_timeout = busy_timeout
        self._now_conn: sqlite3.Connection | None = None
        self._now_lock = threading.Lock()
        # SQLite has one writer at a time. Writers of this process queue here and are
        # woken the moment the writer before them commits; left to SQLite's busy
        # handler they would poll with sleeps of up to 100 ms, and under 16 busy
        # clients an unlucky writer waited 1-1.7 s. Other processes still queue on
        # SQLite's busy timeout.
        self._write_lock = threading.Lock()
        if self.dialect == "sqlite":
            self.engine = self._sqlite_engine(parsed.database or "")
        else:
            self.engine = create_engine(self.url, pool_pre_ping=True, pool_size=5)
        if check_schema:
            self.ensure_schema()

    def _sqlite_engine(self, path: str) -> Engine:
        if not path or path == ":memory:":
            raise InvalidArgument("an in-memory SQLite database cannot be shared; give a file path")
        Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            self.url,
            connect_args={"timeout": self.busy_timeout, "check_same_thread": False},
        )
        busy_ms = int(self.busy_timeout * 1000)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA busy_timeout = {busy_ms}")
            cur.execute("PRAGMA journal_mode = WAL")
            # NORMAL in WAL mode: a committed transaction survives a process crash.
            cur.execute("PRAGMA synchronous = NORMAL")
            cur.execute("PRAGMA foreign_keys = ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            if conn.get_execution_options().get(_READ_ONLY):
                conn.exec_driver_sql("BEGIN")
            else:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction, committed when the block exits without error.

        On SQLite the writers of this process take turns (one lock per database);
        waiting longer than the busy timeout is :class:`StoreUnavailable`.
        """
        if self.dialect != "sqlite":
            with self.engine.begin() as conn:
                yield conn
            return
        if not self._write_lock.acquire(timeout=self.busy_timeout):
            raise StoreUnavailable(
                f"metadata store unavailable: no write turn within {self.busy_timeout:g} s"
            )
        try:
            with self.engine.begin() as conn:
                yield conn
        finally:
            self._write_lock.release()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction (does not take SQLite's write lock)."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(**{_READ_ONLY: True})
            with conn.begin():
                yield conn

    def retrying(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` and retry it while SQLite reports a lock beyond the busy timeout."""
        deadline = time.monotonic() + self.busy_timeout
        delay = 0.01
        while True:
            try:
                return fn()
            except OperationalError as exc:
                locked = "locked" in str(exc.orig) or "busy" in str(exc.orig)
                if not locked or time.monotonic() > deadline:
                    raise StoreUnavailable(f"metadata store unavailable: {exc.orig}") from None
                time.sleep(delay)
                delay = min(delay * 2, 0.5)

    def current_revision(self, conn: Connection) -> str | None:
        """The Alembic revision stamped in the database (None when unstamped)."""
        if not inspect(conn).has_table("alembic_version"):
            return None
        row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
        return None if row is None else str(row[0])

    def ensure_schema(self) -> None:
        """Create an empty database at head; refuse an outdated one."""

        def check() -> None:
            with self.write() as conn:
                if self.dialect == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _PG_LOCK_ID})
                revision = self.current_revision(conn)
                if revision == SCHEMA_HEAD:
                    return
                if revision is None:
                    if inspect(conn).has_table("runs"):
                        raise SchemaOutdated(
                            "the database has modelloop tables but no schema version; "
                            "it was not made by modelloop"
                        )
                    _run_upgrade(conn)
                    return
                raise SchemaOutdated(_outdated_message(revision))

        self.retrying(check)

    def upgrade(self) -> tuple[str | None, str]:
        """Migrate to the newest schema; returns (revision before, revision after)."""

        def run() -> tuple[str | None, str]:
            with self.write() as conn:
                if self.dialect == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _PG_LOCK_ID})
                before = self.current_revision(conn)
                if before is not None and before != SCHEMA_HEAD:
                    from modelloop.store.migrate import known_revisions

                    if before not in known_revisions():
                        raise SchemaOutdated(_outdated_message(before))
                _run_upgrade(conn)
                return before, SCHEMA_HEAD

        return self.retrying(run)

    def integrity_check(self) -> list[str]:
        """Problems found by the database's own consistency check (empty when sound)."""
        with self.read() as conn:
            if self.dialect != "sqlite":
                return []
            rows = [str(r[0]) for r in conn.exec_driver_sql("PRAGMA integrity_check")]
            fk = [str(tuple(r)) for r in conn.exec_driver_sql("PRAGMA foreign_key_check")]
        problems = [r for r in rows if r != "ok"]
        return problems + [f"foreign key violation {r}" for r in fk]

    def read_now(self, sql: str) -> list[tuple[Any, ...]] | None:
        """The rows of a small read-only ``sql``, answered at once or not at all: None
        when it cannot be answered without waiting (PostgreSQL, a network round trip
        away; SQLite busy; the connection in use by another thread).

        SQLite runs it on a connection of its own, outside the pool, that never waits
        for a lock (busy timeout 0) and cannot write, so an event loop may call this
        without handing the work to a thread. Each call reads the latest committed
        state (autocommit: no snapshot is held between calls).
        """
        if self.dialect != "sqlite" or not self._now_lock.acquire(blocking=False):
            return None
        try:
            if self._now_conn is None:
                path = sqlite_path(self.url)
                assert path is not None
                conn = sqlite3.connect(
                    path, timeout=0, isolation_level=None, check_same_thread=False
                )
                conn.execute("PRAGMA query_only = ON")
                self._now_conn = conn
            return list(self._now_conn.execute(sql).fetchall())
        except sqlite3.Error:
            return None
        finally:
            self._now_lock.release()

    def dispose(self) -> None:
        """Close pooled connections (and :meth:`read_now`'s)."""
        with self._now_lock:
            if self._now_conn is not None:
                self._now_conn.close()
                self._now_conn = None
        self.engine.dispose()


def _outdated_message(revision: str) -> str:
    from modelloop.store.migrate import known_revisions

    if revision in known_revisions():
        return (
            f"the metadata database is at schema {revision}, this modelloop needs "
            f"{SCHEMA_HEAD}: run `modelloop db upgrade`"
        )
    return (
        f"the metadata database is at schema {revision}, unknown to this modelloop "
        f"(needs {SCHEMA_HEAD}): it was written by a newer modelloop (upgrade modelloop) "
        "or it is not a modelloop database"
    )


def _run_upgrade(conn: Connection) -> None:
    from modelloop.store.migrate import upgrade_connection

    upgrade_connection(conn)


def sqlite_path(url: str) -> str | None:
    """The file path of a sqlite URL, else None."""
    parsed = make_url(normalize_db_url(url))
    if parsed.get_backend_name() != "sqlite":
        return None
    return os.path.abspath(os.path.expanduser(parsed.database or ""))
