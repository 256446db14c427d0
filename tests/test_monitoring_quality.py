"""Data quality per window: missing values, unseen categories, out-of-range values,
constant columns, missing columns and signature violations."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from modelloop.errors import InvalidArgument
from modelloop.models import infer_signature
from modelloop.monitoring.quality import data_quality


@pytest.fixture
def reference() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 80, 500),
            "income": rng.normal(5e4, 1e4, 500),
            "plan": rng.choice(["basic", "pro"], 500),
            "region": rng.choice(["north", "south", "east"], 500),
        }
    )


def test_figures_per_column(reference: pd.DataFrame) -> None:
    current = pd.DataFrame(
        {
            "age": [20, 30, 150, 10, 40, None, 50, 60, 70, 25],
            "income": [5e4] * 10,
            "plan": ["basic", "pro", "gold", "gold", None, "pro", "basic", "pro", "pro", "basic"],
            "region": ["north"] * 10,
            "extra": range(10),
        }
    )
    q = data_quality(reference, current)
    age = q.columns["age"]
    assert age.missing_share == pytest.approx(0.1)
    assert age.out_of_range_share == pytest.approx(0.2)  # 150 and 10
    assert age.new_category_share is None
    plan = q.columns["plan"]
    assert plan.new_category_share == pytest.approx(0.2)
    assert plan.new_categories == ("gold",)
    assert plan.missing_share == pytest.approx(0.1)
    assert q.columns["income"].constant
    assert q.columns["region"].constant
    assert not q.columns["age"].constant
    assert q.extra_columns == ("extra",)
    metrics = q.metrics()
    assert metrics["missing_share[age]"] == pytest.approx(0.1)
    assert metrics["new_category_share[plan]"] == pytest.approx(0.2)
    assert metrics["out_of_range_share[age]"] == pytest.approx(0.2)
    assert metrics["constant[income]"] == 1.0
    json.loads(json.dumps(q.to_dict()))


def test_missing_columns_and_bad_input(reference: pd.DataFrame) -> None:
    q = data_quality(reference, reference.drop(columns=["region"]).head(20))
    assert q.missing_columns == ("region",)
    assert q.metrics()["missing_columns"] == 1.0
    assert "region" not in q.columns
    with pytest.raises(InvalidArgument, match="nope"):
        data_quality(reference, reference, columns=["nope"])
    with pytest.raises(InvalidArgument, match="DataFrames"):
        data_quality(reference, [1, 2])  # type: ignore[arg-type]


def test_signature_violations(reference: pd.DataFrame) -> None:
    signature = infer_signature(reference[["age", "income"]])
    clean = data_quality(reference, reference.head(50), signature=signature)
    assert clean.signature_violation_share == 0.0
    assert clean.signature_error is None
    bad = reference.head(10).astype({"age": object})
    bad.loc[[2, 5], "age"] = "old"
    q = data_quality(reference, bad, signature=signature)
    assert q.signature_violation_share == pytest.approx(0.2)
    assert q.signature_error is not None
    assert "age" in q.signature_error


def test_empty_window_is_not_an_error(reference: pd.DataFrame) -> None:
    q = data_quality(reference, reference.head(0))
    assert q.columns["age"].missing_share == 0.0
    assert not q.columns["age"].constant
    assert q.signature_violation_share is None
