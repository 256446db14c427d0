"""The run search language's syntax: MLflow-style filters and order-by clauses parsed
into typed nodes (:class:`Comparison`, :class:`OrderClause`). No SQL here: see
:mod:`modelloop.store.search`."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Literal, TypeAlias

from modelloop.errors import InvalidArgument

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
_DATASET_FIELDS = ("name", "digest", "context")
# MLflow system tags that modelloop stores as run attributes.
_SYSTEM_TAG_ATTRIBUTES = {
    "mlflow.runName": "run_name",
    "mlflow.user": "user_id",
    "mlflow.parentRunId": "parent_run_id",
}

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
    if entity == "tag" and key in _SYSTEM_TAG_ATTRIBUTES:
        return "attribute", _SYSTEM_TAG_ATTRIBUTES[key]
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
