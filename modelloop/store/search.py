"""The run search language: MLflow-style filters and order-by clauses.

A filter such as ``metrics.acc > 0.9 AND params.model = 'cnn'`` is parsed into a
list of typed :class:`Comparison` nodes, which are then turned into SQLAlchemy
expressions. Filter values only ever reach the database as bound parameters.

Semantics worth knowing:

* Conditions are joined with ``AND`` only; ``OR`` and parentheses are rejected.
* ``params.k != 'v'`` (and ``NOT IN``, and every other comparison on a param,
  tag, metric or dataset) only matches runs that have the key ``k``.
* ``LIKE`` is case-sensitive and ``ILIKE`` case-insensitive on every backend.
  ``%`` and ``_`` are the wildcards and a backslash escapes the next character.
* NaN metric values (stored as NULL) compare like IEEE NaN: only ``!=`` matches.
* Ordering puts runs missing the order key (or holding NaN) last in either
  direction; ties are broken by ``start_time DESC`` then ``run_id ASC``.

How a search runs: each metric, param or tag key that is filtered or ordered on
is joined once (inner when filtered, outer when only ordered on); dataset
conditions stay ``IN`` subqueries. Ordering by a metric no filter mentions is
answered in two steps, the runs with a value (an index walk in order) and then
the rest. On SQLite, whose planner knows nothing about value distributions, the
join order is fixed per query from a few cheap index counts (see
:func:`_sqlite_page`); PostgreSQL plans from its own statistics.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import math
from collections.abc import Sequence
from typing import Any, Literal, TypeAlias

from sqlalchemy import Column, ColumnElement, Connection, Select, Table, and_, func, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.sql.expression import FromClause
from sqlalchemy.sql.selectable import Join, NamedFromClause

from modelloop.entities import ViewType
from modelloop.errors import InvalidArgument
from modelloop.store.schema import datasets, latest_metrics, params, run_inputs, run_tags, runs
from modelloop.store.search_syntax import (
    _DIGITS,
    _INT64_MAX,
    _NUMERIC_ATTRIBUTES,
    MAX_RESULTS_LIMIT,
    Comparison,
    EntityType,
    FilterValue,
    OrderClause,
    parse_filter,
    parse_order_by,
)

__all__ = [
    "MAX_RESULTS_LIMIT",
    "Comparison",
    "OrderClause",
    "parse_filter",
    "parse_order_by",
    "search_run_ids",
]

_ATTRIBUTE_COLUMNS: dict[str, ColumnElement[Any]] = {
    "run_id": runs.c.run_id,
    "run_name": runs.c.name,
    "status": runs.c.status,
    "user_id": runs.c.user_id,
    "lifecycle_stage": runs.c.lifecycle_stage,
    "parent_run_id": runs.c.parent_run_id,
    "start_time": runs.c.start_time,
    "end_time": runs.c.end_time,
    "experiment_id": runs.c.experiment_id,
}
# --------------------------------------------------------------------------- SQL


def _like_to_glob(pattern: str) -> str:
    """Translate a LIKE pattern (backslash escapes) into an equivalent SQLite GLOB pattern."""
    out: list[str] = []
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            char = next(chars, "\\")
            out.append(_GLOB_LITERAL.get(char, char))
        elif char == "%":
            out.append("*")
        elif char == "_":
            out.append("?")
        else:
            out.append(_GLOB_LITERAL.get(char, char))
    return "".join(out)


_GLOB_LITERAL = {"*": "[*]", "?": "[?]", "[": "[[]"}


def _string_condition(
    column: ColumnElement[Any], op: str, value: FilterValue, dialect: str
) -> ColumnElement[bool]:
    if op == "=":
        return column == value
    if op == "!=":
        return column != value
    if isinstance(value, tuple):
        return column.in_(value) if op == "IN" else column.not_in(value)
    assert isinstance(value, str)
    if op == "ILIKE":
        return column.ilike(value, escape="\\")
    # SQLite's LIKE ignores ASCII case; GLOB is its case-sensitive counterpart.
    if dialect == "sqlite":
        return column.op("GLOB", is_comparison=True)(_like_to_glob(value))
    return column.like(value, escape="\\")


def _numeric_condition(
    column: ColumnElement[Any], op: str, value: FilterValue
) -> ColumnElement[bool]:
    if op == "=":
        return column == value
    if op == "!=":
        return column != value
    if op == "<":
        return column < value
    if op == "<=":
        return column <= value
    if op == ">":
        return column > value
    return column >= value


_KEYED_TABLES: dict[EntityType, Table] = {
    "metric": latest_metrics,
    "param": params,
    "tag": run_tags,
}


def _keyed_condition(c: Comparison, value: ColumnElement[Any], dialect: str) -> ColumnElement[bool]:
    """The condition of a metric, param or tag comparison on the joined ``value`` column."""
    if c.entity_type != "metric":
        return _string_condition(value, c.op, c.value, dialect)
    condition = _numeric_condition(value, c.op, c.value)
    if c.op == "!=":
        # NULL stands for NaN, and NaN differs from every number.
        condition = or_(condition, value.is_(None))
    return condition


def _condition(c: Comparison, dialect: str) -> ColumnElement[bool]:
    """The WHERE condition of an attribute or dataset comparison."""
    if c.entity_type == "dataset":
        # A run can have many inputs: a join would repeat it, so test membership.
        field = run_inputs.c.context if c.key == "context" else datasets.c[c.key]
        return runs.c.run_id.in_(
            select(run_inputs.c.run_id)
            .join(datasets, datasets.c.digest == run_inputs.c.dataset_digest)
            .where(_string_condition(field, c.op, c.value, dialect))
        )
    column = _ATTRIBUTE_COLUMNS[c.key]
    if c.key in _NUMERIC_ATTRIBUTES:
        return _numeric_condition(column, c.op, c.value)
    if c.key == "experiment_id":
        if isinstance(c.value, tuple):
            ids = [int(v) for v in c.value]
            return column.in_(ids) if c.op == "IN" else column.not_in(ids)
        return _numeric_condition(column, c.op, int(c.value))
    return _string_condition(column, c.op, c.value, dialect)


@dataclasses.dataclass(slots=True, eq=False)
class _KeyJoin:
    """One metric, param or tag key joined to ``runs`` under its own alias.

    A (run_id, key) pair is unique in each of the three tables, so joining one row
    per key never repeats a run.
    """

    entity_type: EntityType
    key: str
    alias: NamedFromClause
    conditions: list[ColumnElement[bool]]
    # Outer-joined: an order key that is not filtered (runs without it stay).
    outer: bool
    # Whether the joined value can be NULL: a missing key under an outer join, or a
    # NaN metric that only ``!=`` comparisons (which match NaN) were applied to.
    nullable: bool

    @property
    def value(self) -> ColumnElement[Any]:
        return self.alias.c.value

    def rows(self) -> list[ColumnElement[bool]]:
        """The conditions on this alias alone: the key and its comparisons."""
        return [self.alias.c.key == self.key, *self.conditions]

    def on(self, run_id: ColumnElement[Any]) -> ColumnElement[bool]:
        return and_(self.alias.c.run_id == run_id, *self.rows())


# SQLite only: drive the query from ``runs`` (a walk of its start-time index).
_RUNS: Literal["runs"] = "runs"
_Driver: TypeAlias = _KeyJoin | Literal["runs"]


@dataclasses.dataclass(slots=True)
class _Part:
    """One SELECT of a search: its key joins, WHERE conditions and order clauses."""

    joins: dict[tuple[EntityType, str], _KeyJoin]
    # The experiments and lifecycle stages searched.
    scope: list[ColumnElement[bool]]
    # Attribute and dataset conditions (and, in a second part, "has no value").
    where: list[ColumnElement[bool]]
    clauses: list[OrderClause]
    # One experiment and one lifecycle stage: runs' index yields start-time order.
    single_scope: bool


def _parts(
    experiment_ids: Sequence[int],
    stages: Sequence[str],
    comparisons: Sequence[Comparison],
    clauses: Sequence[OrderClause],
    dialect: str,
) -> tuple[_Part, tuple[_Part, _Part] | None]:
    """The whole search, and its split when the first order key is an unfiltered metric.

    The split is the runs with a value for that metric (which an index walk can
    yield in order) and the runs without one, which all sort after them.
    """
    joins: dict[tuple[EntityType, str], _KeyJoin] = {}
    for c in comparisons:
        if c.entity_type not in _KEYED_TABLES:
            continue
        join = joins.get((c.entity_type, c.key))
        if join is None:
            alias = _KEYED_TABLES[c.entity_type].alias(f"k{len(joins)}")
            join = _KeyJoin(c.entity_type, c.key, alias, [], False, True)
            joins[c.entity_type, c.key] = join
        join.conditions.append(_keyed_condition(c, join.value, dialect))
        if c.entity_type != "metric" or c.op != "!=":
            join.nullable = False
    for clause in clauses:
        if clause.entity_type in _KEYED_TABLES and (clause.entity_type, clause.key) not in joins:
            alias = _KEYED_TABLES[clause.entity_type].alias(f"k{len(joins)}")
            joins[clause.entity_type, clause.key] = _KeyJoin(
                clause.entity_type, clause.key, alias, [], True, True
            )
    scope: list[ColumnElement[bool]] = [
        runs.c.experiment_id.in_(experiment_ids),
        runs.c.lifecycle_stage.in_(stages),
    ]
    where = [_condition(c, dialect) for c in comparisons if c.entity_type not in _KEYED_TABLES]
    single_scope = len(experiment_ids) == 1 and len(stages) == 1
    whole = _Part(joins, scope, where, list(clauses), single_scope)
    first = clauses[0] if clauses else None
    if first is None or first.entity_type != "metric" or not joins["metric", first.key].outer:
        return whole, None
    # Order by a metric no filter mentions: split off the runs without a value for it.
    key: tuple[EntityType, str] = ("metric", first.key)
    order = joins[key]
    has_value = and_(order.alias.c.key == first.key, order.value.is_not(None))
    present = dataclasses.replace(
        order, conditions=[order.value.is_not(None)], outer=False, nullable=False
    )
    missing = (
        ~select(order.alias.c.run_id)
        .where(order.alias.c.run_id == runs.c.run_id, has_value)
        .exists()
    )
    without = _Part(
        {k: j for k, j in joins.items() if k != key},
        scope,
        [*where, missing],
        [c for c in clauses if (c.entity_type, c.key) != key],
        single_scope,
    )
    return whole, (dataclasses.replace(whole, joins={**joins, key: present}), without)


def _order_terms(part: _Part, dialect: str) -> list[UnaryExpression[Any]]:
    terms: list[UnaryExpression[Any]] = []
    seen: set[str] = set()
    for clause in part.clauses:
        column: ColumnElement[Any]
        if clause.entity_type == "attribute":
            column = _ATTRIBUTE_COLUMNS[clause.key]
            nullable = column.nullable if isinstance(column, Column) else True
            seen.add(clause.key)
        else:
            join = part.joins[clause.entity_type, clause.key]
            column = join.value
            nullable = join.nullable
        if (
            dialect == "postgresql"
            and clause.entity_type in ("param", "tag", "attribute")
            and (clause.key not in _NUMERIC_ATTRIBUTES and clause.key != "experiment_id")
        ):
            # Byte order, as SQLite sorts, whatever the database's locale.
            column = column.collate("C")
        direction = column.asc() if clause.ascending else column.desc()
        # NULLS LAST only where NULLs can occur: a plain direction lets both
        # databases walk a (key, value) index in order and stop after the page.
        terms.append(direction.nulls_last() if nullable else direction)
    if "start_time" not in seen:
        terms.append(runs.c.start_time.desc())
    if "run_id" not in seen:
        terms.append(runs.c.run_id.asc())
    return terms


class _CrossJoin(Join):
    """An inner join rendered ``CROSS JOIN`` on SQLite, whose planner keeps its order."""

    inherit_cache = True


@compiles(_CrossJoin, "sqlite")
def _compile_cross_join(join: _CrossJoin, compiler: SQLCompiler, **kw: Any) -> str:
    # Each ON clause links its table to the driving one: no cartesian product to lint.
    kw.pop("from_linter", None)
    kw.pop("asfrom", None)
    left = compiler.process(join.left, asfrom=True, **kw)
    right = compiler.process(join.right, asfrom=True, **kw)
    assert join.onclause is not None
    return f"{left} CROSS JOIN {right} ON {compiler.process(join.onclause, **kw)}"


def _statement(part: _Part, dialect: str, driver: _Driver | None = None) -> Select[Any]:
    """The part's SELECT; on SQLite, ``driver`` fixes the table its loops start from.

    SQLite's planner has no statistics on values (and often none at all), so left
    to itself it tends to scan every run; :func:`_sqlite_page` chooses the driver.
    """
    inner = [j for j in part.joins.values() if not j.outer]
    outer = [j for j in part.joins.values() if j.outer]
    where = [*part.scope, *part.where]
    source: FromClause
    if driver is None:
        source = runs
        for join in inner:
            source = source.join(join.alias, join.on(runs.c.run_id))
    else:
        # Driver first; then the other filters, checked by primary key before the
        # run itself is read; then runs.
        first = driver.alias if isinstance(driver, _KeyJoin) else runs
        run_id = first.c.run_id
        source = first
        if isinstance(driver, _KeyJoin):
            where.extend(driver.rows())
        for join in inner:
            if join is not driver:
                source = _CrossJoin(source, join.alias, join.on(run_id))
        if isinstance(driver, _KeyJoin):
            source = _CrossJoin(source, runs, runs.c.run_id == run_id)
    for join in outer:
        source = source.join(join.alias, join.on(runs.c.run_id), isouter=True)
    return (
        select(runs.c.run_id)
        .select_from(source)
        .where(*where)
        .order_by(*_order_terms(part, dialect))
    )


def _page(conn: Connection, stmt: Select[Any], offset: int, limit: int) -> list[str]:
    stmt = stmt.limit(limit).offset(offset)
    return [str(run_id) for run_id in conn.scalars(stmt)]


def _count(conn: Connection, stmt: Select[Any], cap: float) -> int:
    """The number of rows ``stmt`` yields, or ``cap`` if it yields at least that many."""
    if cap != math.inf:
        stmt = stmt.limit(math.ceil(cap))
    return int(conn.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0)


def _walk(part: _Part) -> tuple[_Driver, bool] | None:
    """The driver whose index yields the part's order, and whether it ascends."""
    first = part.clauses[0] if part.clauses else OrderClause("attribute", "start_time", False)
    if first.entity_type == "metric":
        join = part.joins["metric", first.key]
        return None if join.outer or join.nullable else (join, first.ascending)
    if first.entity_type == "attribute" and first.key == "start_time" and part.single_scope:
        return _RUNS, first.ascending
    return None


def _driver_rows(part: _Part, driver: _Driver) -> Select[Any]:
    """The index entries a driver reads (counted to choose one).

    A metric filter reads just its matches from latest_metrics' (key, value,
    run_id) index. Params and tags have only a (key) index: a filter on them reads
    every row of its key and checks the value in the table.
    """
    if isinstance(driver, _KeyJoin):
        if driver.entity_type != "metric":
            return select(driver.alias.c.key).where(driver.alias.c.key == driver.key)
        return select(driver.value).select_from(driver.alias).where(*driver.rows())
    return select(runs.c.start_time).where(*part.scope)


# What reading one entry of a param or tag key costs, relative to an entry that
# leads to a lookup by primary key (rows of one key are read in table order).
_KEY_SCAN_WEIGHT = 0.3


def _cheapest_driver(
    conn: Connection, part: _Part, cap: float, *, metrics_only: bool = False
) -> _Driver | None:
    """The driver that reads the least (weighted) below ``cap``, or None."""
    best: _Driver | None = None
    inner = [j for j in part.joins.values() if not j.outer]
    # Exact metric counts first: they lower the cap on the probes after them.
    candidates: list[_Driver] = [j for j in inner if j.entity_type == "metric"]
    if not metrics_only:
        candidates += [j for j in inner if j.entity_type != "metric"]
        candidates.append(_RUNS)
    for driver in candidates:
        weight = 1.0
        if isinstance(driver, _KeyJoin) and driver.entity_type != "metric":
            weight = _KEY_SCAN_WEIGHT
        cost = _count(conn, _driver_rows(part, driver), cap / weight) * weight
        if cost < cap:
            best, cap = driver, cost
    return best


# The first try at an ordered walk reads this many index entries per row wanted.
_WALK_BUDGET = 10
_MIN_WALK_BUDGET = 1000


def _sqlite_page(
    conn: Connection, part: _Part, offset: int, limit: int, whole: _Part
) -> tuple[list[str], bool]:
    """One page of ``part`` on SQLite, whose planner we steer.

    ``part`` is ``whole`` or the runs of ``whole`` that sort first (those with a
    value for its first order key). When an index yields the order, walk it and
    stop after the page: first over a bounded stretch, unless a metric filter
    matches fewer runs than that stretch holds. If the filters reject too much
    of the stretch, estimate what the full walk would read and compare it with
    what starting from each filter, or from the runs in scope, would read
    (counted up to that estimate); start from the least and sort ``whole``.
    Returns the rows and whether they are a page of ``whole`` rather than ``part``.
    """
    dialect = conn.dialect.name
    walk = _walk(part)
    if walk is None:
        return _page(
            conn, _statement(whole, dialect, _cheapest_driver(conn, whole, math.inf)), offset, limit
        ), True
    driver, ascending = walk
    budget = max(_MIN_WALK_BUDGET, _WALK_BUDGET * (offset + limit))
    narrow = _cheapest_driver(conn, whole, budget, metrics_only=True)
    if narrow is not None:
        return _page(conn, _statement(whole, dialect, narrow), offset, limit), True
    entries = _driver_rows(part, driver)
    column = entries.selected_columns[0]
    order = column.asc() if ascending else column.desc()
    cutoff = conn.scalar(entries.order_by(order).limit(1).offset(budget - 1))
    stmt = _statement(part, dialect, driver)
    if cutoff is None:
        # The walk is short: take it all.
        return _page(conn, stmt, offset, limit), False
    rows = _page(conn, stmt.where(column < cutoff if ascending else column > cutoff), offset, limit)
    if len(rows) == limit:
        # Every run beyond the cutoff sorts after these.
        return rows, False
    estimate = (offset + limit) * budget / max(offset + len(rows), 1)
    best = _cheapest_driver(conn, whole, estimate)
    if best is not None:
        return _page(conn, _statement(whole, dialect, best), offset, limit), True
    return _page(conn, stmt, offset, limit), False


def _fetch(conn: Connection, part: _Part, offset: int, limit: int) -> list[str]:
    """One page of a part's rows (PostgreSQL plans well from its statistics)."""
    dialect = conn.dialect.name
    if dialect != "sqlite":
        return _page(conn, _statement(part, dialect), offset, limit)
    return _sqlite_page(conn, part, offset, limit, part)[0]


def _fetch_split(
    conn: Connection, whole: _Part, split: tuple[_Part, _Part], offset: int, limit: int
) -> list[str]:
    """One page ordered by an unfiltered metric: runs with a value, then the others."""
    present, absent = split
    if conn.dialect.name == "sqlite":
        found, complete = _sqlite_page(conn, present, offset, limit, whole)
        if complete:
            return found
    else:
        found = _fetch(conn, present, offset, limit)
    if len(found) == limit:
        return found
    # The page goes on into the runs without a value: skip what is left of the offset.
    skip = 0 if found or offset == 0 else offset - _part_size(conn, present, offset)
    return found + _fetch(conn, absent, skip, limit - len(found))


def _part_size(conn: Connection, part: _Part, cap: int) -> int:
    dialect = conn.dialect.name
    driver = _cheapest_driver(conn, part, math.inf) if dialect == "sqlite" else None
    return _count(conn, _statement(part, dialect, driver), cap)


# --------------------------------------------------------------------------- paging


def _decode_page_token(token: str | None) -> int:
    if token is None or token == "":
        return 0
    try:
        raw = base64.urlsafe_b64decode(token.encode("ascii"))
        data = json.loads(raw)
    except (UnicodeError, binascii.Error, ValueError):
        raise InvalidArgument(
            f"invalid page token {token!r}: not a token from this server"
        ) from None
    offset = data.get("offset") if isinstance(data, dict) else None
    if type(offset) is not int or not 0 <= offset <= _INT64_MAX:
        raise InvalidArgument(f"invalid page token {token!r}: no valid offset")
    return offset


def _encode_page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode("ascii")


def _experiment_ids(experiment_ids: Sequence[str]) -> list[int]:
    if isinstance(experiment_ids, str):
        raise InvalidArgument("experiment_ids must be a list of strings, not a single string")
    ids: list[int] = []
    for eid in experiment_ids:
        if not isinstance(eid, str) or not _DIGITS.fullmatch(eid) or int(eid) > _INT64_MAX:
            raise InvalidArgument(f"invalid experiment id {eid!r}: must be an integer string")
        ids.append(int(eid))
    return ids


def search_run_ids(
    conn: Connection,
    experiment_ids: Sequence[str],
    filter_string: str | None = None,
    view_type: ViewType = ViewType.ACTIVE_ONLY,
    max_results: int = 1000,
    order_by: Sequence[str] | None = None,
    page_token: str | None = None,
) -> tuple[list[str], str | None]:
    """Return one page of matching run ids, in order, and the next page token.

    The token is None on the last page. Arguments are validated before the
    database is queried; any bad argument raises
    :class:`~modelloop.errors.InvalidArgument`.
    """
    if type(max_results) is not int or not 1 <= max_results <= MAX_RESULTS_LIMIT:
        raise InvalidArgument(
            f"max_results must be an integer between 1 and {MAX_RESULTS_LIMIT}, got {max_results!r}"
        )
    try:
        stages = [stage.value for stage in ViewType(view_type).stages()]
    except ValueError:
        raise InvalidArgument(f"invalid view type {view_type!r}") from None
    offset = _decode_page_token(page_token)
    ids = _experiment_ids(experiment_ids)
    comparisons = parse_filter(filter_string)
    clauses = parse_order_by(order_by)
    if not ids:
        return [], None
    limit = max_results + 1
    whole, split = _parts(ids, stages, comparisons, clauses, conn.dialect.name)
    if split is None:
        found = _fetch(conn, whole, offset, limit)
    else:
        found = _fetch_split(conn, whole, split, offset, limit)
    if len(found) > max_results:
        return found[:max_results], _encode_page_token(offset + max_results)
    return found, None
