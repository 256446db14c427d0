"""Tests of realised performance per window and CBPE performance estimation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from modelloop.errors import InvalidArgument, InvalidState
from modelloop.monitoring.performance import CBPE, expected_roc_auc, realised_performance

N = 20_000


def _labelled_frame(seed: int = 0, rows: int = 240) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    score = rng.beta(2, 2, rows)
    target = (rng.random(rows) < score).astype(float)
    target[rng.choice(rows, rows // 8, replace=False)] = np.nan
    return pd.DataFrame(
        {
            "time": pd.date_range("2024-01-01", periods=rows, freq="7min"),
            "score": score,
            "pred": (score >= 0.5).astype(int),
            "target": target,
        }
    )


def _direct(rows: pd.DataFrame) -> dict[str, float]:
    rows = rows[rows["target"].notna()]
    true, pred = rows["target"].to_numpy(), rows["pred"].to_numpy()
    return {
        "accuracy": skm.accuracy_score(true, pred),
        "precision": skm.precision_score(true, pred, zero_division=0),
        "recall": skm.recall_score(true, pred, zero_division=0),
        "f1": skm.f1_score(true, pred, zero_division=0),
        "roc_auc": skm.roc_auc_score(true, rows["score"]),
    }


def _check(result: pd.DataFrame, windows: list[pd.DataFrame]) -> None:
    assert len(result) == len(windows)
    for (_, row), rows in zip(result.iterrows(), windows, strict=True):
        assert row["rows"] == rows["target"].notna().sum()
        assert row["unlabelled"] == rows["target"].isna().sum()
        for metric, value in _direct(rows).items():
            assert row[metric] == pytest.approx(value), metric


def test_realised_row_windows_match_sklearn() -> None:
    frame = _labelled_frame()
    result = realised_performance(
        frame,
        target="target",
        prediction="pred",
        model_type="classifier",
        score_columns=["score"],
        window=100,
    )
    _check(result, [frame.iloc[0:100], frame.iloc[100:200], frame.iloc[200:240]])
    assert list(result["window_start"]) == [0, 100, 200]
    assert list(result["window_end"]) == [100, 200, 240]
    assert result["unlabelled"].sum() == 30  # 240 // 8


def test_realised_time_windows_match_sklearn() -> None:
    frame = _labelled_frame(seed=1)
    result = realised_performance(
        frame,
        target="target",
        prediction="pred",
        model_type="classifier",
        score_columns=["score"],
        window="8h",
    )
    hours = frame["time"].dt.floor("8h")
    windows = [rows for _, rows in frame.groupby(hours)]
    _check(result, windows)
    assert result["window_start"].iloc[0] == pd.Timestamp("2024-01-01")
    assert result["window_end"].iloc[0] == pd.Timestamp("2024-01-01 08:00")


def test_realised_single_window_and_regression() -> None:
    frame = _labelled_frame(seed=2)
    whole = realised_performance(frame, target="target", prediction="pred", model_type="classifier")
    assert len(whole) == 1
    assert "roc_auc" not in whole.columns
    assert whole["accuracy"].iloc[0] == pytest.approx(_direct(frame)["accuracy"])
    reg = realised_performance(
        frame, target="target", prediction="score", model_type="regressor", window=120
    )
    first = frame.iloc[:120].dropna(subset=["target"])
    assert reg["mae"].iloc[0] == pytest.approx(
        skm.mean_absolute_error(first["target"], first["score"])
    )


def test_realised_window_without_labels_is_nan() -> None:
    frame = _labelled_frame(seed=3, rows=20)
    frame.loc[10:, "target"] = np.nan
    result = realised_performance(
        frame, target="target", prediction="pred", model_type="classifier", window=10
    )
    assert list(result["rows"]) == [frame["target"].iloc[:10].notna().sum(), 0]
    assert result["unlabelled"].iloc[1] == 10
    assert math.isnan(result["accuracy"].iloc[1])


def test_realised_bad_input() -> None:
    frame = _labelled_frame()
    with pytest.raises(InvalidArgument, match="nope"):
        realised_performance(frame, target="nope", prediction="pred", model_type="classifier")
    with pytest.raises(InvalidArgument, match="missing_time"):
        realised_performance(
            frame,
            target="target",
            prediction="pred",
            model_type="classifier",
            window="1h",
            time_column="missing_time",
        )
    with pytest.raises(InvalidArgument, match="positive"):
        realised_performance(
            frame, target="target", prediction="pred", model_type="classifier", window=0
        )


def _simulate(rng: np.random.Generator, a: float, b: float) -> tuple[np.ndarray, np.ndarray]:
    scores = rng.beta(a, b, N)
    return scores, (rng.random(N) < scores).astype(int)


def _realised(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    pred = (scores >= 0.5).astype(int)
    return {
        "accuracy": skm.accuracy_score(labels, pred),
        "precision": skm.precision_score(labels, pred),
        "recall": skm.recall_score(labels, pred),
        "f1": skm.f1_score(labels, pred),
        "roc_auc": skm.roc_auc_score(labels, scores),
    }


@pytest.fixture
def fitted() -> CBPE:
    rng = np.random.default_rng(42)
    return CBPE().fit(*_simulate(rng, 2, 2))


def test_cbpe_matches_realised_when_calibrated(fitted: CBPE) -> None:
    scores, labels = _simulate(np.random.default_rng(7), 2, 2)
    estimate = fitted.estimate(scores)
    realised = _realised(scores, labels)
    assert set(estimate) == set(realised)
    for metric, value in realised.items():
        assert estimate[metric] == pytest.approx(value, abs=0.02), metric
    assert fitted.reference_ece_ is not None
    assert fitted.reference_ece_ < 0.03


def test_cbpe_tracks_covariate_shift(fitted: CBPE) -> None:
    baseline = _realised(*_simulate(np.random.default_rng(8), 2, 2))
    scores, labels = _simulate(np.random.default_rng(9), 1.5, 4)
    realised = _realised(scores, labels)
    estimate = fitted.estimate(scores)
    assert realised["recall"] < baseline["recall"] - 0.1  # the shift really hurts
    for metric, value in realised.items():
        assert estimate[metric] == pytest.approx(value, abs=0.03), metric


def test_cbpe_calibrates_a_miscalibrated_model() -> None:
    rng = np.random.default_rng(10)
    ref_p, ref_labels = _simulate(rng, 2, 2)
    cbpe = CBPE().fit(ref_p**2, ref_labels)  # the model's scores are too low
    assert cbpe.reference_ece_ is not None
    assert cbpe.reference_ece_ > 0.1
    p, labels = _simulate(rng, 2, 2)
    realised = skm.accuracy_score(labels, (p**2 >= 0.5).astype(int))
    assert cbpe.estimate(p**2)["accuracy"] == pytest.approx(realised, abs=0.02)


def test_cbpe_misses_concept_drift(fitted: CBPE) -> None:
    """CBPE assumes no concept drift: when labels change given the scores, the
    estimate still reports the old performance. This test documents that limit."""
    rng = np.random.default_rng(11)
    scores, labels = _simulate(rng, 2, 2)
    flip = rng.random(N) < 0.3
    drifted = np.where(flip, 1 - labels, labels)
    realised = _realised(scores, drifted)
    estimate = fitted.estimate(scores)
    assert estimate["accuracy"] - realised["accuracy"] > 0.1
    assert estimate["roc_auc"] - realised["roc_auc"] > 0.1


def test_expected_roc_auc_is_weighted_mann_whitney() -> None:
    rng = np.random.default_rng(12)
    scores = np.round(rng.random(60), 1)  # with ties
    p = rng.random(60)
    num = den = 0.0
    for i in range(60):
        for j in range(60):
            weight = p[i] * (1 - p[j])
            den += weight
            num += weight * (1.0 if scores[i] > scores[j] else 0.5 if scores[i] == scores[j] else 0)
    assert expected_roc_auc(scores, p) == pytest.approx(num / den)
    # With 0/1 "probabilities" it is the ordinary ROC AUC.
    labels = (rng.random(60) < 0.5).astype(float)
    assert expected_roc_auc(scores, labels) == pytest.approx(skm.roc_auc_score(labels, scores))


def test_cbpe_windows_and_bounds(fitted: CBPE) -> None:
    scores, _ = _simulate(np.random.default_rng(13), 2, 2)
    frame = pd.DataFrame(
        {"time": pd.date_range("2024-01-01", periods=N, freq="1min"), "score": scores}
    )
    by_day = fitted.estimate_windows(frame, "score", window="1D")
    assert len(by_day) == math.ceil(N / 1440)
    assert by_day["rows"].sum() == N
    first = fitted.estimate(scores[:1440])
    assert by_day["accuracy"].iloc[0] == pytest.approx(first["accuracy"])
    by_rows = fitted.estimate_windows(frame, "score", window=5000)
    assert list(by_rows["rows"]) == [5000] * 4
    bounds = fitted.reference_bounds()
    assert set(bounds) == {"accuracy", "precision", "recall", "f1", "roc_auc"}
    for metric, (low, high) in bounds.items():
        assert 0.0 <= low < high <= 1.0
        assert low <= by_rows[metric].iloc[0] <= high, metric


def test_cbpe_bad_input(fitted: CBPE) -> None:
    with pytest.raises(InvalidArgument, match="binary and multiclass"):
        CBPE(model_type="regressor")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match=r"binary 0/1 labels.*2"):
        CBPE().fit([0.1, 0.5, 0.9], [0, 1, 2])
    with pytest.raises(InvalidArgument, match=r"lack class\(es\) \[0\]"):
        CBPE().fit([0.1, 0.5], [1, 1])
    with pytest.raises(InvalidArgument, match=r"\[0, 1\]"):
        fitted.estimate([0.2, 1.5])
    with pytest.raises(InvalidArgument, match="no_such"):
        fitted.estimate_windows(pd.DataFrame({"score": [0.5]}), "no_such")
    with pytest.raises(InvalidState, match="not fitted"):
        CBPE().estimate([0.5])


def _simulate_multiclass(
    rng: np.random.Generator, alpha: list[float], rows: int = N
) -> tuple[np.ndarray, np.ndarray]:
    probabilities = rng.dirichlet(alpha, rows)
    cumulative = probabilities.cumsum(axis=1)
    labels = (rng.random((rows, 1)) > cumulative).sum(axis=1)
    return probabilities, np.minimum(labels, len(alpha) - 1)


def _realised_multiclass(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    pred = scores.argmax(axis=1)
    return {
        "accuracy": skm.accuracy_score(labels, pred),
        "precision": skm.precision_score(labels, pred, average="macro", zero_division=0),
        "recall": skm.recall_score(labels, pred, average="macro", zero_division=0),
        "f1": skm.f1_score(labels, pred, average="macro", zero_division=0),
        "roc_auc": skm.roc_auc_score(labels, scores, multi_class="ovr", average="macro"),
    }


def test_cbpe_multiclass_matches_realised_and_tracks_shift() -> None:
    rng = np.random.default_rng(20)
    cbpe = CBPE(model_type="multiclass").fit(*_simulate_multiclass(rng, [1.0, 1.0, 1.0]))
    for alpha in ([1.0, 1.0, 1.0], [3.0, 1.0, 0.5]):  # the second is covariate shift
        scores, labels = _simulate_multiclass(rng, alpha)
        estimate = cbpe.estimate(scores)
        for metric, value in _realised_multiclass(scores, labels).items():
            assert estimate[metric] == pytest.approx(value, abs=0.03), (alpha, metric)
    calibrated = cbpe.calibrate(scores)
    assert calibrated.shape == scores.shape
    assert np.allclose(calibrated.sum(axis=1), 1.0)
    frame = pd.DataFrame(scores, columns=["a", "b", "c"])
    by_rows = cbpe.estimate_windows(frame, ["a", "b", "c"], window=10_000)
    assert list(by_rows["rows"]) == [10_000, 10_000]
    assert set(cbpe.reference_bounds()) == {"accuracy", "precision", "recall", "f1", "roc_auc"}


def test_cbpe_multiclass_bad_input() -> None:
    rng = np.random.default_rng(21)
    scores, labels = _simulate_multiclass(rng, [1.0, 1.0, 1.0], rows=300)
    with pytest.raises(InvalidArgument, match="two-dimensional"):
        CBPE(model_type="multiclass").fit(scores[:, 0], labels)
    with pytest.raises(InvalidArgument, match=r"class index 0\.\.2 labels.*5"):
        CBPE(model_type="multiclass").fit(scores, np.where(labels == 2, 5, labels))
    fitted = CBPE(model_type="multiclass").fit(scores, labels)
    with pytest.raises(InvalidArgument, match="fitted on 3 classes"):
        fitted.estimate(np.full((4, 4), 0.25))
