"""Promotion policies: parsing, every check kind, and verdicts on real models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import RandomForestClassifier

from modelloop.errors import InvalidArgument
from modelloop.registry.evaluation import EvaluationResult, evaluate
from modelloop.registry.gates import (
    CHECK_TYPES,
    BeatsChampion,
    CheckResult,
    GateInputs,
    LatencyBudget,
    MaxModelSize,
    MetricThreshold,
    Policy,
    SchemaCompatible,
    SliceGap,
    Verdict,
    check_from_dict,
    evaluate_policy,
    parse_size,
    schema_problems,
)

EXAMPLE = """
target_alias: champion
evaluation:
  dataset: eval-2026-11   # name of a registered evaluation dataset (opaque string here)
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

SIGNATURE = {
    "inputs": [
        {"name": "age", "type": "long", "required": True},
        {"name": "region", "type": "string", "required": True},
    ],
    "outputs": [{"name": "churned", "type": "long"}],
}


def _eval(
    metrics: dict[str, float], slices: dict[str, dict[str, float]] | None = None
) -> EvaluationResult:
    base = {"latency_p50_ms": 1.0, "latency_p95_ms": 2.0}
    return EvaluationResult("classifier", {**base, **metrics}, slices or {}, None, 100, "churned")


def _inputs(
    metrics: dict[str, float],
    slices: dict[str, dict[str, float]] | None = None,
    signature: dict[str, Any] | None = SIGNATURE,
    size: int | None = 1_000_000,
    version: str = "2",
) -> GateInputs:
    return GateInputs(_eval(metrics, slices), signature, size, version)


def _one(check: Any, cand: GateInputs, champ: GateInputs | None = None) -> CheckResult:
    verdict = evaluate_policy(Policy(checks=[check]), cand, champ)
    assert len(verdict.checks) == 1
    assert verdict.passed is verdict.checks[0].passed
    return verdict.checks[0]


# --- end to end on real models -------------------------------------------------------------


@pytest.fixture(scope="module")
def churn() -> pd.DataFrame:
    x, y = make_classification(n_samples=600, n_features=6, n_informative=4, random_state=3)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(6)])
    frame["region"] = np.array(["north", "south"])[np.arange(600) % 2]
    frame["tenure"] = np.arange(600) % 24
    frame["churned"] = y
    return frame


def _fit(model: Any, frame: pd.DataFrame) -> Any:
    return model.fit(frame[[f"f{i}" for i in range(6)]], frame["churned"])


def _gate_inputs(model: Any, frame: pd.DataFrame, version: str) -> GateInputs:
    features = [f"f{i}" for i in range(6)]
    result = evaluate(
        model,
        frame,
        "churned",
        model_type="classifier",
        feature_columns=features,
        slices=["region", "tenure >= 12"],
        latency_samples=20,
    )
    signature = {"inputs": [{"name": f, "type": "double"} for f in features]}
    return GateInputs(result, signature, 2_000_000, version)


def test_better_candidate_passes_and_worse_fails_beats_champion(churn: pd.DataFrame) -> None:
    train, test = churn.iloc[:400], churn.iloc[400:]
    forest = _fit(RandomForestClassifier(n_estimators=30, random_state=0), train)
    dummy = _fit(DummyClassifier(strategy="stratified", random_state=0), train)
    strong, weak = _gate_inputs(forest, test, "2"), _gate_inputs(dummy, test, "1")
    policy = Policy.from_yaml(EXAMPLE.replace("min: 0.8", "min: 0.7").replace("0.1}", "0.2}"))
    policy.checks[4] = LatencyBudget(p95_ms=5000)  # generous: CI machines are slow

    verdict = evaluate_policy(policy, strong, weak)
    assert verdict.passed, verdict.summary()
    assert [c.passed for c in verdict.checks] == [True] * 6

    verdict = evaluate_policy(policy, weak, strong)
    assert not verdict.passed
    failed = {c.name for c in verdict.failed}
    assert "f1 beats champion by >= 0.01" in failed
    beats = next(c for c in verdict.checks if c.kind == "beats_champion")
    assert beats.value == pytest.approx(weak.evaluation.metrics["f1"])  # type: ignore[union-attr]
    assert beats.baseline == pytest.approx(strong.evaluation.metrics["f1"])  # type: ignore[union-attr]
    assert "FAIL  f1 beats champion by >= 0.01" in verdict.summary()


# --- the YAML policy ------------------------------------------------------------------------


def test_example_policy_parses_and_round_trips(tmp_path: Path) -> None:
    policy = Policy.from_yaml(EXAMPLE)
    assert policy.target_alias == "champion"
    assert policy.evaluation_dataset == "eval-2026-11"
    assert policy.target == "churned" and policy.model_type == "classifier"
    assert policy.slices == ["region", "tenure >= 12"]
    assert [type(c) for c in policy.checks] == [
        MetricThreshold,
        BeatsChampion,
        SliceGap,
        SchemaCompatible,
        LatencyBudget,
        MaxModelSize,
    ]
    assert policy.checks[5] == MaxModelSize(max_bytes=50_000_000)
    assert [c.name for c in policy.checks] == [
        "accuracy >= 0.8",
        "f1 beats champion by >= 0.01",
        "accuracy slice gap <= 0.1",
        "schema compatible with champion",
        "latency p95 <= 50 ms",
        "model size <= 50.0 MB",
    ]
    as_dict = json.loads(json.dumps(policy.to_dict()))
    assert Policy.from_dict(as_dict) == policy
    assert Policy.from_yaml(policy.to_yaml()) == policy
    path = tmp_path / "policy.yaml"
    path.write_text(EXAMPLE, encoding="utf-8")
    assert Policy.from_yaml(path) == policy
    assert Policy.from_yaml(str(path)) == policy


def test_minimal_policy_defaults() -> None:
    policy = Policy.from_yaml("checks:\n  - schema_compatible:\n")
    assert policy == Policy(checks=[SchemaCompatible()])
    assert policy.to_dict() == {"target_alias": "champion", "checks": [{"schema_compatible": {}}]}
    assert check_from_dict({"kind": "slice_gap", "metric": "f1", "max_gap": 0.2}) == SliceGap(
        "f1", 0.2
    )
    assert set(CHECK_TYPES) == {
        "metric_threshold",
        "beats_champion",
        "slice_gap",
        "schema_compatible",
        "latency_budget",
        "max_model_size",
    }


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("checks: [{metric_threshold: {metric: accuracy, minimum: 0.8}}]", "minimum"),
        ("checks: [{metric_threshold: {metric: accuracy, min: high}}]", "'min'"),
        ("checks: [{metric_threshold: {min: 0.8}}]", "'metric'"),
        ("checks: [{metric_threshold: {metric: accuracy}}]", "'min' or 'max'"),
        ("checks: [{metric_threshold: {metric: accuracy, min: true}}]", "'min'"),
        ("checks: [{beats_champion: {metric: f1, greater_is_better: 3}}]", "greater_is_better"),
        ("checks: [{beats_champion: {metric: my_score}}]", "greater_is_better"),
        ("checks: [{slice_gap: {metric: accuracy, max_gap: -1}}]", "max_gap"),
        ("checks: [{latency_budget: {p95_ms: 0}}]", "p95_ms"),
        ("checks: [{max_model_size: {max_bytes: fifty}}]", "max_bytes"),
        ("checks: [{canary: {}}]", "canary"),
        ("checks: [{slice_gap: {metric: a, max_gap: 1}, schema_compatible: {}}]", "one kind"),
        ("checks: [{schema_compatible: {strict: true}}]", "strict"),
        ("checks: []", "checks"),
        ("target: churned\nchecks: [{schema_compatible: {}}]", "target"),
        ("target_alias: 3\nchecks: [{schema_compatible: {}}]", "target_alias"),
        ("evaluation: {model_type: ranker}\nchecks: [{schema_compatible: {}}]", "model_type"),
        ("evaluation: {slices: region}\nchecks: [{schema_compatible: {}}]", "slices"),
        ("evaluation: {datset: x}\nchecks: [{schema_compatible: {}}]", "datset"),
        ("- just a list", "mapping"),
        ("checks: [unclosed", "YAML"),
    ],
)
def test_bad_policy_names_the_problem(text: str, named: str) -> None:
    with pytest.raises(InvalidArgument, match=named):
        Policy.from_yaml(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1024, 1024),
        ("50MB", 50_000_000),
        ("50 mb", 50_000_000),
        ("1.5 GiB", 1_610_612_736),
        ("10KiB", 10_240),
        ("2k", 2000),
        ("700", 700),
        ("3B", 3),
    ],
)
def test_parse_size(value: Any, expected: int) -> None:
    assert parse_size(value) == expected


@pytest.mark.parametrize("value", ["-5MB", "5 XB", True, -1, "", None])
def test_parse_size_rejects(value: Any) -> None:
    with pytest.raises(InvalidArgument):
        parse_size(value)


# --- individual checks ----------------------------------------------------------------------


def test_metric_threshold() -> None:
    assert _one(MetricThreshold("accuracy", min=0.8), _inputs({"accuracy": 0.85})).passed
    low = _one(MetricThreshold("accuracy", min=0.8), _inputs({"accuracy": 0.75}))
    assert not low.passed and low.value == 0.75 and low.threshold == 0.8
    assert "below the minimum" in low.detail
    band = MetricThreshold("log_loss", min=0.1, max=0.5)
    assert band.name == "0.1 <= log_loss <= 0.5"
    assert not _one(band, _inputs({"log_loss": 0.6})).passed
    assert _one(MetricThreshold("accuracy", min=0.8), _inputs({"accuracy": 0.8})).passed


def test_missing_metric_fails_naming_it() -> None:
    for check in (
        MetricThreshold("roc_auc", min=0.5),
        BeatsChampion("roc_auc"),
        SliceGap("roc_auc", 0.1),
    ):
        result = _one(check, _inputs({"accuracy": 0.9}, {"s": {"accuracy": 0.9}}), _inputs({}))
        assert not result.passed
        assert "roc_auc" in result.detail
    no_eval = GateInputs(None, SIGNATURE, 10, "4")
    result = _one(MetricThreshold("accuracy", min=0.5), no_eval)
    assert not result.passed and "not evaluated" in result.detail


def test_beats_champion_semantics() -> None:
    check = BeatsChampion("f1", min_absolute_change=0.01)
    better, champ = _inputs({"f1": 0.82}), _inputs({"f1": 0.80}, version="1")
    assert _one(check, better, champ).passed
    tie = _one(check, champ, champ)
    assert not tie.passed and "improvement 0 < 0.01" in tie.detail
    # no minimum: a tie passes, a regression fails
    plain = BeatsChampion("f1")
    assert plain.name == "f1 no worse than champion"
    assert _one(plain, champ, champ).passed
    assert not _one(plain, _inputs({"f1": 0.79}), champ).passed
    # relative change: (0.82 - 0.80) / 0.80 = 2.5%
    assert _one(BeatsChampion("f1", min_relative_change=0.02), better, champ).passed
    rel = _one(BeatsChampion("f1", min_relative_change=0.03), better, champ)
    assert not rel.passed and rel.name == "f1 beats champion by >= 3%"
    both = BeatsChampion("f1", min_absolute_change=0.01, min_relative_change=0.03)
    assert not _one(both, better, champ).passed
    # lower is better for rmse (from HIGHER_IS_BETTER), or as declared
    rmse = BeatsChampion("rmse", min_absolute_change=0.5)
    assert _one(rmse, _inputs({"rmse": 9.0}), _inputs({"rmse": 10.0})).passed
    assert not _one(rmse, _inputs({"rmse": 9.8}), _inputs({"rmse": 10.0})).passed
    custom = BeatsChampion("my_error", greater_is_better=False)
    assert _one(custom, _inputs({"my_error": 1.0}), _inputs({"my_error": 2.0})).passed
    # a negative minimum tolerates a small regression
    tolerant = BeatsChampion("f1", min_absolute_change=-0.02)
    assert _one(tolerant, _inputs({"f1": 0.79}), champ).passed
    # a champion at 0 makes any improvement infinitely large
    zero = _inputs({"f1": 0.0})
    assert _one(BeatsChampion("f1", min_relative_change=0.5), better, zero).passed


def test_no_champion_passes_comparisons() -> None:
    policy = Policy(
        target_alias="prod",
        checks=[BeatsChampion("f1", min_absolute_change=0.1), SchemaCompatible()],
    )
    verdict = evaluate_policy(policy, _inputs({"f1": 0.1}), None)
    assert verdict.passed
    assert all("no current holder of alias 'prod'" in c.detail for c in verdict.checks)


def test_slice_gap() -> None:
    slices = {"region=north": {"accuracy": 0.9}, "region=south": {"accuracy": 0.75}}
    wide = _one(SliceGap("accuracy", 0.1), _inputs({}, slices))
    assert not wide.passed
    assert wide.value == pytest.approx(0.15)
    assert "region=south" in wide.detail and "region=north" in wide.detail
    assert _one(SliceGap("accuracy", 0.2), _inputs({}, slices)).passed
    none = _one(SliceGap("accuracy", 0.2), _inputs({}))
    assert not none.passed
    assert none.detail == "policy requires slices but the evaluation has none"


def test_schema_compatible() -> None:
    check = SchemaCompatible()
    champ = _inputs({}, version="1")
    assert _one(check, _inputs({}), champ).passed
    new_column = {
        "inputs": [*SIGNATURE["inputs"], {"name": "plan", "type": "string", "required": True}]
    }
    result = _one(check, _inputs({}, signature=new_column), champ)
    assert not result.passed and "'plan'" in result.detail
    optional = {
        "inputs": [*SIGNATURE["inputs"], {"name": "plan", "type": "string", "required": False}]
    }
    assert _one(check, _inputs({}, signature=optional), champ).passed
    narrowed = {
        "inputs": [{"name": "age", "type": "integer"}, {"name": "region", "type": "string"}]
    }
    result = _one(check, _inputs({}, signature=narrowed), champ)
    assert not result.passed and "from long to integer" in result.detail
    widened = {"inputs": [{"name": "age", "type": "double"}]}
    assert _one(check, _inputs({}, signature=widened), champ).passed
    retyped = {"inputs": [{"name": "region", "type": "long"}]}
    assert not _one(check, _inputs({}, signature=retyped), champ).passed
    missing = _one(check, _inputs({}, signature=None), champ)
    assert not missing.passed and missing.detail == "candidate has no signature"
    assert _one(check, _inputs({}), _inputs({}, signature=None)).passed


def test_schema_problems_for_tensors() -> None:
    old = {"inputs": {"dtype": "float32", "shape": [-1, 4]}}
    assert schema_problems({"inputs": {"dtype": "float64", "shape": [-1, 4]}}, old) == []
    assert schema_problems({"inputs": {"dtype": "float32", "shape": [8, 4]}}, old) == []
    narrowed = schema_problems({"inputs": {"dtype": "float16", "shape": [-1, 4]}}, old)
    assert len(narrowed) == 1 and "dtype" in narrowed[0]
    reshaped = schema_problems({"inputs": {"dtype": "float32", "shape": [-1, 5]}}, old)
    assert len(reshaped) == 1 and "shape" in reshaped[0]
    assert schema_problems(SIGNATURE, old) != []


def test_latency_budget() -> None:
    fast = _inputs({"latency_p95_ms": 20.0, "latency_p50_ms": 5.0})
    assert _one(LatencyBudget(p95_ms=50), fast).passed
    slow = _one(LatencyBudget(p95_ms=10), fast)
    assert not slow.passed and slow.value == 20.0 and "over budget" in slow.detail
    both = LatencyBudget(p95_ms=50, p50_ms=2)
    assert both.name == "latency p95 <= 50 ms, p50 <= 2 ms"
    assert not _one(both, fast).passed


def test_max_model_size() -> None:
    check = MaxModelSize.from_params({"max_bytes": "50MB"})
    assert check.name == "model size <= 50.0 MB"
    assert _one(check, _inputs({}, size=49_000_000)).passed
    big = _one(check, _inputs({}, size=60_000_000))
    assert not big.passed and big.value == 60_000_000 and big.threshold == 50_000_000
    unknown = _one(check, _inputs({}, size=None))
    assert not unknown.passed and "not recorded" in unknown.detail


# --- verdicts -------------------------------------------------------------------------------


def test_verdict_round_trip_summary_and_unique_names() -> None:
    twice = MetricThreshold("accuracy", min=0.8)
    policy = Policy(checks=[twice, twice, LatencyBudget(p95_ms=1)])
    verdict = evaluate_policy(policy, _inputs({"accuracy": 0.9}), None)
    assert [c.name for c in verdict.checks] == [
        "accuracy >= 0.8",
        "accuracy >= 0.8 (#2)",
        "latency p95 <= 1 ms",
    ]
    assert not verdict.passed
    assert [c.name for c in verdict.failed] == ["latency p95 <= 1 ms"]
    lines = verdict.summary().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("PASS  accuracy >= 0.8") and "0.9" in lines[0]
    assert lines[2].startswith("FAIL  latency p95 <= 1 ms") and "threshold 1" in lines[2]
    back = Verdict.from_dict(json.loads(json.dumps(verdict.to_dict(), allow_nan=False)))
    assert back == verdict
    with pytest.raises(InvalidArgument, match="checks"):
        Verdict.from_dict({"passed": True})
