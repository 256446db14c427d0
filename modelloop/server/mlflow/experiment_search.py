"""MLflow's experiment search: filter, order and page a list of experiments.

Filters follow MLflow's ``SearchExperimentsUtils``: comparisons joined by ``AND``
on ``name`` (``=``, ``!=``, ``LIKE``, ``ILIKE``), ``tags.<key>`` (the same), and
``creation_time`` / ``last_update_time`` (``=``, ``!=``, ``<``, ``<=``, ``>``,
``>=``). Attributes may be written ``attribute.name``; a key with spaces is
quoted with backticks or double quotes. Order-by terms name ``name``,
``experiment_id``, ``creation_time`` or ``last_update_time`` with an optional
``ASC``/``DESC``; the default is newest first. Experiments are few, so this runs
over the whole list in memory.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from modelloop.entities import Experiment
from modelloop.server.mlflow.errors import MlflowError
from modelloop.server.mlflow.search_filter import bad_filter, tokenize, unquote

__all__ = ["MAX_RESULTS", "search_experiments"]

MAX_RESULTS = 50_000

_ATTR_PREFIXES = ("attribute.", "attributes.", "attr.")
_TAG_PREFIXES = ("tags.", "tag.")
_STRING_ATTRS = ("name",)
_TIME_ATTRS = ("creation_time", "last_update_time")
_ORDER_KEYS = ("name", "experiment_id", "creation_time", "last_update_time")
_STRING_OPS = ("=", "!=", "LIKE", "ILIKE")
_NUMBER_OPS = ("=", "!=", "<", "<=", ">", ">=")


@dataclasses.dataclass(frozen=True, slots=True)
class _Comparison:
    kind: str  # "attr" or "tag"
    key: str
    op: str
    value: str | int


def _identifier(text: str, toks: list[tuple[str, str]], i: int) -> tuple[str, str, int]:
    kind, word = toks[i]
    if kind != "word":
        raise bad_filter(text, f"expected an attribute or tags.<key>, got {word!r}")
    lower = word.lower()
    for prefix in _TAG_PREFIXES:
        if lower.startswith(prefix):
            key = word[len(prefix) :]
            if not key and i + 1 < len(toks) and toks[i + 1][0] in ("quoted", "str"):
                return "tag", unquote(toks[i + 1][1]), i + 2
            if not key:
                raise bad_filter(text, "a tag key is missing after 'tags.'")
            return "tag", key, i + 1
    for prefix in _ATTR_PREFIXES:
        if lower.startswith(prefix):
            lower = lower[len(prefix) :]
            break
    if lower not in (*_STRING_ATTRS, *_TIME_ATTRS):
        raise bad_filter(
            text, f"invalid attribute {word!r}; use name, creation_time, last_update_time"
        )
    return "attr", lower, i + 1


def parse_filter(text: str | None) -> list[_Comparison]:
    """The comparisons of an experiment filter (all must hold)."""
    if not text or not text.strip():
        return []
    toks = tokenize(text)
    out: list[_Comparison] = []
    i = 0
    while True:
        kind, key, i = _identifier(text, toks, i)
        if i >= len(toks):
            raise bad_filter(text, "a comparison is missing its operator")
        op = toks[i][1].upper()
        numeric = kind == "attr" and key in _TIME_ATTRS
        if op not in (_NUMBER_OPS if numeric else _STRING_OPS):
            raise bad_filter(text, f"invalid comparator {toks[i][1]!r} for {key!r}")
        if i + 1 >= len(toks):
            raise bad_filter(text, "a comparison is missing its value")
        vkind, raw = toks[i + 1]
        if numeric and vkind == "num":
            out.append(_Comparison(kind, key, op, int(raw)))
        elif not numeric and vkind == "str":
            out.append(_Comparison(kind, key, op, unquote(raw)))
        else:
            expected = "an integer" if numeric else "a quoted string"
            raise bad_filter(text, f"the value of {key!r} must be {expected}, got {raw!r}")
        i += 2
        if i == len(toks):
            return out
        if toks[i][0] != "word" or toks[i][1].upper() != "AND" or i + 1 == len(toks):
            raise bad_filter(text, f"expected AND between comparisons, got {toks[i][1]!r}")
        i += 1


def _like(pattern: str, flags: int) -> re.Pattern[str]:
    parts = [".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), flags | re.DOTALL)


def _matches(exp: Experiment, c: _Comparison) -> bool:
    if c.kind == "tag":
        if c.key not in exp.tags:
            return False
        actual: str | int = exp.tags[c.key]
    elif c.key == "name":
        actual = exp.name
    else:
        actual = exp.creation_time if c.key == "creation_time" else exp.last_update_time
    if c.op in ("LIKE", "ILIKE"):
        flags = re.IGNORECASE if c.op == "ILIKE" else 0
        return _like(str(c.value), flags).fullmatch(str(actual)) is not None
    ops: dict[str, Callable[[Any, Any], bool]] = {
        "=": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }
    return ops[c.op](actual, c.value)


def _sort(found: list[Experiment], order_by: Sequence[str]) -> list[Experiment]:
    terms: list[tuple[str, bool]] = []
    for term in order_by:
        words = term.split()
        if not words or len(words) > 2:
            raise MlflowError(f"Invalid order_by clause {term!r}")
        key = words[0].lower()
        for prefix in _ATTR_PREFIXES:
            key = key.removeprefix(prefix)
        direction = words[1].upper() if len(words) == 2 else "ASC"
        if key not in _ORDER_KEYS or direction not in ("ASC", "DESC"):
            raise MlflowError(
                f"Invalid order_by clause {term!r}: order by one of {', '.join(_ORDER_KEYS)} "
                "with ASC or DESC"
            )
        terms.append((key, direction == "ASC"))
    if not terms:
        terms = [("creation_time", False)]
    out = sorted(found, key=lambda e: int(e.experiment_id))  # the final tie-breaker
    for key, ascending in reversed(terms):
        if key == "experiment_id":
            out.sort(key=lambda e: int(e.experiment_id), reverse=not ascending)
        else:
            out.sort(key=lambda e, k=key: getattr(e, k), reverse=not ascending)  # type: ignore[misc]
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


def search_experiments(
    experiments: Sequence[Experiment],
    filter_string: str | None,
    order_by: Sequence[str],
    max_results: int,
    page_token: str | None,
) -> tuple[list[Experiment], str | None]:
    """One page of the experiments matching ``filter_string``, and the next page's token."""
    if not 1 <= max_results <= MAX_RESULTS:
        raise MlflowError(
            f"Invalid value {max_results} for parameter 'max_results' supplied: "
            f"it must be between 1 and {MAX_RESULTS}"
        )
    comparisons = parse_filter(filter_string)
    found = [e for e in experiments if all(_matches(e, c) for c in comparisons)]
    ordered = _sort(found, order_by)
    start = _offset(page_token)
    page = ordered[start : start + max_results]
    end = start + len(page)
    token = None
    if end < len(ordered):
        token = base64.urlsafe_b64encode(json.dumps({"offset": end}).encode()).decode()
    return page, token
