"""Promotion gates: a declarative policy of checks, and the verdict it gives a candidate.

A :class:`Policy` names the alias it guards, the evaluation dataset both the
candidate and the current holder of the alias (the "champion") are re-scored on,
and a list of checks. :func:`evaluate_policy` runs every check and returns a
:class:`Verdict` listing each check's value, baseline and threshold. The
comparison semantics follow MLflow's ``MetricThreshold`` (threshold,
``min_absolute_change``, ``min_relative_change``, ``greater_is_better``).

A policy in YAML::

    target_alias: champion
    evaluation:
      dataset: eval-2026-11   # a registered evaluation dataset
      target: churned
      model_type: classifier
      slices: [region, "tenure >= 12"]
    checks:
      - metric_threshold: {metric: accuracy, min: 0.8}
      - beats_champion: {metric: f1, min_absolute_change: 0.01}
      - slice_gap: {metric: accuracy, max_gap: 0.1}
      - schema_compatible: {}
      - latency_budget: {p95_ms: 50}
      - max_model_size: {max_bytes: 50MB}
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from modelloop.errors import InvalidArgument
from modelloop.registry.evaluation import ModelType
from modelloop.registry.gate_checks import (  # re-exported: the checks are part of this API
    CHECK_TYPES,
    BeatsChampion,
    Check,
    CheckResult,
    GateInputs,
    LatencyBudget,
    MaxModelSize,
    MetricThreshold,
    SchemaCompatible,
    SliceGap,
    check_from_dict,
    format_number,
    format_size,
    parse_size,
    schema_problems,
)

__all__ = [
    "CHECK_TYPES",
    "BeatsChampion",
    "Check",
    "CheckResult",
    "GateInputs",
    "LatencyBudget",
    "MaxModelSize",
    "MetricThreshold",
    "Policy",
    "SchemaCompatible",
    "SliceGap",
    "Verdict",
    "check_from_dict",
    "evaluate_policy",
    "format_size",
    "parse_size",
    "schema_problems",
]


@dataclasses.dataclass(frozen=True)
class Verdict:
    """Whether a candidate passed a policy: ``passed`` iff every check passed."""

    passed: bool
    checks: list[CheckResult]

    @property
    def failed(self) -> list[CheckResult]:
        """The checks that failed."""
        return [c for c in self.checks if not c.passed]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return {"passed": self.passed, "checks": [c.to_dict() for c in self.checks]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        """The inverse of :meth:`to_dict`."""
        try:
            checks = [CheckResult.from_dict(c) for c in data["checks"]]
            return cls(passed=bool(data["passed"]), checks=checks)
        except KeyError as exc:
            raise InvalidArgument(f"verdict is missing {exc.args[0]!r}") from exc

    def summary(self) -> str:
        """One line per check: ``PASS``/``FAIL``, its name, value vs. threshold, detail."""
        lines = []
        for c in self.checks:
            parts = [] if c.value is None else [f"value {format_number(c.value)}"]
            if c.baseline is not None:
                parts.append(f"champion {format_number(c.baseline)}")
            if c.threshold is not None:
                threshold = (
                    c.threshold if isinstance(c.threshold, str) else format_number(c.threshold)
                )
                parts.append(f"threshold {threshold}")
            numbers = f" ({', '.join(parts)})" if parts else ""
            lines.append(f"{'PASS' if c.passed else 'FAIL'}  {c.name}{numbers}: {c.detail}")
        return "\n".join(lines) if lines else "no checks"


class _EvaluationSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    dataset: str | None = None
    target: str | None = None
    model_type: ModelType | None = None
    slices: list[Annotated[str, StringConstraints(min_length=1)]] = []


class _PolicySpec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    target_alias: Annotated[str, StringConstraints(min_length=1)] = "champion"
    evaluation: _EvaluationSpec | None = None
    checks: Annotated[list[Any], Field(min_length=1)]


@dataclasses.dataclass
class Policy:
    """A promotion policy: the alias it guards, the evaluation set-up and the checks."""

    target_alias: str = "champion"
    evaluation_dataset: str | None = None
    checks: list[Check] = dataclasses.field(default_factory=list)
    model_type: ModelType | None = None
    target: str | None = None
    slices: list[str] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The YAML form (see the module docstring)."""
        evaluation = {
            "dataset": self.evaluation_dataset,
            "target": self.target,
            "model_type": self.model_type,
            "slices": list(self.slices),
        }
        out: dict[str, Any] = {"target_alias": self.target_alias}
        if any(evaluation.values()):
            out["evaluation"] = {k: v for k, v in evaluation.items() if v}
        out["checks"] = [c.to_dict() for c in self.checks]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policy:
        """A policy from its YAML form; InvalidArgument names any bad field."""
        if not isinstance(data, Mapping):
            raise InvalidArgument(f"a policy must be a mapping, got {type(data).__name__}")
        try:
            spec = _PolicySpec.model_validate(dict(data))
        except ValidationError as exc:
            errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
            field, msg = ".".join(map(str, errors[0]["loc"])), errors[0]["msg"]
            raise InvalidArgument(f"policy field '{field}': {msg}") from exc
        ev = spec.evaluation or _EvaluationSpec()
        checks = [check_from_dict(c) for c in spec.checks]
        return cls(spec.target_alias, ev.dataset, checks, ev.model_type, ev.target, ev.slices)

    @classmethod
    def from_yaml(cls, text_or_path: str | Path) -> Policy:
        """A policy from YAML text, or from a ``.yaml``/``.yml`` file path."""
        text = str(text_or_path)
        if isinstance(text_or_path, Path) or (
            "\n" not in text and text.endswith((".yaml", ".yml")) and Path(text).is_file()
        ):
            try:
                text = Path(text_or_path).read_text(encoding="utf-8")
            except OSError as exc:
                raise InvalidArgument(f"cannot read policy file '{text_or_path}': {exc}") from exc
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidArgument(f"policy is not valid YAML: {exc}") from exc
        return cls.from_dict(data)

    def to_yaml(self) -> str:
        """The policy as YAML text (``from_yaml`` reads it back)."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def evaluate_policy(policy: Policy, candidate: GateInputs, champion: GateInputs | None) -> Verdict:
    """Run every check of ``policy`` on ``candidate`` against ``champion`` (the current
    holder of ``policy.target_alias``, or None); repeated check names get a ``(#n)``."""
    results: list[CheckResult] = []
    seen: dict[str, int] = {}
    for check in policy.checks:
        result = check.evaluate(candidate, champion, policy.target_alias)
        seen[result.name] = seen.get(result.name, 0) + 1
        if seen[result.name] > 1:
            result = dataclasses.replace(result, name=f"{result.name} (#{seen[result.name]})")
        results.append(result)
    return Verdict(passed=all(r.passed for r in results), checks=results)
