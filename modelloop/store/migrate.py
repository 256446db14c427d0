"""Alembic plumbing: the migrations ship inside the package."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

_HERE = Path(__file__).parent / "migrations"


def alembic_config(conn: Connection | None = None) -> Config:
    """An Alembic config pointing at the packaged migrations (and a live connection)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(_HERE))
    if conn is not None:
        cfg.attributes["connection"] = conn
    return cfg


def head_revision() -> str:
    """The newest revision among the packaged migrations."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def known_revisions() -> set[str]:
    """Every packaged revision id."""
    script = ScriptDirectory.from_config(alembic_config())
    return {rev.revision for rev in script.walk_revisions()}


def upgrade_connection(conn: Connection) -> None:
    """Migrate the database behind ``conn`` to head inside the caller's transaction."""
    command.upgrade(alembic_config(conn), "head")
