"""Small helpers shared by the store modules."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

T = TypeVar("T")

# Bound parameters per statement stay well under SQLite's limit (32766).
IN_CHUNK = 500


def now_ms() -> int:
    """Milliseconds since the epoch."""
    return int(time.time() * 1000)


def chunked(items: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most ``size`` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def insert_ignore(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert rows, skipping those whose primary key already exists."""
    if not rows:
        return
    stmt = _dialect_insert(conn, table).on_conflict_do_nothing()
    conn.execute(stmt, rows)


def upsert(
    conn: Connection,
    table: Table,
    rows: list[dict[str, Any]],
    update: Sequence[str],
    where: Callable[[Table, Any], ColumnElement[bool]] | None = None,
) -> None:
    """Insert rows; on a primary-key clash overwrite the ``update`` columns
    (only where ``where(table, excluded)`` holds, when given)."""
    if not rows:
        return
    ins = _dialect_insert(conn, table)
    keys = [c.name for c in table.primary_key.columns]
    set_ = {name: ins.excluded[name] for name in update}
    cond = None if where is None else where(table, ins.excluded)
    stmt = ins.on_conflict_do_update(index_elements=keys, set_=set_, where=cond)
    conn.execute(stmt, rows)


def _dialect_insert(conn: Connection, table: Table) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
