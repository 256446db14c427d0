"""The checks a promotion policy is made of, and the result each gives.

Each check is a pydantic dataclass (so constructing one validates its fields) with a
``kind`` (its key in a policy's YAML), a human-readable ``name``, ``to_dict`` and
``evaluate``. :data:`CHECK_TYPES` maps kinds to classes; :func:`check_from_dict`
builds a check from its YAML form. :mod:`modelloop.registry.gates` assembles them
into policies and verdicts.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import ConfigDict, Field, StringConstraints, ValidationError, field_validator
from pydantic.dataclasses import dataclass

from modelloop.errors import InvalidArgument
from modelloop.registry.evaluation import HIGHER_IS_BETTER, EvaluationResult

__all__ = [
    "CHECK_TYPES",
    "BeatsChampion",
    "Check",
    "CheckResult",
    "GateInputs",
    "LatencyBudget",
    "MaxModelSize",
    "MetricThreshold",
    "SchemaCompatible",
    "SliceGap",
    "check_from_dict",
    "format_number",
    "format_size",
    "parse_size",
    "schema_problems",
]


def format_number(value: float | None) -> str:
    """A number for humans (6 significant digits; ``—`` for None)."""
    if value is None:
        return "—"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


_fmt = format_number


def _nan_safe(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: the candidate's ``value``, the champion's ``baseline``
    (when compared), the ``threshold`` it was held to and a human ``detail``."""

    name: str
    kind: str
    passed: bool
    value: float | None
    baseline: float | None
    threshold: str | float | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (NaN values become null)."""
        data = dataclasses.asdict(self)
        data["value"], data["baseline"] = _nan_safe(self.value), _nan_safe(self.baseline)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckResult:
        """The inverse of :meth:`to_dict`."""
        try:
            return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls)})
        except KeyError as exc:
            raise InvalidArgument(f"check result is missing {exc.args[0]!r}") from exc


@dataclasses.dataclass(frozen=True)
class GateInputs:
    """What the gates know about one model version: its evaluation on the policy's
    dataset, its signature dict, its size in bytes and its version label."""

    evaluation: EvaluationResult | None
    signature: dict[str, Any] | None
    size_bytes: int | None
    version: str


# --- checks -----------------------------------------------------------------------------

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4}


def parse_size(value: Any, what: str = "size") -> int:
    """Bytes from an int or a human string: ``"50MB"`` (10^6), ``"1.5 GiB"`` (2^30)."""
    match = _SIZE_RE.match(value) if isinstance(value, str) else None
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if number and math.isfinite(value) and value >= 0:
        return int(round(value))  # noqa: RUF046
    if match is None:
        raise InvalidArgument(f"{what} must be a byte count or a size like '50MB', got {value!r}")
    unit = (match.group(2) or "").lower().rstrip("b")
    factor = 1024 ** ("kmgt".index(unit[0]) + 1) if unit.endswith("i") else _SIZE_UNITS[unit]
    return round(float(match.group(1)) * factor)


def format_size(size: float) -> str:
    """A byte count in decimal units: ``50.0 MB``."""
    if size < 1000:
        return f"{int(size)} B"
    for unit in ("KB", "MB", "GB", "TB"):
        size /= 1000
        if size < 1000 or unit == "TB":
            break
    return f"{size:.1f} {unit}"


def _metric(inputs: GateInputs, metric: str) -> float | None:
    value = None if inputs.evaluation is None else inputs.evaluation.metrics.get(metric)
    return None if value is None else float(value)


_STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
Metric = Annotated[str, StringConstraints(min_length=1)]


class Check:
    """Base class of the policy checks; :data:`CHECK_TYPES` maps ``kind`` to class.

    Subclasses are pydantic dataclasses, so construction validates every field."""

    kind: ClassVar[str]

    @property
    def name(self) -> str:
        """A human-readable name, e.g. ``accuracy >= 0.8``."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """``{kind: {field: value}}``, the form a policy's ``checks`` list holds."""
        params = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        return {self.kind: {k: v for k, v in params.items() if v is not None}}

    @classmethod
    def from_params(cls, params: Any) -> Check:
        """The check from its (YAML) parameters; InvalidArgument names a bad field."""
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            raise InvalidArgument(f"{cls.kind}: parameters must be a mapping, got {params!r}")
        try:
            check: Check = cls(**params)
        except TypeError as exc:
            raise InvalidArgument(f"{cls.kind}: bad parameters {dict(params)!r}: {exc}") from exc
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(map(str, err["loc"])) or "?"
            raise InvalidArgument(f"{cls.kind}: field '{field}': {err['msg']}") from exc
        return check

    def evaluate(self, cand: GateInputs, champ: GateInputs | None, alias: str) -> CheckResult:
        """Run the check on the candidate (and the alias's current holder, if any)."""
        raise NotImplementedError

    def _result(
        self,
        passed: bool,
        detail: str,
        value: float | None = None,
        baseline: float | None = None,
        threshold: str | float | None = None,
    ) -> CheckResult:
        return CheckResult(self.name, self.kind, passed, value, baseline, threshold, detail)

    def _missing(self, metric: str, inputs: GateInputs, whose: str = "candidate") -> CheckResult:
        if inputs.evaluation is None:
            detail = f"the {whose} was not evaluated (the policy names no evaluation dataset)"
            return self._result(False, f"{detail}, so '{metric}' is unknown")
        return self._result(False, f"metric '{metric}' is missing from the {whose}'s evaluation")


@dataclass(frozen=True, config=_STRICT)
class MetricThreshold(Check):
    """The candidate's overall ``metric`` lies within ``[min, max]`` (either may be unset)."""

    metric: Metric
    min: float | None = None
    max: float | None = None
    kind: ClassVar[str] = "metric_threshold"

    def __post_init__(self) -> None:
        if self.min is None and self.max is None:
            raise InvalidArgument(f"{self.kind} on '{self.metric}' needs 'min' or 'max'")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise InvalidArgument(f"{self.kind} on '{self.metric}': min > max")

    @property
    def name(self) -> str:
        if self.min is not None and self.max is not None:
            return f"{_fmt(self.min)} <= {self.metric} <= {_fmt(self.max)}"
        if self.min is not None:
            return f"{self.metric} >= {_fmt(self.min)}"
        return f"{self.metric} <= {_fmt(self.max)}"

    def evaluate(self, cand: GateInputs, champ: GateInputs | None, alias: str) -> CheckResult:
        value = _metric(cand, self.metric)
        if value is None:
            return self._missing(self.metric, cand)
        threshold: str | float | None = self.min if self.max is None else self.max
        if self.min is not None and self.max is not None:
            threshold = f">= {_fmt(self.min)} and <= {_fmt(self.max)}"
        detail, passed = f"{self.metric} = {_fmt(value)}", False
        if math.isnan(value):
            detail += " is NaN"
        elif self.min is not None and value < self.min:
            detail += " is below the minimum"
        elif self.max is not None and value > self.max:
            detail += " is above the maximum"
        else:
            passed = True
        return self._result(passed, detail, value, None, threshold)


@dataclass(frozen=True, config=_STRICT)
class BeatsChampion(Check):
    """The candidate improves on the alias's current holder, both scored on the same data.

    The improvement is ``candidate - champion`` (``champion - candidate`` when lower is
    better). It must be ``>= min_absolute_change`` and the relative improvement
    (improvement / ``|champion|``; +/-inf when the champion is 0) ``>=
    min_relative_change``, each when set; a negative minimum tolerates a regression of
    that size. With neither set the candidate must not be worse, so a tie passes only
    when no positive minimum is set. With no current holder of the alias it passes.
    """

    metric: Metric
    min_absolute_change: float | None = None
    min_relative_change: float | None = None
    greater_is_better: bool | None = None
    kind: ClassVar[str] = "beats_champion"

    def __post_init__(self) -> None:
        if self.greater_is_better is None and self.metric not in HIGHER_IS_BETTER:
            raise InvalidArgument(
                f"{self.kind}: set 'greater_is_better' for the custom metric '{self.metric}'"
            )

    @property
    def higher_is_better(self) -> bool:
        """``greater_is_better``, defaulted from :data:`HIGHER_IS_BETTER`."""
        if self.greater_is_better is not None:
            return self.greater_is_better
        return HIGHER_IS_BETTER[self.metric]

    @property
    def name(self) -> str:
        bounds = []
        if self.min_absolute_change is not None:
            bounds.append(f">= {_fmt(self.min_absolute_change)}")
        if self.min_relative_change is not None:
            bounds.append(f">= {_fmt(self.min_relative_change * 100)}%")
        if not bounds:
            return f"{self.metric} no worse than champion"
        return f"{self.metric} beats champion by {' and '.join(bounds)}"

    def evaluate(self, cand: GateInputs, champ: GateInputs | None, alias: str) -> CheckResult:
        if champ is None:
            return self._result(True, f"no current holder of alias '{alias}'")
        value, base = _metric(cand, self.metric), _metric(champ, self.metric)
        if value is None:
            return self._missing(self.metric, cand)
        if base is None:
            return self._missing(self.metric, champ, f"champion (version {champ.version})")
        threshold: str | float = self.name.partition(" by ")[2] or ">= champion"
        if self.min_absolute_change is not None and self.min_relative_change is None:
            threshold = self.min_absolute_change
        if math.isnan(value) or math.isnan(base):
            return self._result(False, f"{self.metric} is NaN", value, base, threshold)
        gain = value - base if self.higher_is_better else base - value
        relative = gain / abs(base) if base else math.copysign(math.inf, gain) if gain else 0.0
        problems = []
        if self.min_absolute_change is not None and gain < self.min_absolute_change:
            problems.append(f"improvement {_fmt(gain)} < {_fmt(self.min_absolute_change)}")
        if self.min_relative_change is not None and relative < self.min_relative_change:
            problems.append(f"relative improvement {relative:.2%} < {self.min_relative_change:.2%}")
        if self.min_absolute_change is None and self.min_relative_change is None and gain < 0:
            problems.append("candidate is worse")
        direction = "higher" if self.higher_is_better else "lower"
        detail = f"candidate {_fmt(value)} vs champion {_fmt(base)} (version {champ.version})"
        detail += f", {direction} is better" + "".join(f"; {p}" for p in problems)
        return self._result(not problems, detail, value, base, threshold)


@dataclass(frozen=True, config=_STRICT)
class SliceGap(Check):
    """The spread of ``metric`` across the candidate's slices is at most ``max_gap``
    (slices whose value is missing or NaN are left out)."""

    metric: Metric
    max_gap: Annotated[float, Field(ge=0)]
    kind: ClassVar[str] = "slice_gap"

    @property
    def name(self) -> str:
        return f"{self.metric} slice gap <= {_fmt(self.max_gap)}"

    def evaluate(self, cand: GateInputs, champ: GateInputs | None, alias: str) -> CheckResult:
        if cand.evaluation is None:
            return self._missing(self.metric, cand)
        slices = cand.evaluation.slices
        if not slices:
            return self._result(False, "policy requires slices but the evaluation has none")
        values = {n: float(m.get(self.metric, math.nan)) for n, m in slices.items()}
        values = {n: v for n, v in values.items() if not math.isnan(v)}
        if not values:
            return self._result(False, f"metric '{self.metric}' is missing from every slice")
        low, high = min(values, key=values.__getitem__), max(values, key=values.__getitem__)
        gap = values[high] - values[low]
        detail = f"lowest '{low}' = {_fmt(values[low])}, highest '{high}' = {_fmt(values[high])}"
        return self._result(gap <= self.max_gap, detail, gap, None, self.max_gap)


_COLUMN_ALIASES = {"int": "integer", "int32": "integer", "int64": "long", "float32": "float"}
_COLUMN_ALIASES |= {"float64": "double", "bool": "boolean", "str": "string", "object": "string"}
_NUMERIC_RANK = {"integer": 0, "long": 1, "float": 2, "double": 3}


def _column_type(spec: Mapping[str, Any]) -> str:
    raw = str(spec.get("type", "")).lower()
    return _COLUMN_ALIASES.get(raw, raw)


def _tensor_problems(new: Mapping[str, Any], old: Mapping[str, Any]) -> list[str]:
    try:
        new_dtype, old_dtype = np.dtype(new["dtype"]), np.dtype(old["dtype"])
        new_shape, old_shape = list(new.get("shape") or []), list(old.get("shape") or [])
    except (KeyError, TypeError) as exc:
        return [f"malformed tensor signature: {exc}"]
    problems = []
    if not np.can_cast(old_dtype, new_dtype, casting="safe"):
        problems.append(f"tensor dtype {new_dtype} cannot accept the champion's {old_dtype}")
    if len(new_shape) != len(old_shape) or any(
        a != b and -1 not in (a, b) for a, b in zip(new_shape, old_shape, strict=True)
    ):
        problems.append(f"tensor shape {new_shape} differs from the champion's {old_shape}")
    return problems


def schema_problems(candidate: Mapping[str, Any], champion: Mapping[str, Any]) -> list[str]:
    """Why inputs the champion's signature accepted would not fit the candidate's
    (empty when compatible): a column the candidate requires that the champion lacked
    (or had as optional), or a type neither the same nor a safe widening (``integer ->
    long -> float -> double``). Tensors need a safely castable dtype and the same shape
    (``-1`` matches any size)."""
    new, old = candidate.get("inputs"), champion.get("inputs")
    if isinstance(new, Mapping) and isinstance(old, Mapping):
        return _tensor_problems(new, old)
    if not isinstance(new, list) or not isinstance(old, list):
        return ["the inputs are of different kinds (columns vs. tensor) or malformed"]
    try:
        old_cols = {str(c["name"]): c for c in old}
        new_cols = [(str(c["name"]), c) for c in new]
    except (KeyError, TypeError):
        return ["a column spec has no name"]
    problems = []
    for col, spec in new_cols:
        required, prev = bool(spec.get("required", True)), old_cols.get(col)
        if prev is None:
            if required:
                problems.append(f"column '{col}' is required but not in the champion's inputs")
            continue
        if required and not prev.get("required", True):
            problems.append(f"column '{col}' is required but was optional for the champion")
        new_t, old_t = _column_type(spec), _column_type(prev)
        rank_new, rank_old = _NUMERIC_RANK.get(new_t, -1), _NUMERIC_RANK.get(old_t, 99)
        if new_t != old_t and rank_old > rank_new:
            problems.append(f"column '{col}' changed type from {old_t} to {new_t}")
    return problems


@dataclass(frozen=True, config=_STRICT)
class SchemaCompatible(Check):
    """The candidate accepts every input the champion accepted (see :func:`schema_problems`).
    Passes with no champion, or when the champion recorded no signature."""

    kind: ClassVar[str] = "schema_compatible"

    @property
    def name(self) -> str:
        return "schema compatible with champion"

    def evaluate(self, cand: GateInputs, champ: GateInputs | None, alias: str) -> CheckResult:
        if cand.signature is None:
            return self._result(False, "candidate has no signature")
        if champ is None:
            return self._result(True, f"no current holder of alias '{alias}'")
        if champ.signature is None:
            return self._result(True, f"champion (version {champ.version}) has no signature")
        problems = schema_problems(cand.signature, champ.signature)
        detail = "; ".join(problems) or f"accepts every input of version {champ.version}"
        return self._result(not problems, detail)


@dataclass(frozen=True, config=_STRICT)
class LatencyBudget(Check):
    """The candidate's single-row latency percentiles are within budget (milliseconds)."""

    p95_ms: Annotated[float, Field(gt=0)]
    p50_ms: Annotated[float, Field(gt=0)] | None = None
    kind: ClassVar[str] = "latency_budget"

    @property
    def name(self) -> str:
        extra = "" if self.p50_ms is None else f", p50 <= {_fmt(self.p50_ms)} ms"
        return f"latency p95 <= {_fmt(self.p95_ms)} ms{extra}"

    def evaluate(self, cand: GateInputs, champ: GateInputs | None, alias: str) -> CheckResult:
        p95, p50 = _metric(cand, "latency_p95_ms"), _metric(cand, "latency_p50_ms")
        if p95 is None:
            return self._missing("latency_p95_ms", cand)
        if self.p50_ms is not None and p50 is None:
            return self._missing("latency_p50_ms", cand)
        over = [f"p95 {_fmt(p95)} ms > {_fmt(self.p95_ms)} ms"] if not p95 <= self.p95_ms else []
        if self.p50_ms is not None and p50 is not None and not p50 <= self.p50_ms:
            over.append(f"p50 {_fmt(p50)} ms > {_fmt(self.p50_ms)} ms")
        detail = f"p95 {_fmt(p95)} ms" + ("" if p50 is None else f", p50 {_fmt(p50)} ms")
        detail += f"; over budget: {', '.join(over)}" if over else ""
        return self._result(not over, detail, p95, None, self.p95_ms)


@dataclass(frozen=True, config=_STRICT)
class MaxModelSize(Check):
    """The candidate's model files take at most ``max_bytes`` (YAML accepts ``"50MB"``)."""

    max_bytes: Annotated[int, Field(gt=0)]
    kind: ClassVar[str] = "max_model_size"

    @field_validator("max_bytes", mode="before")
    @classmethod
    def _parse_size(cls, value: Any) -> int:
        return parse_size(value, f"{cls.kind}: field 'max_bytes'")

    @property
    def name(self) -> str:
        return f"model size <= {format_size(self.max_bytes)}"

    def evaluate(self, cand: GateInputs, champ: GateInputs | None, alias: str) -> CheckResult:
        limit, size = float(self.max_bytes), cand.size_bytes
        if size is None:
            return self._result(
                False, "the candidate's model size is not recorded", None, None, limit
            )
        detail = f"model size {format_size(size)} ({size} bytes)"
        detail += "" if size <= self.max_bytes else f" exceeds {format_size(self.max_bytes)}"
        return self._result(size <= self.max_bytes, detail, float(size), None, limit)


#: Check classes by ``kind``.
CHECK_TYPES: dict[str, type[Check]] = {
    c.kind: c
    for c in (
        MetricThreshold,
        BeatsChampion,
        SliceGap,
        SchemaCompatible,
        LatencyBudget,
        MaxModelSize,
    )
}


def check_from_dict(data: Mapping[str, Any]) -> Check:
    """A check from ``{kind: {params}}`` (the YAML form) or ``{"kind": kind, **params}``."""
    if not isinstance(data, Mapping):
        raise InvalidArgument(f"a check must be a mapping like {{kind: {{...}}}}, got {data!r}")
    if "kind" in data:
        kind, params = data["kind"], {k: v for k, v in data.items() if k != "kind"}
    elif len(data) == 1:
        kind, params = next(iter(data.items()))
    else:
        raise InvalidArgument(f"a check must name exactly one kind, got {sorted(map(str, data))}")
    cls = CHECK_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise InvalidArgument(f"unknown check kind {kind!r} (known: {', '.join(CHECK_TYPES)})")
    return cls.from_params(params)
