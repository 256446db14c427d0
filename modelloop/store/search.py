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
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import re
from collections.abc import Sequence
from typing import Any, Literal, TypeAlias

from sqlalchemy import ColumnElement, Connection, Select, and_, or_, select
from sqlalchemy.sql.elements import UnaryExpression

from modelloop.entities import ViewType
from modelloop.errors import InvalidArgument
from modelloop.store.schema import datasets, latest_metrics, params, run_inputs, run_tags, runs

__all__ = [
    "MAX_RESULTS_LIMIT",
    "Comparison",
    "OrderClause",
    "parse_filter",
    "parse_order_by",
    "search_run_ids",
]

MAX_RESULTS_LIMIT = 50_000

EntityType: TypeAlias = Literal["metric", "param", "tag", "attribute", "dataset"]
FilterValue: TypeAlias = str | float | int | tuple[str, ...]

_ENTITY_PREFIXES: dict[str, EntityType] = {
    "metric": "metric",
    "metrics": "metric",
    "param": "param",
    "params": "param",
    "parameter": "param",
    "parameters": "param",
    "tag": "tag",
    "tags": "tag",
    "attr": "attribute",
    "attribute": "attribute",
    "attributes": "attribute",
    "run": "attribute",
    "dataset": "dataset",
    "datasets": "dataset",
}

_STRING_ATTRIBUTES = ("run_id", "run_name", "status", "user_id", "lifecycle_stage", "parent_run_id")
_NUMERIC_ATTRIBUTES = ("start_time", "end_time")
_ATTRIBUTE_ALIASES = {"run_uuid": "run_id"}
_ATTRIBUTES = (*_STRING_ATTRIBUTES, *_NUMERIC_ATTRIBUTES, "experiment_id")
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
_DATASET_FIELDS = ("name", "digest", "context")
_RUN_NAME_TAG = "mlflow.runName"

_NUMERIC_OPS = ("=", "!=", "<", "<=", ">", ">=")
_STRING_OPS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")
_ID_OPS = ("=", "!=", "IN", "NOT IN")
_LIST_OPS = ("IN", "NOT IN")

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_UNQUOTED_KEY = re.compile(r"[\w.\-/:]+")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")
_DIGITS = re.compile(r"[0-9]+")
_SYMBOL_OPS = ("!=", "<=", ">=", "=", "<", ">")


@dataclasses.dataclass(frozen=True, slots=True)
class Comparison:
    """One ``<entity>.<key> <op> <value>`` condition of a filter.

    ``op`` is normalised to upper case (``LIKE``, ``NOT IN``, ...). ``value`` is a
    float for metrics, an int for ``start_time``/``end_time``, a tuple of strings
    for ``IN``/``NOT IN`` and a string otherwise. Attribute keys are canonical
    (``run_uuid`` becomes ``run_id``; ``tags.mlflow.runName`` becomes the
    ``run_name`` attribute).
    """

    entity_type: EntityType
    key: str
    op: str
    value: FilterValue


@dataclasses.dataclass(frozen=True, slots=True)
class OrderClause:
    """One order-by term: an entity key and a direction."""

    entity_type: EntityType
    key: str
    ascending: bool = True


# --------------------------------------------------------------------------- lexing


class _Scanner:
    """A cursor over one filter or order-by string that reports errors with positions."""

    def __init__(self, text: str, what: str) -> None:
        self.text = text
        self.pos = 0
        self.what = what

    def error(self, message: str, pos: int | None = None) -> InvalidArgument:
        at = self.pos if pos is None else pos
        return InvalidArgument(
            f"invalid {self.what} {self.text!r}: {message} at position {at}", position=at
        )

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def at_end(self) -> bool:
        self.skip_space()
        return self.pos >= len(self.text)

    def peek_char(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def match(self, pattern: re.Pattern[str]) -> str | None:
        m = pattern.match(self.text, self.pos)
        if m is None:
            return None
        self.pos = m.end()
        return m.group()

    def peek_word(self) -> str | None:
        """The next bare word, upper-cased, without consuming it."""
        self.skip_space()
        m = _WORD.match(self.text, self.pos)
        return m.group().upper() if m else None

    def describe_next(self) -> str:
        """A short quotation of the text at the cursor, for error messages."""
        if self.pos >= len(self.text):
            return "end of input"
        return repr(self.text[self.pos : self.pos + 20])

    def quoted(self, quote: str, what: str) -> str:
        """Read a quoted string at the cursor; a doubled quote stands for itself."""
        start = self.pos
        self.pos += 1
        parts: list[str] = []
        while True:
            end = self.text.find(quote, self.pos)
            if end < 0:
                raise self.error(f"unterminated {what} (missing closing {quote})", start)
            parts.append(self.text[self.pos : end])
            if self.text.startswith(quote * 2, end):
                parts.append(quote)
                self.pos = end + 2
                continue
            self.pos = end + 1
            return "".join(parts)


def _read_identifier(sc: _Scanner) -> tuple[EntityType, str, int]:
    """Read ``<entity>.<key>`` (or a bare attribute name); return (entity, key, position)."""
    sc.skip_space()
    start = sc.pos
    word = sc.match(_WORD)
    if word is None:
        raise sc.error(f"expected an identifier such as metrics.<key>, found {sc.describe_next()}")
    if sc.peek_char() != ".":
        if word.upper() in ("AND", "OR", "NOT"):
            raise sc.error(f"expected an identifier, found keyword {word.upper()}", start)
        return "attribute", word, start
    entity = _ENTITY_PREFIXES.get(word.lower())
    if entity is None:
        raise sc.error(
            f"unknown entity {word!r} (expected metrics., params., tags., attributes. "
            "or datasets.)",
            start,
        )
    sc.pos += 1
    char = sc.peek_char()
    quoted_key = char in ("`", '"')
    key = sc.quoted(char, "quoted key") if quoted_key else sc.match(_UNQUOTED_KEY) or ""
    if not key:
        raise sc.error(f"missing key after {word}.", start)
    return entity, key, start


def _canonical_identifier(
    sc: _Scanner, entity: EntityType, key: str, pos: int
) -> tuple[EntityType, str]:
    """Resolve aliases and reject unknown attribute or dataset fields."""
    if entity == "tag" and key == _RUN_NAME_TAG:
        return "attribute", "run_name"
    if entity == "attribute":
        name = _ATTRIBUTE_ALIASES.get(key, key)
        if name not in _ATTRIBUTES:
            raise sc.error(
                f"unknown attribute {key!r} (expected one of {', '.join(_ATTRIBUTES)})", pos
            )
        return entity, name
    if entity == "dataset" and key not in _DATASET_FIELDS:
        raise sc.error(
            f"unknown dataset field {key!r} (expected one of {', '.join(_DATASET_FIELDS)})", pos
        )
    return entity, key


# --------------------------------------------------------------------------- filters


def parse_filter(filter_string: str | None) -> list[Comparison]:
    """Parse an MLflow-style run filter into a list of comparisons joined by AND.

    ``None`` or a blank string yields an empty list. Any syntax or type error
    raises :class:`~modelloop.errors.InvalidArgument` naming the problem and its
    position in the string.
    """
    if filter_string is None:
        return []
    sc = _Scanner(filter_string, "filter")
    comparisons: list[Comparison] = []
    if sc.at_end():
        return comparisons
    while True:
        comparisons.append(_read_comparison(sc))
        if sc.at_end():
            return comparisons
        word = sc.peek_word()
        if word == "AND":
            sc.pos += 3
            if sc.at_end():
                raise sc.error("expected a condition after AND")
            continue
        if word == "OR":
            raise sc.error("OR is not supported; conditions can only be combined with AND")
        raise sc.error(f"expected AND or the end of the filter, found {sc.describe_next()}")


def _read_comparison(sc: _Scanner) -> Comparison:
    sc.skip_space()
    if sc.peek_char() == "(":
        raise sc.error("parentheses are not supported; combine conditions with AND")
    entity, raw_key, key_pos = _read_identifier(sc)
    entity, key = _canonical_identifier(sc, entity, raw_key, key_pos)
    sc.skip_space()
    op_pos = sc.pos
    op = _read_comparator(sc)
    allowed = _allowed_ops(entity, key)
    if op not in allowed:
        raise sc.error(
            f"comparator {op} is not valid for {_describe(entity, key)}; "
            f"use one of {', '.join(allowed)}",
            op_pos,
        )
    sc.skip_space()
    value_pos = sc.pos
    if op in _LIST_OPS:
        items = _read_list(sc)
        if entity == "attribute" and key == "experiment_id":
            items = tuple(_experiment_id_value(sc, item, value_pos) for item in items)
        return Comparison(entity, key, op, items)
    raw, quoted = _read_scalar(sc)
    if op in ("LIKE", "ILIKE") and quoted and _ends_with_escape(raw):
        raise sc.error(
            f"{op} pattern {raw!r} ends with an unescaped backslash (write \\\\ for one)",
            value_pos,
        )
    return Comparison(entity, key, op, _typed_value(sc, entity, key, raw, quoted, value_pos))


def _ends_with_escape(pattern: str) -> bool:
    return (len(pattern) - len(pattern.rstrip("\\"))) % 2 == 1


def _read_comparator(sc: _Scanner) -> str:
    for symbol in _SYMBOL_OPS:
        if sc.text.startswith(symbol, sc.pos):
            sc.pos += len(symbol)
            return symbol
    word = sc.peek_word()
    if word in ("LIKE", "ILIKE", "IN"):
        sc.pos += len(word)
        return word
    if word == "NOT":
        start = sc.pos
        sc.pos += 3
        if sc.peek_word() == "IN":
            sc.pos += 2
            return "NOT IN"
        raise sc.error("expected IN after NOT", start)
    if sc.pos >= len(sc.text):
        raise sc.error("missing comparator and value")
    raise sc.error(
        f"expected a comparator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN), "
        f"found {sc.describe_next()}"
    )


def _read_scalar(sc: _Scanner) -> tuple[str, bool]:
    """Read a quoted string or a number; return (text, was_quoted)."""
    sc.skip_space()
    char = sc.peek_char()
    if char in ("'", '"'):
        return sc.quoted(char, "string"), True
    number = sc.match(_NUMBER)
    if number is not None:
        return number, False
    if not char:
        raise sc.error("missing value")
    raise sc.error(
        f"expected a quoted string or a number, found {sc.describe_next()} "
        "(quote string values with ' or \")"
    )


def _read_list(sc: _Scanner) -> tuple[str, ...]:
    if sc.peek_char() != "(":
        raise sc.error(f"expected a parenthesised list like ('a', 'b'), found {sc.describe_next()}")
    sc.pos += 1
    items: list[str] = []
    while True:
        sc.skip_space()
        item_pos = sc.pos
        raw, quoted = _read_scalar(sc)
        if not quoted:
            raise sc.error(f"list items must be quoted strings, found {raw}", item_pos)
        items.append(raw)
        sc.skip_space()
        char = sc.peek_char()
        if char == ",":
            sc.pos += 1
        elif char == ")":
            sc.pos += 1
            return tuple(items)
        else:
            raise sc.error(f"expected ',' or ')' in the value list, found {sc.describe_next()}")


def _allowed_ops(entity: EntityType, key: str) -> tuple[str, ...]:
    if entity == "metric" or (entity == "attribute" and key in _NUMERIC_ATTRIBUTES):
        return _NUMERIC_OPS
    if entity == "attribute" and key == "experiment_id":
        return _ID_OPS
    return _STRING_OPS


def _describe(entity: EntityType, key: str) -> str:
    if entity == "attribute":
        return f"attribute {key}"
    return f"{entity} {key!r}"


def _typed_value(
    sc: _Scanner, entity: EntityType, key: str, raw: str, quoted: bool, pos: int
) -> str | float | int:
    if entity == "metric":
        if quoted:
            raise sc.error(f"metric value must be a number, got the string {raw!r}", pos)
        return float(raw)
    if entity == "attribute" and key in _NUMERIC_ATTRIBUTES:
        if quoted:
            raise sc.error(f"{key} must be compared with a number, got the string {raw!r}", pos)
        return _int64(sc, raw, key, pos)
    if entity == "attribute" and key == "experiment_id":
        return _experiment_id_value(sc, raw, pos)
    if not quoted:
        raise sc.error(
            f"the value for {_describe(entity, key)} must be a quoted string, got {raw} "
            "(use single or double quotes)",
            pos,
        )
    return raw


def _int64(sc: _Scanner, raw: str, key: str, pos: int) -> int:
    if _INTEGER.fullmatch(raw):
        value = int(raw)
    else:
        number = float(raw)
        if not number.is_integer():
            raise sc.error(f"{key} must be an integer (milliseconds), got {raw}", pos)
        value = int(number)
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise sc.error(f"{key} value {raw} is out of range", pos)
    return value


def _experiment_id_value(sc: _Scanner, raw: str, pos: int) -> str:
    if not _DIGITS.fullmatch(raw) or int(raw) > _INT64_MAX:
        raise sc.error(f"experiment_id must be an integer string, got {raw!r}", pos)
    return str(int(raw))


# --------------------------------------------------------------------------- order by


def parse_order_by(order_by: Sequence[str] | None) -> list[OrderClause]:
    """Parse order-by terms such as ``metrics.acc DESC`` or ``attributes.start_time``.

    The direction defaults to ascending. Metrics, params, tags and attributes
    can be ordered on; datasets cannot.
    """
    if order_by is None:
        return []
    if isinstance(order_by, str):
        raise InvalidArgument("order_by must be a list of strings, not a single string")
    clauses: list[OrderClause] = []
    for term in order_by:
        sc = _Scanner(term, "order_by clause")
        if sc.at_end():
            raise sc.error("empty clause")
        entity, raw_key, key_pos = _read_identifier(sc)
        entity, key = _canonical_identifier(sc, entity, raw_key, key_pos)
        if entity == "dataset":
            raise sc.error("datasets cannot be ordered on", key_pos)
        ascending = True
        if not sc.at_end():
            word = sc.peek_word()
            if word not in ("ASC", "DESC"):
                raise sc.error(f"expected ASC or DESC, found {sc.describe_next()}")
            sc.pos += len(word)
            ascending = word == "ASC"
            if not sc.at_end():
                raise sc.error(f"unexpected {sc.describe_next()} after {word}")
        clauses.append(OrderClause(entity, key, ascending))
    return clauses


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


def _condition(c: Comparison, dialect: str) -> ColumnElement[bool]:
    if c.entity_type == "metric":
        value_cond = _numeric_condition(latest_metrics.c.value, c.op, c.value)
        if c.op == "!=":
            # NULL stands for NaN, and NaN differs from every number.
            value_cond = or_(value_cond, latest_metrics.c.value.is_(None))
        return runs.c.run_id.in_(
            select(latest_metrics.c.run_id).where(latest_metrics.c.key == c.key, value_cond)
        )
    if c.entity_type in ("param", "tag"):
        table = params if c.entity_type == "param" else run_tags
        return runs.c.run_id.in_(
            select(table.c.run_id).where(
                table.c.key == c.key, _string_condition(table.c.value, c.op, c.value, dialect)
            )
        )
    if c.entity_type == "dataset":
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


def _apply_order(stmt: Select[Any], clauses: Sequence[OrderClause], dialect: str) -> Select[Any]:
    terms: list[UnaryExpression[Any]] = []
    seen: set[str] = set()
    for i, clause in enumerate(clauses):
        column: ColumnElement[Any]
        if clause.entity_type == "attribute":
            column = _ATTRIBUTE_COLUMNS[clause.key]
            seen.add(clause.key)
        else:
            table = {"metric": latest_metrics, "param": params, "tag": run_tags}[
                clause.entity_type
            ].alias(f"order_{i}")
            stmt = stmt.outerjoin(
                table, and_(table.c.run_id == runs.c.run_id, table.c.key == clause.key)
            )
            column = table.c.value
        if (
            dialect == "postgresql"
            and clause.entity_type in ("param", "tag", "attribute")
            and (clause.key not in _NUMERIC_ATTRIBUTES and clause.key != "experiment_id")
        ):
            # Byte order, as SQLite sorts, whatever the database's locale.
            column = column.collate("C")
        direction = column.asc() if clause.ascending else column.desc()
        terms.append(direction.nulls_last())
    if "start_time" not in seen:
        terms.append(runs.c.start_time.desc())
    if "run_id" not in seen:
        terms.append(runs.c.run_id.asc())
    return stmt.order_by(*terms)


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
    dialect = conn.dialect.name
    stmt = select(runs.c.run_id).where(
        runs.c.experiment_id.in_(ids),
        runs.c.lifecycle_stage.in_(stages),
        *(_condition(c, dialect) for c in comparisons),
    )
    stmt = _apply_order(stmt, clauses, dialect).limit(max_results + 1).offset(offset)
    run_ids = [str(run_id) for run_id in conn.scalars(stmt)]
    if len(run_ids) > max_results:
        return run_ids[:max_results], _encode_page_token(offset + max_results)
    return run_ids, None
