"""Small helpers shared by the store modules."""

from __future__ import annotations

import functools
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
    conn.execute(_insert_ignore_statement(conn.dialect.name, table), rows)


def upsert(
    conn: Connection,
    table: Table,
    rows: list[dict[str, Any]],
    update: Sequence[str],
    where: Callable[[Table, Any], ColumnElement[bool]] | None = None,
) -> None:
    """Insert rows; on a primary-key clash overwrite the ``update`` columns
    (only where ``where(table, excluded)`` holds, when given: a module-level function,
    as the statement is built once per table, columns and condition)."""
    if not rows:
        return
    conn.execute(_upsert_statement(conn.dialect.name, table, tuple(update), where), rows)


# Statements are built once: constructing an upsert's ``excluded`` alias costs more
# than executing a small insert.
@functools.lru_cache(maxsize=256)
def _insert_ignore_statement(dialect: str, table: Table) -> Any:
    return _dialect_insert(dialect, table).on_conflict_do_nothing()


@functools.lru_cache(maxsize=256)
def _upsert_statement(
    dialect: str,
    table: Table,
    update: tuple[str, ...],
    where: Callable[[Table, Any], ColumnElement[bool]] | None,
) -> Any:
    ins = _dialect_insert(dialect, table)
    keys = [c.name for c in table.primary_key.columns]
    set_ = {name: ins.excluded[name] for name in update}
    cond = None if where is None else where(table, ins.excluded)
    return ins.on_conflict_do_update(index_elements=keys, set_=set_, where=cond)


def _dialect_insert(dialect: str, table: Table) -> Any:
    if dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
