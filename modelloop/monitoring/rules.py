"""Alert rules: a comparison of one stored monitor metric with a threshold.

A monitor stores, per window, a flat mapping of metric names to numbers, where a
name is ``metric`` or ``metric[column]``. A rule reads such a mapping::

    dataset_drift_share > 0.3
    accuracy < 0.8
    missing_share[age] > 0.05
    missing_share[*] > 0.05     # every column that has the metric, one alert each

Each evaluation of a rule on a window gives an outcome per *alert key*: the rule's
expression with the wildcard replaced by the column (``missing_share[age] > 0.05``).
The key is what an open alert is deduplicated on, so it depends only on what the
rule tests (not on its name or severity): renaming a rule or changing its severity
keeps its open alerts, changing its threshold starts new ones.

A metric absent from a window, or NaN, gives an outcome with ``holds=None`` (no
data), which must neither fire nor resolve anything: labels arrive late, so
``accuracy`` is missing from recent windows long after an alert on it fired.
"""

from __future__ import annotations

import math
import numbers
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import yaml

from modelloop.errors import InvalidArgument, NotFound

__all__ = [
    "DEFAULT_RULES",
    "OPERATORS",
    "SEVERITIES",
    "Operator",
    "Rule",
    "RuleOutcome",
    "Severity",
    "check_severity",
    "evaluate_rules",
    "load_rules",
]

Operator = Literal[">", ">=", "<", "<=", "==", "!="]
Severity = Literal["info", "warning", "critical"]

#: The comparison operators a rule may use.
OPERATORS: tuple[Operator, ...] = (">", ">=", "<", "<=", "==", "!=")
#: Severities, least severe first.
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "critical")

WILDCARD = "*"
_MAX_NAME = 200

# The column part is greedy and may hold anything (column names are user data,
# spaces and brackets included); backtracking makes it end at the last "]" that
# is followed by an operator, so "x[a]b] > 1" reads column "a]b".
_EXPRESSION = re.compile(
    r"\s*(?P<metric>[A-Za-z_][A-Za-z0-9_.]*)"
    r"(?:\[(?P<column>.+)\])?"
    r"\s*(?P<op>>=|<=|==|!=|>|<)"
    r"\s*(?P<threshold>\S+)\s*",
    re.DOTALL,
)
_METRIC = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_DICT_KEYS = frozenset(
    {"name", "rule", "severity", "for_windows", "metric", "column", "op", "threshold"}
)
_STRUCTURED_KEYS = ("metric", "column", "op", "threshold")


def _format_threshold(value: float) -> str:
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def _parse_threshold(text: Any, where: str) -> float:
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise InvalidArgument(f"{where}: threshold {text!r} is not a number")
    try:
        value = float(text)
    except ValueError:
        raise InvalidArgument(f"{where}: threshold {text!r} is not a number") from None
    if not math.isfinite(value):
        raise InvalidArgument(f"{where}: threshold {text!r} must be a finite number")
    return value


def check_severity(severity: Any, where: str = "alert") -> Severity:
    """``severity`` normalised (``"Critical"`` -> ``"critical"``); an unknown one
    raises :class:`InvalidArgument` prefixed with ``where``."""
    if isinstance(severity, str) and severity.strip().lower() in SEVERITIES:
        return cast(Severity, severity.strip().lower())
    raise InvalidArgument(
        f"{where}: unknown severity {severity!r}; expected one of {', '.join(SEVERITIES)}"
    )


def _check_for_windows(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgument(f"{where}: for_windows must be an integer >= 1, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Rule:
    """Fire when ``metric`` (of ``column``, ``*`` for every column, ``None`` for a
    metric without column) compares true with ``threshold`` through ``op`` in
    ``for_windows`` consecutive windows that have data.

    Build one with :meth:`parse` or :meth:`from_dict`; the constructor checks the
    same things, so an invalid rule cannot exist.
    """

    name: str
    metric: str
    column: str | None
    op: Operator
    threshold: float
    severity: Severity = "warning"
    for_windows: int = 1

    def __post_init__(self) -> None:
        where = f"rule {self.name!r}" if isinstance(self.name, str) else "rule"
        if not isinstance(self.name, str) or not self.name.strip():
            raise InvalidArgument(f"{where}: name must be a non-empty string")
        object.__setattr__(self, "name", self.name.strip())
        if len(self.name) > _MAX_NAME:
            raise InvalidArgument(f"{where}: name is longer than {_MAX_NAME} characters")
        if not isinstance(self.metric, str) or not _METRIC.fullmatch(self.metric):
            raise InvalidArgument(
                f"{where}: metric {self.metric!r} must be a name of letters, digits, '_' and '.'"
            )
        if self.column is not None and (not isinstance(self.column, str) or not self.column):
            raise InvalidArgument(f"{where}: column must be a non-empty string or None")
        if self.op not in OPERATORS:
            raise InvalidArgument(
                f"{where}: unknown operator {self.op!r}; expected one of {' '.join(OPERATORS)}"
            )
        object.__setattr__(self, "threshold", _parse_threshold(self.threshold, where))
        object.__setattr__(self, "severity", check_severity(self.severity, where))
        _check_for_windows(self.for_windows, where)

    @classmethod
    def parse(
        cls,
        expression: str,
        *,
        severity: str = "warning",
        name: str | None = None,
        for_windows: int = 1,
    ) -> Rule:
        """A rule from its text, e.g. ``"missing_share[age] > 0.05"``; ``name``
        defaults to the normalised expression."""
        if not isinstance(expression, str):
            raise InvalidArgument(f"a rule expression must be a string, got {expression!r}")
        match = _EXPRESSION.fullmatch(expression)
        if match is None:
            raise InvalidArgument(
                f"rule {expression.strip()!r} is not of the form 'metric OP number' or "
                f"'metric[column] OP number' with OP one of {' '.join(OPERATORS)}"
            )
        where = f"rule {expression.strip()!r}"
        threshold = _parse_threshold(match["threshold"], where)
        op = cast(Operator, match["op"])
        column = match["column"]
        if name is None:
            name = _key(match["metric"], column, op, threshold)
        elif not isinstance(name, str):
            raise InvalidArgument(f"{where}: name must be a string, got {name!r}")
        return cls(
            name=name.strip(),
            metric=match["metric"],
            column=column,
            op=op,
            threshold=threshold,
            severity=check_severity(severity, where),
            for_windows=_check_for_windows(for_windows, where),
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Rule:
        """A rule from the form :meth:`to_dict` writes, or from the short form of a
        rules file (``{"rule": "accuracy < 0.8", "severity": "critical"}``).

        When both the expression and the structured fields are given they must agree.
        """
        if not isinstance(data, Mapping):
            raise InvalidArgument(f"a rule must be a mapping or a string, got {data!r}")
        where = f"rule {data.get('name') or data.get('rule') or dict(data)!r}"
        unknown = sorted(str(k) for k in data if k not in _DICT_KEYS)
        if unknown:
            raise InvalidArgument(
                f"{where}: unknown key(s) {', '.join(unknown)}; "
                f"allowed: {', '.join(sorted(_DICT_KEYS))}"
            )
        severity = data.get("severity", "warning")
        for_windows = data.get("for_windows", 1)
        name = data.get("name")
        if "rule" in data:
            rule = cls.parse(data["rule"], severity=severity, name=name, for_windows=for_windows)
            for field in _STRUCTURED_KEYS:
                given = data.get(field)
                if field == "threshold" and field in data:
                    given = _parse_threshold(given, where)
                if field in data and given != getattr(rule, field):
                    raise InvalidArgument(
                        f"{where}: {field} {data[field]!r} disagrees with the expression "
                        f"{data['rule']!r}"
                    )
            return rule
        missing = [f for f in ("metric", "op", "threshold") if f not in data]
        if missing:
            raise InvalidArgument(f"{where}: needs 'rule' (an expression) or {', '.join(missing)}")
        threshold = _parse_threshold(data["threshold"], where)
        if name is None:
            name = _key(data["metric"], data.get("column"), data["op"], threshold)
        return cls(
            name=name,
            metric=data["metric"],
            column=data.get("column"),
            op=data["op"],
            threshold=threshold,
            severity=severity,
            for_windows=for_windows,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (for storing with a monitor); :meth:`from_dict` reads it back."""
        return {
            "name": self.name,
            "rule": self.expression,
            "metric": self.metric,
            "column": self.column,
            "op": self.op,
            "threshold": self.threshold,
            "severity": self.severity,
            "for_windows": self.for_windows,
        }

    @property
    def expression(self) -> str:
        """The normalised text of the rule (``missing_share[*] > 0.05``)."""
        return _key(self.metric, self.column, self.op, self.threshold)

    @property
    def is_wildcard(self) -> bool:
        """Whether the rule applies to every column that has the metric."""
        return self.column == WILDCARD

    def key_for(self, column: str | None) -> str:
        """The alert key of this rule for one column (the expanded wildcard)."""
        return _key(self.metric, column, self.op, self.threshold)

    def owns_key(self, key: str) -> bool:
        """Whether ``key`` is an alert key this rule produces (for some column)."""
        if not self.is_wildcard:
            return key == self.expression
        head = f"{self.metric}["
        tail = f"] {self.op} {_format_threshold(self.threshold)}"
        return len(key) > len(head) + len(tail) and key.startswith(head) and key.endswith(tail)

    def holds(self, value: float) -> bool:
        """Whether the condition holds for ``value``."""
        t = self.threshold
        match self.op:
            case ">":
                return value > t
            case ">=":
                return value >= t
            case "<":
                return value < t
            case "<=":
                return value <= t
            case "==":
                return value == t
            case "!=":
                return value != t


def _key(metric: str, column: str | None, op: str, threshold: float) -> str:
    target = metric if column is None else f"{metric}[{column}]"
    return f"{target} {op} {_format_threshold(threshold)}"


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    """One rule on one window for one alert key. ``holds`` is ``None`` when the
    window has no (finite) value for the metric: such an outcome changes nothing."""

    rule: Rule
    key: str
    column: str | None
    value: float | None
    holds: bool | None


#: Rules worth starting with when a monitor is created without any. More than half
#: the columns drifting is rarely noise, hence a warning rather than critical.
DEFAULT_RULES: tuple[Rule, ...] = (
    Rule.parse("dataset_drift_share >= 0.5", severity="warning", name="dataset drift"),
    Rule.parse(
        "signature_violation_share > 0.05", severity="critical", name="signature violations"
    ),
)


def _metric_value(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if not isinstance(value, numbers.Real):
        raise InvalidArgument(f"metric {name!r} has a non-numeric value {value!r}")
    number = float(value)
    return None if math.isnan(number) else number


def evaluate_rules(rules: Iterable[Rule], metrics: Mapping[str, Any]) -> list[RuleOutcome]:
    """Every rule on one window's metrics: one outcome per rule, or per matching
    column for a wildcard rule (a wildcard rule matching no column gives one no-data
    outcome keyed by its expression). Columns come in sorted order."""
    if not isinstance(metrics, Mapping):
        raise InvalidArgument(f"metrics must be a mapping of names to numbers, got {metrics!r}")
    by_metric: dict[str, list[tuple[str, Any]]] = {}
    for name, value in metrics.items():
        if not isinstance(name, str):
            raise InvalidArgument(f"metric names must be strings, got {name!r}")
        base, bracket, rest = name.partition("[")
        if bracket and rest.endswith("]") and len(rest) > 1:
            by_metric.setdefault(base, []).append((rest[:-1], value))

    outcomes: list[RuleOutcome] = []
    owner: dict[str, Rule] = {}
    for rule in rules:
        if not isinstance(rule, Rule):
            raise InvalidArgument(f"expected a Rule, got {rule!r}")
        mine: list[RuleOutcome] = []
        if rule.is_wildcard:
            for column, raw in sorted(by_metric.get(rule.metric, [])):
                value = _metric_value(f"{rule.metric}[{column}]", raw)
                holds = None if value is None else rule.holds(value)
                mine.append(RuleOutcome(rule, rule.key_for(column), column, value, holds))
            if not mine:
                mine.append(RuleOutcome(rule, rule.expression, WILDCARD, None, None))
        else:
            name = rule.metric if rule.column is None else f"{rule.metric}[{rule.column}]"
            value = _metric_value(name, metrics.get(name))
            holds = None if value is None else rule.holds(value)
            mine.append(RuleOutcome(rule, rule.expression, rule.column, value, holds))
        for outcome in mine:
            other = owner.get(outcome.key)
            if other is not None:
                raise InvalidArgument(
                    f"rules {other.name!r} and {rule.name!r} both test {outcome.key!r}"
                )
            owner[outcome.key] = rule
        outcomes.extend(mine)
    return outcomes


def _rules_from_document(document: Any, source: str) -> list[Rule]:
    if isinstance(document, Mapping):
        extra = sorted(str(k) for k in document if k != "rules")
        if extra:
            raise InvalidArgument(f"{source}: unknown top-level key(s) {', '.join(extra)}")
        if "rules" not in document:
            raise InvalidArgument(f"{source}: expected a top-level 'rules' list")
        document = document["rules"]
    if document is None:
        return []
    if isinstance(document, str):
        document = [document]
    if not isinstance(document, Sequence):
        raise InvalidArgument(f"{source}: 'rules' must be a list, got {type(document).__name__}")
    rules: list[Rule] = []
    for index, item in enumerate(document, start=1):
        try:
            if isinstance(item, Rule):
                rules.append(item)
            elif isinstance(item, str):
                rules.append(Rule.parse(item))
            elif isinstance(item, Mapping):
                rules.append(Rule.from_dict(item))
            else:
                raise InvalidArgument(f"expected a string or a mapping, got {item!r}")
        except InvalidArgument as exc:
            raise InvalidArgument(f"{source}: rule #{index}: {exc.message}") from None
    _check_distinct(rules, source)
    return rules


def _check_distinct(rules: Sequence[Rule], source: str) -> None:
    names: dict[str, Rule] = {}
    for rule in rules:
        if rule.name in names:
            raise InvalidArgument(f"{source}: two rules are named {rule.name!r}")
        names[rule.name] = rule
    # Two rules testing the same key would fight over one open alert; a wildcard
    # and a rule on one of its columns collide only for that column, which is
    # still one alert with two severities.
    for i, a in enumerate(rules):
        for b in rules[i + 1 :]:
            same_test = (a.metric, a.op, a.threshold) == (b.metric, b.op, b.threshold)
            if not same_test:
                continue
            if a.column == b.column or (
                {a.column, b.column} & {WILDCARD} and None not in {a.column, b.column}
            ):
                raise InvalidArgument(
                    f"{source}: rules {a.name!r} and {b.name!r} test the same metric the "
                    f"same way ({a.expression} / {b.expression})"
                )


def load_rules(source: str | os.PathLike[str] | Sequence[Any] | Mapping[str, Any]) -> list[Rule]:
    """Rules from a YAML file (a path, or a string naming an existing ``.yaml``/
    ``.yml`` file), YAML text, a list of expressions / mappings / :class:`Rule`,
    or a ``{"rules": [...]}`` mapping. Validation is strict: an unknown key, a bad
    operator, a non-numeric threshold, an unknown severity, two rules with one
    name or testing one key each raise :class:`InvalidArgument` naming the rule."""
    if isinstance(source, os.PathLike) or (
        isinstance(source, str)
        and "\n" not in source
        and (source.strip().endswith((".yaml", ".yml")) or Path(source).is_file())
    ):
        path = Path(os.fspath(source))
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise NotFound(f"rules file {str(path)!r} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidArgument(f"cannot read rules file {str(path)!r}: {exc}") from None
        return _rules_from_document(_load_yaml(text, str(path)), str(path))
    if isinstance(source, str):
        return _rules_from_document(_load_yaml(source, "rules"), "rules")
    if isinstance(source, Mapping | Sequence) and not isinstance(source, bytes | bytearray):
        return _rules_from_document(source, "rules")
    raise InvalidArgument(f"cannot read rules from {type(source).__name__}")


def _load_yaml(text: str, source: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidArgument(f"{source}: not valid YAML: {exc}") from None
