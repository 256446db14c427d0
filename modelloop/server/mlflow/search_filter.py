"""MLflow's search filters for the registry and logged models, evaluated in memory.

``registered-models/search``, ``model-versions/search`` and ``logged-models/search``
take filters such as ``name = 'iris' AND tags.team = 'vision'``: comparisons joined
by ``AND``; an identifier is an attribute (optionally ``attribute.``-prefixed),
``tags.<key>`` or ``params.<key>`` (a key with spaces in backticks or double quotes);
string comparators are ``=``, ``!=``, ``LIKE``, ``ILIKE`` and ``IN (...)``, numeric
ones ``= != < <= > >=``. Each search declares which attributes it knows. Registries
and logged models are small next to runs, so the candidates are filtered, ordered
and paged here rather than in SQL; page tokens are opaque offsets.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import re
from collections.abc import Callable, Collection, Sequence
from typing import Any, TypeVar

from modelloop.server.mlflow.errors import MlflowError

__all__ = [
    "bad_filter",
    "tokenize",
    "unquote",
    "Comparison",
    "OrderTerm",
    "like",
    "matches",
    "page",
    "parse_filter",
    "parse_order_by",
    "sort",
]

T = TypeVar("T")

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<quoted>`[^`]*`)
      | (?P<op>!=|<=|>=|=|<|>)
      | (?P<punct>[(),])
      | (?P<num>[+-]?\d+(?![\w.]))
      | (?P<word>[A-Za-z_][\w.\-]*)
    )""",
    re.VERBOSE,
)
_ATTR_PREFIXES = ("attribute.", "attributes.", "attr.")
_KIND_PREFIXES = {"tags.": "tag", "tag.": "tag", "params.": "param", "param.": "param"}
_STRING_OPS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")
_NUMBER_OPS = ("=", "!=", "<", "<=", ">", ">=")


@dataclasses.dataclass(frozen=True, slots=True)
class Comparison:
    """One condition: ``kind`` is ``attr``, ``tag`` or ``param``."""

    kind: str
    key: str
    op: str
    value: str | int | tuple[str, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class OrderTerm:
    """One order-by term: a known key and its direction."""

    key: str
    ascending: bool


def bad_filter(text: str, why: str) -> MlflowError:
    """MLflow's 400 for a filter string that does not parse."""
    return MlflowError(f"Invalid filter string {text[:200]!r}: {why}")


def tokenize(text: str) -> list[tuple[str, str]]:
    """A filter string as (kind, text) tokens: str, quoted, op, punct, num, word."""
    out: list[tuple[str, str]] = []
    pos = 0
    while text[pos:].strip():
        m = _TOKEN.match(text, pos)
        if m is None or m.lastgroup is None:
            raise bad_filter(text, f"unexpected {text[pos:].strip()[:20]!r}")
        out.append((m.lastgroup, m.group(m.lastgroup)))
        pos = m.end()
    return out


def unquote(token: str) -> str:
    """The content of a quoted string or a backquoted identifier."""
    body = token[1:-1]
    return re.sub(r"\\(.)", r"\1", body) if token[0] != "`" else body


class _Parser:
    def __init__(
        self, text: str, strings: Collection[str], numbers: Collection[str], kinds: Collection[str]
    ) -> None:
        self.text = text
        self.toks = tokenize(text)
        self.i = 0
        self.strings = strings
        self.numbers = numbers
        self.kinds = kinds

    def take(self, what: str) -> tuple[str, str]:
        if self.i >= len(self.toks):
            raise bad_filter(self.text, f"{what} is missing")
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def identifier(self) -> tuple[str, str]:
        kind, word = self.take("an identifier")
        if kind == "quoted":
            word = unquote(word)
        elif kind != "word":
            raise bad_filter(self.text, f"expected an identifier, got {word!r}")
        lower = word.lower()
        for prefix, entity in _KIND_PREFIXES.items():
            if lower.startswith(prefix) and entity in self.kinds:
                key = word[len(prefix) :]
                if (
                    not key
                    and self.i < len(self.toks)
                    and self.toks[self.i][0] in ("quoted", "str")
                ):
                    key = unquote(self.take("a key")[1])
                if not key:
                    raise bad_filter(self.text, f"a key is missing after {word!r}")
                return entity, key
        for prefix in _ATTR_PREFIXES:
            lower = lower.removeprefix(prefix)
        if lower not in (*self.strings, *self.numbers):
            known = ", ".join(sorted((*self.strings, *self.numbers)))
            raise bad_filter(self.text, f"invalid attribute {word!r}; use one of {known}")
        return "attr", lower

    def operator(self) -> str:
        kind, word = self.take("an operator")
        op = word.upper()
        if op == "NOT":
            nxt = self.take("an operator")[1].upper()
            op = f"NOT {nxt}"
        if kind not in ("op", "word") or op not in (*_STRING_OPS, *_NUMBER_OPS):
            raise bad_filter(self.text, f"invalid comparator {word!r}")
        return op

    def values(self) -> tuple[str, ...]:
        if self.take("'('")[1] != "(":
            raise bad_filter(self.text, "IN takes a parenthesised list of quoted strings")
        out: list[str] = []
        while True:
            kind, raw = self.take("a value")
            if kind != "str":
                raise bad_filter(self.text, f"IN takes quoted strings, got {raw!r}")
            out.append(unquote(raw))
            sep = self.take("')'")[1]
            if sep == ")":
                return tuple(out)
            if sep != ",":
                raise bad_filter(self.text, f"expected ',' or ')', got {sep!r}")

    def comparison(self) -> Comparison:
        kind, key = self.identifier()
        op = self.operator()
        numeric = kind == "attr" and key in self.numbers
        if op not in (_NUMBER_OPS if numeric else _STRING_OPS):
            raise bad_filter(self.text, f"invalid comparator {op!r} for {key!r}")
        if op in ("IN", "NOT IN"):
            return Comparison(kind, key, op, self.values())
        vkind, raw = self.take("a value")
        number = raw if vkind == "num" else unquote(raw).strip() if vkind == "str" else ""
        if numeric and number.lstrip("+-").isdigit():
            return Comparison(kind, key, op, int(number))
        if not numeric and vkind == "str":
            return Comparison(kind, key, op, unquote(raw))
        expected = "an integer" if numeric else "a quoted string"
        raise bad_filter(self.text, f"the value of {key!r} must be {expected}, got {raw!r}")


def parse_filter(
    text: str | None,
    strings: Collection[str],
    numbers: Collection[str] = (),
    kinds: Collection[str] = ("tag",),
) -> list[Comparison]:
    """The comparisons of a filter (all must hold). ``strings`` and ``numbers`` are
    the attributes the search knows; ``kinds`` the key-value families (``tag``, ``param``)."""
    if not text or not text.strip():
        return []
    parser = _Parser(text, strings, numbers, kinds)
    out = [parser.comparison()]
    while parser.i < len(parser.toks):
        kind, word = parser.take("AND")
        if kind != "word" or word.upper() != "AND" or parser.i == len(parser.toks):
            raise bad_filter(text, f"expected AND between comparisons, got {word!r}")
        out.append(parser.comparison())
    return out


def like(pattern: str, ignore_case: bool = False) -> re.Pattern[str]:
    """A SQL LIKE pattern (``%``, ``_``) as a regular expression to ``fullmatch``."""
    parts = [".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), (re.IGNORECASE if ignore_case else 0) | re.DOTALL)


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def matches(c: Comparison, actual: str | int | None) -> bool:
    """Whether a value satisfies a comparison. A missing value (an absent tag) only
    satisfies ``!=`` and ``NOT IN``, as in MLflow's registry: its 3.x client hides
    prompts from every registry search with ``tag.`mlflow.prompt.is_prompt` != 'true'``,
    which must keep the models that have no such tag."""
    if actual is None:
        return c.op in ("!=", "NOT IN")
    if c.op in ("IN", "NOT IN"):
        assert isinstance(c.value, tuple)
        return (str(actual) in c.value) == (c.op == "IN")
    if c.op in ("LIKE", "ILIKE"):
        return like(str(c.value), c.op == "ILIKE").fullmatch(str(actual)) is not None
    if isinstance(c.value, int) != isinstance(actual, int):
        return False
    return _COMPARE[c.op](actual, c.value)


def parse_order_by(order_by: Sequence[str], keys: Collection[str]) -> list[OrderTerm]:
    """Order-by terms like ``name ASC``; each key must be one of ``keys``."""
    terms = []
    for term in order_by:
        words = term.split()
        key = words[0].lower() if words else ""
        for prefix in _ATTR_PREFIXES:
            key = key.removeprefix(prefix)
        direction = words[1].upper() if len(words) == 2 else "ASC"
        if len(words) not in (1, 2) or key not in keys or direction not in ("ASC", "DESC"):
            raise MlflowError(
                f"Invalid order_by clause {term[:100]!r}: order by one of "
                f"{', '.join(sorted(keys))} with ASC or DESC"
            )
        terms.append(OrderTerm(key, direction == "ASC"))
    return terms


def sort(items: Sequence[T], terms: Sequence[OrderTerm], value: Callable[[T, str], Any]) -> list[T]:
    """``items`` (already in their tie-breaking order) stably sorted by ``terms``."""
    out = list(items)
    for term in reversed(terms):
        out.sort(key=lambda item: value(item, term.key), reverse=not term.ascending)
    return out


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise MlflowError(f"Invalid page token {token[:60]!r}") from None
    if type(offset) is not int or offset < 0:
        raise MlflowError(f"Invalid page token {token[:60]!r}")
    return offset


def page(
    items: Sequence[T], max_results: int, token: str | None, limit: int
) -> tuple[list[T], str | None]:
    """One page of ``items`` from ``token``'s offset, and the next page's token."""
    if not 1 <= max_results <= limit:
        raise MlflowError(
            f"Invalid value {max_results} for parameter 'max_results' supplied: "
            f"it must be between 1 and {limit}"
        )
    start = _offset(token)
    found = list(items[start : start + max_results])
    end = start + len(found)
    if end >= len(items):
        return found, None
    return found, base64.urlsafe_b64encode(json.dumps({"offset": end}).encode()).decode()
