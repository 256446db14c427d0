"""Promotion gates end to end: real scikit-learn models logged to runs, registered,
re-scored on a registered evaluation dataset, promoted or refused; the verdicts,
the alias history and the audit trail as stored. On SQLite and PostgreSQL, in
process and over HTTP (the ``client`` fixture)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from modelloop import Client
from modelloop.entities import ModelVersion
from modelloop.errors import InvalidArgument, InvalidState
from modelloop.settings import Settings
from modelloop.store import Database, audit

FEATURES = ["f0", "f1", "f2", "f3"]
POLICY = """
target_alias: champion
evaluation:
  dataset: holdout
  target: label
  model_type: classifier
  slices: [region]
checks:
  - metric_threshold: {metric: accuracy, min: 0.6}
  - beats_champion: {metric: accuracy, min_absolute_change: 0.0}
  - schema_compatible: {}
  - latency_budget: {p95_ms: 1000}
  - max_model_size: {max_bytes: 10MB}
"""


def _frame(n: int = 600) -> pd.DataFrame:
    X, y = make_classification(
        n_samples=n,
        n_features=5,
        n_informative=3,
        n_redundant=0,
        shuffle=False,
        class_sep=2.0,
        random_state=0,
    )
    df = pd.DataFrame(X, columns=[*FEATURES, "extra"])
    df["region"] = np.where(df["f1"] > 0, "north", "south")
    df["label"] = y
    # shuffle=False keeps f0..f2 informative; shuffle the rows here instead.
    return df.sample(frac=1.0, random_state=0).reset_index(drop=True)


@pytest.fixture
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    df = _frame()
    return df.iloc[:400].reset_index(drop=True), df.iloc[400:].reset_index(drop=True)


def _register(
    client: Client, train: pd.DataFrame, features: list[str], labels: Any = None
) -> ModelVersion:
    y = train["label"] if labels is None else labels
    model = LogisticRegression(max_iter=500).fit(train[features], y)
    exp = client.create_experiment(f"train-{len(client.search_model_versions('churn'))}")
    run = client.create_run(exp, name="fit")
    client.log_input(run.run_id, train, name="train", context="train")
    info = client.log_model(run.run_id, model, "model", input_example=train[features].iloc[:5])
    client.end_run(run.run_id)
    return client.register_model(info.model_uri, "churn")


def test_gates_promote_a_better_model_and_refuse_worse_ones(
    client: Client, data: tuple[pd.DataFrame, pd.DataFrame], store_settings: Settings
) -> None:
    train, holdout = data
    client.register_dataset("holdout", holdout)
    good = _register(client, train, FEATURES)
    client.set_policy("churn", POLICY)

    first = client.promote("churn", good.version)
    assert (first.passed, first.moved) == (True, True)
    assert client.get_model_version_by_alias("churn", "champion").version == good.version
    names = [c["name"] for c in first.checks]
    assert any("beats champion" in n for n in names)
    beats = next(c for c in first.checks if "beats champion" in c["name"])
    assert beats["passed"]
    assert "no current holder" in beats["detail"]

    # A worse challenger: trained on shuffled labels.
    shuffled = train["label"].sample(frac=1.0, random_state=1).to_numpy()
    worse = _register(client, train, FEATURES, labels=shuffled)
    refused = client.promote("churn", worse.version)
    assert (refused.passed, refused.moved) == (False, False)
    failed = [c for c in refused.checks if not c["passed"]]
    assert any("beats champion" in c["name"] for c in failed)
    beats = next(c for c in refused.checks if "beats champion" in c["name"])
    assert beats["value"] < beats["baseline"]
    assert client.get_model_version_by_alias("churn", "champion").version == good.version

    # A challenger that needs a column the champion's callers never sent.
    breaker = _register(client, train, [*FEATURES, "extra"])
    refused = client.promote("churn", breaker.version)
    assert not refused.moved
    failed_names = [c["name"] for c in refused.checks if not c["passed"]]
    assert any("schema" in n for n in failed_names)
    schema = next(c for c in refused.checks if "schema" in c["name"])
    assert "extra" in schema["detail"]

    # A slice-gap policy and a latency budget no model can meet, given explicitly.
    better = _register(client, pd.concat([train, holdout.iloc[:50]]), FEATURES)
    gap_policy = POLICY.replace(
        "  - schema_compatible: {}",
        "  - schema_compatible: {}\n  - slice_gap: {metric: accuracy, max_gap: 0.0}",
    )
    refused = client.promote("churn", better.version, policy=gap_policy)
    assert [c["name"] for c in refused.checks if not c["passed"]] == ["accuracy slice gap <= 0"]
    tight = POLICY.replace("p95_ms: 1000", "p95_ms: 0.000001")
    refused = client.promote("churn", better.version, policy=tight)
    assert not refused.moved
    assert [c["name"] for c in refused.checks if not c["passed"]] == ["latency p95 <= 1e-06 ms"]
    assert client.get_model_version_by_alias("churn", "champion").version == good.version

    # Every verdict is stored with its version; the refusals left the alias alone.
    stored = client.backend.list_promotions("churn")
    assert [(p.version, p.moved) for p in stored] == [
        (good.version, True),
        (worse.version, False),
        (breaker.version, False),
        (better.version, False),
        (better.version, False),
    ]
    assert client.alias_history("churn", "champion")[-1].version == good.version
    assert len(client.alias_history("churn", "champion")) == 1
    # Both models were re-scored as evaluation runs linked to their versions.
    assert client.backend.list_evaluations("churn", worse.version)
    assert len(client.backend.list_evaluations("churn", good.version)) >= 2

    # Forced past the gates, with a reason: moves, and says so.
    with pytest.raises(InvalidArgument, match="reason"):
        client.promote("churn", worse.version, force=True)
    forced = client.promote("churn", worse.version, force=True, reason="incident 7 rollback")
    assert (forced.passed, forced.forced, forced.moved) == (False, True, True)
    last = client.alias_history("churn", "champion")[-1]
    assert (last.version, last.previous_version, last.reason) == (
        worse.version,
        good.version,
        "incident 7 rollback",
    )
    with pytest.raises(InvalidState, match="already holds"):
        client.promote("churn", worse.version)

    db = Database(store_settings.tracking_uri)
    try:
        with db.read() as conn:
            promotions = audit.query(conn, action="model.promote", limit=50)
    finally:
        db.dispose()
    assert len(promotions) == 6
    assert promotions[0].details["forced"] is True
    assert promotions[0].details["reason"] == "incident 7 rollback"


def test_a_policy_without_evaluation_checks_only_what_needs_no_data(client: Client) -> None:
    train = _frame(200)
    a = _register(client, train, FEATURES)
    policy = {"checks": [{"max_model_size": {"max_bytes": 1}}]}
    record = client.promote("churn", a.version, policy=policy)
    assert not record.moved
    assert record.checks[0]["value"] == a.size_bytes
    assert client.promote("churn", a.version, policy={"checks": [{"schema_compatible": {}}]}).moved


def test_evaluate_records_a_linked_evaluation_run(
    client: Client, data: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    train, holdout = data
    mv = _register(client, train, FEATURES)
    outcome = client.evaluate(mv.uri, holdout, "label", slices=["region", "f0 >= 0"])
    result = outcome.result
    for key in ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"):
        assert 0.0 <= result.metrics[key] <= 10.0, key
    assert result.metrics["latency_p95_ms"] >= result.metrics["latency_p50_ms"] > 0
    assert set(result.slices) == {"region=north", "region=south", "f0 >= 0"}
    assert result.confusion_matrix is not None
    run = client.get_run(outcome.run_id)
    assert run.tags["modelloop.run_type"] == "evaluation"
    assert run.tags["modelloop.evaluation.model_version"] == str(mv.version)
    assert run.metrics["accuracy"] == pytest.approx(result.metrics["accuracy"])
    assert run.inputs[0].dataset.digest == outcome.dataset_digest
    linked = client.backend.list_evaluations("churn", mv.version)
    assert [(e.run_id, e.dataset_digest) for e in linked] == [
        (outcome.run_id, outcome.dataset_digest)
    ]
    # Evaluating a runs:/ URI works too, but links to no version.
    other = client.evaluate(f"runs:/{mv.run_id}/model", holdout, "label")
    assert other.version is None
    assert len(client.backend.list_evaluations("churn", mv.version)) == 1
