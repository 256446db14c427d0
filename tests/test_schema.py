"""Migrations, the schema check and the outdated-database refusal."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from modelloop.errors import InvalidArgument, SchemaOutdated
from modelloop.store import SCHEMA_HEAD, Database, normalize_db_url
from modelloop.store.migrate import head_revision
from modelloop.store.schema import metadata


def test_schema_head_constant_is_alembic_head() -> None:
    assert head_revision() == SCHEMA_HEAD


def test_empty_database_is_created_at_head_matching_the_models(db_url: str) -> None:
    db = Database(db_url)
    with db.engine.connect() as conn:
        assert db.current_revision(conn) == SCHEMA_HEAD
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
        tables = set(inspect(conn).get_table_names())
    db.dispose()
    assert diff == []
    assert {t.name for t in metadata.sorted_tables} <= tables


def test_sqlite_runs_in_wal_mode_with_busy_timeout(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'm.db'}", busy_timeout=7)
    with db.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 7000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    db.dispose()


def _set_revision(path: Path, revision: str) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = ?", (revision,))


def test_outdated_database_is_refused_naming_db_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    Database(f"sqlite:///{path}").dispose()
    # Pretend the database predates the newest migration: drop back to no revision
    # stamp at all would mean "not ours"; a known older revision means "upgrade".
    _set_revision(path, "0000_older")
    with pytest.raises(SchemaOutdated, match="newer modelloop"):
        Database(f"sqlite:///{path}")


def test_known_older_revision_names_the_upgrade_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelloop.store import migrate

    path = tmp_path / "m.db"
    Database(f"sqlite:///{path}").dispose()
    _set_revision(path, "0000_older")
    monkeypatch.setattr(migrate, "known_revisions", lambda: {"0000_older", SCHEMA_HEAD})
    with pytest.raises(SchemaOutdated, match="run `modelloop db upgrade`"):
        Database(f"sqlite:///{path}")


def test_foreign_tables_without_a_stamp_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE runs (id INTEGER)")
    with pytest.raises(SchemaOutdated, match="not made by modelloop"):
        Database(f"sqlite:///{path}")


def test_upgrade_is_idempotent(db_url: str) -> None:
    db = Database(db_url, check_schema=False)
    before, after = db.upgrade()
    assert after == SCHEMA_HEAD
    assert db.upgrade() == (SCHEMA_HEAD, SCHEMA_HEAD)
    db.dispose()
    assert before in (None, SCHEMA_HEAD)


def test_default_experiment_exists(db_url: str) -> None:
    db = Database(db_url)
    engine = create_engine(normalize_db_url(db_url))
    with engine.connect() as conn:
        name = conn.execute(text("SELECT name FROM experiments WHERE experiment_id = 0")).scalar()
    engine.dispose()
    db.dispose()
    assert name == "Default"


@pytest.mark.parametrize(
    "url", ["mysql://x/y", "sqlite:///:memory:", "sqlite://", "nonsense", "http://example"]
)
def test_bad_database_urls(url: str) -> None:
    with pytest.raises(InvalidArgument):
        Database(url)
