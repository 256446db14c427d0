"""``modelloop models`` and ``modelloop datasets`` against a real folder store."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from test_cli import ENV, NO_CAPTURE, assert_ok, err, invoke, out

from modelloop import Client

POLICY = """
target_alias: champion
evaluation: {dataset: holdout, target: label, model_type: classifier, slices: [region]}
checks:
  - metric_threshold: {metric: accuracy, min: 0.7}
  - beats_champion: {metric: accuracy}
"""


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store with model 'churn': v1 (good, champion) and v2 (trained on noise)."""
    X, y = make_classification(
        n_samples=300, n_features=3, n_informative=3, n_redundant=0, class_sep=2.0, random_state=0
    )
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    df["region"] = ["n" if v > 0 else "s" for v in df["a"]]
    df["label"] = y
    train, holdout = df.iloc[:200], df.iloc[200:]
    folder = tmp_path / "store"
    client = Client(str(folder), settings=NO_CAPTURE)
    exp = client.create_experiment("e")
    for labels in (train["label"], train["label"].sample(frac=1.0, random_state=3).to_numpy()):
        model = LogisticRegression().fit(train[["a", "b", "c"]], labels)
        run = client.create_run(exp, name="fit")
        client.log_input(run.run_id, train, name="train")
        info = client.log_model(run.run_id, model, "model", input_example=train[["a", "b", "c"]])
        client.end_run(run.run_id)
        client.register_model(info.model_uri, "churn")
    client.register_dataset("holdout", holdout)
    holdout.to_csv(tmp_path / "holdout.csv", index=False)
    (tmp_path / "policy.yaml").write_text(POLICY)
    client.close()
    return folder


def test_policy_promote_refuse_history(store: Path, tmp_path: Path) -> None:
    assert "no promotion policy" in assert_ok(invoke(store, "models", "policy", "churn"))
    stored = assert_ok(invoke(store, "models", "policy", "churn", str(tmp_path / "policy.yaml")))
    assert "2 checks" in stored
    assert "beats_champion" in assert_ok(invoke(store, "models", "policy", "churn"))

    promoted = invoke(store, "models", "promote", "churn", "1")
    assert "promoted" in assert_ok(promoted)
    refused = invoke(store, "models", "promote", "churn", "2", "--to", "champion")
    assert refused.exit_code == 1
    assert "FAIL" in out(refused)
    assert "refused" in err(refused)
    assert "accuracy no worse than champion" in err(refused)
    no_reason = invoke(store, "models", "promote", "churn", "2", "--force")
    assert no_reason.exit_code == 1
    assert "reason" in err(no_reason)
    forced = invoke(store, "models", "promote", "churn", "2", "--force", "--reason", "test it")
    assert "forced" in assert_ok(forced)

    history = assert_ok(invoke(store, "models", "history", "churn", "--alias", "champion"))
    assert "test it" in history
    assert "promotion gates passed" in history
    events = json.loads(
        assert_ok(invoke(store, "models", "history", "churn", "--alias", "champion", "--json"))
    )
    assert [(e["previous_version"], e["version"]) for e in events] == [(None, 1), (1, 2)]
    at = assert_ok(
        invoke(store, "models", "history", "churn", "--alias", "champion", "--at", "2000-01-01")
    )
    assert "nobody" in at


def test_list_show_alias_lineage_card(store: Path, tmp_path: Path) -> None:
    listed = assert_ok(invoke(store, "models", "list"))
    assert "churn" in listed
    assert "churn" in assert_ok(invoke(store, "models", "show", "churn"))
    version = json.loads(assert_ok(invoke(store, "models", "show", "churn", "2", "--json")))
    assert (version["version"], version["flavor"]) == (2, "sklearn")
    assert [c["name"] for c in version["signature"]["inputs"]] == ["a", "b", "c"]

    assert "churn@challenger → v2" in assert_ok(
        invoke(store, "models", "alias", "churn", "challenger", "2", "--reason", "try")
    )
    assert "(was v2)" in assert_ok(invoke(store, "models", "alias", "churn", "challenger", "1"))
    assert_ok(invoke(store, "models", "alias", "churn", "challenger", "--delete"))
    missing = invoke(store, "models", "alias", "churn", "challenger", "--delete")
    assert missing.exit_code == 1
    assert "no alias 'challenger'" in err(missing)

    graph = json.loads(assert_ok(invoke(store, "models", "lineage", "churn", "1", "--json")))
    assert graph["run"]["experiment"] == "e"
    assert [d["name"] for d in graph["datasets"]] == ["train"]
    assert "dataset train" in assert_ok(invoke(store, "models", "lineage", "churn", "1"))

    cards = tmp_path / "cards"
    assert_ok(invoke(store, "models", "card", "churn", "1", "-o", str(cards)))
    md = (cards / "churn-v1-card.md").read_text()
    html = (cards / "churn-v1-card.html").read_text()
    assert "churn" in md
    assert "Lineage" in md
    assert "<html" in html.lower()
    assert "https://" not in html


def test_evaluate_and_datasets(store: Path, tmp_path: Path) -> None:
    result = json.loads(
        assert_ok(
            invoke(
                store, "models", "evaluate", "models:/churn/1", "--target", "label",
                "--data", str(tmp_path / "holdout.csv"), "--slice", "region", "--json",
            )
        )
    )  # fmt: skip
    assert result["metrics"]["accuracy"] > 0.7
    assert set(result["slices"]) == {"region=n", "region=s"}
    by_name = invoke(
        store, "models", "evaluate", "models:/churn/1", "--target", "label", "--dataset", "holdout"
    )
    assert "accuracy" in assert_ok(by_name)
    both = invoke(store, "models", "evaluate", "models:/churn/1", "--target", "label")
    assert both.exit_code == 1
    assert "exactly one of" in err(both)

    assert_ok(invoke(store, "datasets", "register", "h2", str(tmp_path / "holdout.csv")))
    listed = assert_ok(invoke(store, "datasets", "list"))
    assert "holdout" in listed
    assert "h2" in listed


def test_unknown_model_is_a_clean_error(store: Path) -> None:
    result = invoke(store, "models", "show", "nope")
    assert result.exit_code == 1
    assert "registered model 'nope' not found" in err(result)
    assert "Traceback" not in result.output
    assert ENV["NO_COLOR"] == "1"
