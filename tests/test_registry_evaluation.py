"""Evaluation metrics, slices and latency on real scikit-learn models."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.compose import ColumnTransformer
from sklearn.datasets import make_classification, make_regression
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from modelloop.errors import InvalidArgument, InvalidState
from modelloop.registry.evaluation import (
    HIGHER_IS_BETTER,
    EvaluationResult,
    compute_metrics,
    confusion_matrix,
    evaluate,
    split_slices,
)

REGIONS = np.array(["north", "south", "east"])


def _frame(n_classes: int = 2, rows: int = 300) -> pd.DataFrame:
    x, y = make_classification(
        n_samples=rows,
        n_features=5,
        n_informative=4,
        n_redundant=0,
        n_classes=n_classes,
        random_state=0,
    )
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(5)])
    frame["region"] = REGIONS[np.arange(rows) % 3]
    frame["age"] = (np.arange(rows) * 7) % 70 + 18
    frame["churned"] = y
    # a non-default index: evaluation must not depend on it
    frame.index = pd.RangeIndex(1000, 1000 + rows)
    return frame


def _classifier(frame: pd.DataFrame) -> Pipeline:
    prep = ColumnTransformer(
        [("region", OneHotEncoder(handle_unknown="ignore"), ["region"])], remainder="passthrough"
    )
    model = Pipeline([("prep", prep), ("clf", LogisticRegression(max_iter=1000))])
    return model.fit(frame.drop(columns="churned"), frame["churned"])


@pytest.fixture(scope="module")
def binary() -> tuple[pd.DataFrame, Pipeline]:
    frame = _frame()
    return frame, _classifier(frame)


def test_binary_metrics_match_sklearn(binary: tuple[pd.DataFrame, Pipeline]) -> None:
    frame, model = binary
    x, y = frame.drop(columns="churned"), frame["churned"].to_numpy()
    pred, proba = model.predict(x), model.predict_proba(x)
    got = compute_metrics(y, pred, model_type="classifier", y_score=proba, labels=[0, 1])
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert got["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert got["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert got["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba[:, 1]))
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, proba))
    assert got["example_count"] == len(y)
    # a 1-D positive-class score gives the same numbers
    one_d = compute_metrics(y, pred, model_type="classifier", y_score=proba[:, 1])
    assert one_d["roc_auc"] == pytest.approx(got["roc_auc"])
    assert one_d["log_loss"] == pytest.approx(got["log_loss"])


def test_binary_positive_label_is_the_greater_label() -> None:
    y = np.array(["no", "yes", "yes", "no", "yes"])
    pred = np.array(["no", "yes", "no", "no", "no"])
    got = compute_metrics(y, pred, model_type="classifier")
    assert got["recall"] == pytest.approx(1 / 3)  # for "yes", not "no"
    assert got["precision"] == pytest.approx(1.0)


def test_multiclass_metrics_are_macro_averages() -> None:
    frame = _frame(n_classes=3)
    model = _classifier(frame)
    x, y = frame.drop(columns="churned"), frame["churned"].to_numpy()
    pred, proba = model.predict(x), model.predict_proba(x)
    got = compute_metrics(y, pred, model_type="classifier", y_score=proba, labels=[0, 1, 2])
    assert got["precision"] == pytest.approx(skm.precision_score(y, pred, average="macro"))
    assert got["recall"] == pytest.approx(skm.recall_score(y, pred, average="macro"))
    assert got["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    expected_auc = skm.roc_auc_score(y, proba, multi_class="ovr", average="macro")
    assert got["roc_auc"] == pytest.approx(expected_auc)
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, proba, labels=[0, 1, 2]))
    # a subset missing class 2 still gets a one-vs-rest AUC over the classes present
    keep = y != 2
    sub = compute_metrics(
        y[keep], pred[keep], model_type="classifier", y_score=proba[keep], labels=[0, 1, 2]
    )
    per_class = [skm.roc_auc_score(y[keep] == c, proba[keep][:, c]) for c in (0, 1)]
    assert sub["roc_auc"] == pytest.approx(np.mean(per_class))
    assert sub["log_loss"] == pytest.approx(skm.log_loss(y[keep], proba[keep], labels=[0, 1, 2]))


def test_roc_auc_omitted_without_scores_or_with_one_class() -> None:
    y, pred = np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0])
    assert "roc_auc" not in compute_metrics(y, pred, model_type="classifier")
    assert "log_loss" not in compute_metrics(y, pred, model_type="classifier")
    one_class = compute_metrics(
        np.array([1, 1, 1]),
        np.array([1, 0, 1]),
        model_type="classifier",
        y_score=np.array([0.9, 0.4, 0.8]),
        labels=[0, 1],
    )
    assert "roc_auc" not in one_class
    assert "log_loss" in one_class


def test_regression_metrics_match_sklearn() -> None:
    y = np.array([3.0, -0.5, 2.0, 7.0])
    pred = np.array([2.5, 0.0, 2.0, 8.0])
    got = compute_metrics(y, pred, model_type="regressor")
    assert got["rmse"] == pytest.approx(skm.root_mean_squared_error(y, pred))
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert got["r2"] == pytest.approx(skm.r2_score(y, pred))
    assert got["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y, pred))
    assert got["example_count"] == 4
    assert math.isnan(compute_metrics([1.0], [2.0], model_type="regressor")["r2"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"y_true": [1, 0], "y_pred": [1], "model_type": "classifier"}, "rows"),
        ({"y_true": [], "y_pred": [], "model_type": "classifier"}, "zero rows"),
        ({"y_true": [1], "y_pred": [1], "model_type": "ranker"}, "model_type"),
        ({"y_true": ["a"], "y_pred": ["b"], "model_type": "regressor"}, "numeric"),
        ({"y_true": [1.0, math.nan], "y_pred": [1.0, 2.0], "model_type": "regressor"}, "NaN"),
        ({"y_true": [0, 2], "y_pred": [0, 2], "model_type": "classifier", "labels": [0, 1]}, "2"),
    ],
)
def test_compute_metrics_rejects_bad_input(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        compute_metrics(**kwargs)


def test_confusion_matrix() -> None:
    got = confusion_matrix(["a", "b", "b", "c"], ["a", "b", "c", "c"], ["a", "b", "c"])
    assert got == {"labels": ["a", "b", "c"], "matrix": [[1, 0, 0], [0, 1, 1], [0, 0, 1]]}
    json.dumps(got)
    inferred = confusion_matrix(np.array([1, 0]), np.array([1, 1]))
    assert inferred == {"labels": [0, 1], "matrix": [[0, 1], [0, 1]]}
    assert all(type(v) is int for v in inferred["labels"])


def test_split_slices_by_column_query_and_function() -> None:
    frame = _frame(rows=30).reset_index(drop=True)
    got = split_slices(frame, ["region", "age >= 40", ("first ten", lambda d: d.index < 10)])
    names = [name for name, _ in got]
    assert names == ["region=east", "region=north", "region=south", "age >= 40", "first ten"]
    by_name = dict(got)
    assert (by_name["region=north"]["region"] == "north").all()
    assert len(by_name["region=north"]) == 10
    assert by_name["age >= 40"].equals(frame[frame["age"] >= 40])
    assert len(by_name["first ten"]) == 10
    # an empty slice is skipped
    assert split_slices(frame, ["age > 1000"]) == []


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nonexistent", "neither a column"),
        ("nonexistent > 3", "nonexistent > 3"),
        (("bad", lambda d: [True]), "one boolean per row"),
        (("dup", lambda d: d["age"] > 0), "duplicate"),
    ],
)
def test_split_slices_rejects_bad_specs(spec: Any, message: str) -> None:
    frame = _frame(rows=12)
    specs = [spec, spec] if message == "duplicate" else [spec]
    with pytest.raises(InvalidArgument, match=message):
        split_slices(frame, specs)


def test_evaluate_classifier(binary: tuple[pd.DataFrame, Pipeline]) -> None:
    frame, model = binary
    result = evaluate(
        model,
        frame,
        "churned",
        model_type="classifier",
        slices=["region", "age >= 40"],
        latency_samples=20,
    )
    x, y = frame.drop(columns="churned"), frame["churned"].to_numpy()
    pred, proba = model.predict(x), model.predict_proba(x)
    assert result.row_count == len(frame)
    assert result.target == "churned"
    assert result.metrics["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert result.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba[:, 1]))
    assert result.metrics["log_loss"] == pytest.approx(skm.log_loss(y, proba))
    assert set(result.slices) == {"region=east", "region=north", "region=south", "age >= 40"}
    north = (frame["region"] == "north").to_numpy()
    assert result.slices["region=north"]["accuracy"] == pytest.approx(
        skm.accuracy_score(y[north], pred[north])
    )
    old = (frame["age"] >= 40).to_numpy()
    assert result.slices["age >= 40"]["f1"] == pytest.approx(skm.f1_score(y[old], pred[old]))
    assert result.slices["age >= 40"]["example_count"] == old.sum()
    for key in ("latency_p50_ms", "latency_p95_ms", "batch_rows_per_s"):
        assert result.metrics[key] > 0
    assert result.metrics["latency_p95_ms"] >= result.metrics["latency_p50_ms"]
    assert result.confusion_matrix is not None
    expected_matrix = skm.confusion_matrix(y, pred, labels=[0, 1]).tolist()
    assert result.confusion_matrix == {"labels": [0, 1], "matrix": expected_matrix}
    assert result.small_slices == ()


def test_evaluate_regressor_with_feature_columns() -> None:
    x, y = make_regression(n_samples=120, n_features=3, noise=5.0, random_state=1)
    frame = pd.DataFrame(x, columns=["a", "b", "c"]).assign(target=y, note="x")
    model = LinearRegression().fit(frame[["a", "b", "c"]], frame["target"])
    result = evaluate(
        model,
        frame,
        "target",
        model_type="regressor",
        feature_columns=["a", "b", "c"],
        slices=["a > 0"],
    )
    pred = model.predict(frame[["a", "b", "c"]])
    assert result.metrics["rmse"] == pytest.approx(skm.root_mean_squared_error(y, pred))
    assert result.metrics["r2"] == pytest.approx(skm.r2_score(y, pred))
    assert result.confusion_matrix is None
    assert "a > 0" in result.slices
    assert result.metrics["latency_p50_ms"] > 0


class _Counting:
    """A predictor that counts its calls and whose predict_proba is unavailable."""

    def __init__(self, proba_error: type[Exception]) -> None:
        self.calls: list[int] = []
        self.proba_error = proba_error

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        self.calls.append(len(frame))
        return (frame["x"] > 0).astype(int).to_numpy()

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        raise self.proba_error("no probabilities")


@pytest.mark.parametrize("error", [InvalidState, NotImplementedError, AttributeError])
def test_predict_once_and_tolerate_missing_probabilities(error: type[Exception]) -> None:
    frame = pd.DataFrame({"x": np.linspace(-1, 1, 50), "y": [0, 1] * 25, "g": ["a"] * 49 + ["b"]})
    predictor = _Counting(error)
    result = evaluate(
        predictor,
        frame,
        "y",
        model_type="classifier",
        slices=["g"],
        latency_samples=10,
        feature_columns=["x"],
    )
    assert predictor.calls == [50] + [1] * 10  # one whole-frame call, then 10 single rows
    assert "roc_auc" not in result.metrics
    assert result.small_slices == ("g=b",)
    assert result.slices["g=b"]["example_count"] == 1


def test_other_predict_proba_errors_propagate() -> None:
    frame = pd.DataFrame({"x": [-1.0, 1.0], "y": [0, 1]})
    with pytest.raises(ValueError, match="no probabilities"):
        evaluate(_Counting(ValueError), frame, "y", model_type="classifier")


def test_latency_can_be_skipped() -> None:
    frame = pd.DataFrame({"x": [-1.0, 1.0, 2.0], "y": [0, 1, 1]})
    predictor = _Counting(InvalidState)
    result = evaluate(predictor, frame, "y", model_type="classifier", latency_samples=0)
    assert "latency_p95_ms" not in result.metrics
    assert predictor.calls == [3]


@pytest.mark.parametrize(
    ("data", "target", "kwargs", "message"),
    [
        (pd.DataFrame({"x": [1.0]}), "churned", {}, "churned"),
        (pd.DataFrame({"x": [], "y": []}), "y", {}, "empty"),
        (pd.DataFrame({"x": [1.0], "y": [1]}), "y", {"feature_columns": ["z"]}, "z"),
        (pd.DataFrame({"x": [1.0], "y": [1]}), "y", {"latency_samples": -1}, "latency"),
    ],
)
def test_evaluate_rejects_bad_input(
    data: pd.DataFrame, target: str, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        evaluate(_Counting(InvalidState), data, target, model_type="classifier", **kwargs)


def test_result_round_trips_through_json_with_nan(binary: tuple[pd.DataFrame, Pipeline]) -> None:
    frame, model = binary
    result = evaluate(model, frame, "churned", model_type="classifier", slices=["region"])
    nan_result = EvaluationResult(
        "regressor", {"r2": math.nan, "rmse": math.inf}, {"s": {"r2": math.nan}}, None, 1, "t"
    )
    for original in (result, nan_result):
        text = json.dumps(original.to_dict(), allow_nan=False)
        back = EvaluationResult.from_dict(json.loads(text))
        assert back.to_dict() == original.to_dict()
    back = EvaluationResult.from_dict(json.loads(json.dumps(nan_result.to_dict())))
    assert math.isnan(back.metrics["r2"]) and back.metrics["rmse"] == math.inf
    with pytest.raises(InvalidArgument, match="row_count"):
        EvaluationResult.from_dict({"model_type": "regressor", "metrics": {}, "target": "t"})


def test_higher_is_better_covers_every_metric(binary: tuple[pd.DataFrame, Pipeline]) -> None:
    frame, model = binary
    classifier = evaluate(model, frame, "churned", model_type="classifier", latency_samples=3)
    regression = compute_metrics([1.0, 2.0], [1.5, 2.5], model_type="regressor")
    assert set(classifier.metrics) | set(regression) <= set(HIGHER_IS_BETTER)
    assert HIGHER_IS_BETTER["accuracy"] and not HIGHER_IS_BETTER["log_loss"]
    assert not HIGHER_IS_BETTER["rmse"] and not HIGHER_IS_BETTER["latency_p95_ms"]
