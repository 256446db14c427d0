"""Model performance over time: realised metrics per window, and CBPE estimates without labels.

:func:`realised_performance` scores labelled predictions window by window with
:func:`~modelloop.registry.evaluation.compute_metrics`. :class:`CBPE` follows NannyML's
confidence-based performance estimation for binary and multiclass classifiers: it
calibrates the model's scores on a labelled reference set (always, with isotonic
regression) and then, on unlabelled data, treats each calibrated probability ``p`` as
the chance that the row is in that class, which gives the *expected* confusion
matrix and metrics.

CBPE assumes that the calibrated probabilities stay right on the new data: it
follows covariate shift (a changed score distribution) but **cannot see concept
drift** (a changed relation between inputs and labels); under concept drift its
estimate is wrong, so keep checking realised performance once labels arrive.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from modelloop.errors import InvalidArgument, InvalidState
from modelloop.registry.evaluation import ModelType, compute_metrics

__all__ = ["CBPE", "CBPE_METRICS", "realised_performance"]

#: The metrics :meth:`CBPE.estimate` returns, in order.
CBPE_METRICS: tuple[str, ...] = ("accuracy", "precision", "recall", "f1", "roc_auc")

Window = str | int | None


def _require_columns(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InvalidArgument(f"the frame has no column(s) {missing}", missing=missing)


def _windows(
    frame: pd.DataFrame, window: Window, time_column: str
) -> Iterator[tuple[Any, Any, pd.DataFrame]]:
    """``(window_start, window_end, rows)`` for each non-empty window of ``frame``.

    ``None`` is one window and an ``int`` is that many consecutive rows per window
    (bounds are row positions, end exclusive); a string is a pandas offset alias
    grouped on ``time_column`` (bounds are timestamps, end exclusive).
    """
    if window is None:
        yield 0, len(frame), frame
        return
    if isinstance(window, bool) or not isinstance(window, int | str):
        raise InvalidArgument(f"window must be an offset alias, a row count or None: {window!r}")
    if isinstance(window, int):
        if window <= 0:
            raise InvalidArgument(f"a row window must be positive, got {window}")
        for start in range(0, len(frame), window):
            end = min(start + window, len(frame))
            yield start, end, frame.iloc[start:end]
        return
    _require_columns(frame, [time_column])
    try:
        offset = pd.tseries.frequencies.to_offset(window)
        times = pd.to_datetime(frame[time_column])
    except (ValueError, TypeError) as exc:
        raise InvalidArgument(f"cannot window on {time_column!r} by {window!r}: {exc}") from exc
    if times.isna().any():
        raise InvalidArgument(f"time column {time_column!r} has missing values")
    keyed = frame.assign(**{time_column: times})
    for key, rows in keyed.groupby(pd.Grouper(key=time_column, freq=offset)):
        if len(rows):
            first = pd.Timestamp(key)  # type: ignore[arg-type]
            yield first, first + offset, frame.loc[rows.index]


def realised_performance(
    frame: pd.DataFrame,
    *,
    target: str,
    prediction: str,
    model_type: ModelType,
    score_columns: list[str] | None = None,
    window: Window = None,
    time_column: str = "time",
) -> pd.DataFrame:
    """Metrics of the labelled rows of ``frame``, one row per window.

    Columns: ``window_start``, ``window_end``, ``rows`` (labelled rows scored),
    ``unlabelled`` (rows skipped because ``target`` is missing) and one column per
    metric of :func:`compute_metrics` (NaN where a window cannot give it, e.g.
    ``roc_auc`` with one class or a window without labels). ``score_columns`` are
    the predicted probabilities: one column per class in sorted label order, or for
    two classes just the positive class's. Class labels are taken from the whole
    frame, so every window uses the same positive class.
    """
    columns = [target, prediction, *(score_columns or [])]
    _require_columns(frame, columns)
    labelled_all = frame[target].notna()
    labels: list[Any] | None = None
    if model_type == "classifier":
        known = frame.loc[labelled_all, [target, prediction]]
        try:
            labels = sorted(pd.unique(known.to_numpy().ravel()).tolist())
        except TypeError:  # mixed label types
            labels = sorted(pd.unique(known.to_numpy().ravel()).tolist(), key=str)
    records: list[dict[str, Any]] = []
    for start, end, rows in _windows(frame, window, time_column):
        scored = rows[rows[target].notna()]
        record: dict[str, Any] = {
            "window_start": start,
            "window_end": end,
            "rows": len(scored),
            "unlabelled": len(rows) - len(scored),
        }
        if len(scored):
            y_score: Any = None
            if score_columns:
                y_score = scored[score_columns].to_numpy(dtype=float)
                if y_score.shape[1] == 1:
                    y_score = y_score[:, 0]
            record.update(
                compute_metrics(
                    scored[target].to_numpy(),
                    scored[prediction].to_numpy(),
                    model_type=model_type,
                    y_score=y_score,
                    labels=labels,
                )
            )
        records.append(record)
    return pd.DataFrame.from_records(records)


def _as_scores(scores: Any, name: str = "scores", ndim: int = 1) -> np.ndarray:
    try:
        array = np.asarray(scores, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"{name} must be numeric: {exc}") from exc
    if array.ndim != ndim:
        shape = "one-dimensional" if ndim == 1 else "two-dimensional (a column per class)"
        raise InvalidArgument(f"{name} must be {shape}, got shape {array.shape}")
    if len(array) == 0:
        raise InvalidArgument(f"{name} is empty")
    if not np.all(np.isfinite(array)) or array.min() < 0.0 or array.max() > 1.0:
        raise InvalidArgument(f"{name} must be finite probabilities in [0, 1]")
    return array


def _as_class_labels(labels: Any, n_classes: int) -> np.ndarray:
    """Labels as class indices ``0 .. n_classes - 1`` (0/1 or booleans when binary)."""
    array = np.asarray(labels)
    if array.ndim != 1:
        raise InvalidArgument(f"labels must be one-dimensional, got shape {array.shape}")
    allowed = set(range(n_classes))
    try:
        values = set(pd.unique(array).tolist())
    except TypeError as exc:
        raise InvalidArgument(f"labels must be class indices: {exc}") from exc
    bad = {v for v in values if isinstance(v, str) or v not in allowed}
    if bad:  # True == 1 and False == 0, so booleans pass
        shown = sorted(map(str, bad))[:5]
        wanted = "binary 0/1" if n_classes == 2 else f"class index 0..{n_classes - 1}"
        raise InvalidArgument(f"CBPE needs {wanted} labels, got {shown}", labels=shown)
    return array.astype(int)


def expected_calibration_error(scores: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    """The mean gap ``|mean(score) - mean(label)|`` over equal-width score bins,
    weighted by bin size (0 for a perfectly calibrated model)."""
    index = np.minimum((scores * bins).astype(int), bins - 1)
    counts = np.bincount(index, minlength=bins)
    gap = np.abs(
        np.bincount(index, weights=scores, minlength=bins)
        - np.bincount(index, weights=labels, minlength=bins)
    )
    return float(gap.sum() / counts.sum())


def expected_roc_auc(scores: np.ndarray, probabilities: np.ndarray) -> float:
    """The expected ROC AUC when row ``i`` is positive with probability ``p_i``.

    As in NannyML, rows are ranked by the model's score and the expected TPR/FPR
    curves are the cumulative sums of ``p`` and ``1 - p``; the area under that curve
    is a weighted Mann-Whitney statistic: each ordered pair ``(i, j)`` counts with
    weight ``p_i (1 - p_j)`` when ``score_i > score_j`` (half when tied), divided by
    ``sum(p) * sum(1 - p)``. NaN when all the weight is on one class.
    """
    unique, inverse = np.unique(scores, return_inverse=True)
    positive = np.bincount(inverse, weights=probabilities, minlength=len(unique))
    negative = np.bincount(inverse, weights=1.0 - probabilities, minlength=len(unique))
    total = positive.sum() * negative.sum()
    if total <= 0.0:
        return math.nan
    negatives_below = np.cumsum(negative) - negative
    return float(np.sum(positive * (negatives_below + 0.5 * negative)) / total)


class CBPE:
    """Confidence-based performance estimation (NannyML's CBPE).

    ``model_type="binary"``: scores are the positive class's probability, labels
    0/1. ``model_type="multiclass"``: scores have one column per class and labels
    are column indices; calibration is one-vs-rest and the calibrated rows are
    normalised to sum to 1, the predicted class is the arg-max of the raw scores,
    and precision, recall, f1 and roc_auc are macro averages over classes.

    :meth:`fit` always calibrates (one isotonic regression per class from the
    reference scores to the reference labels); ``reference_ece_`` records how far
    off the raw scores were (expected calibration error, averaged over classes).
    """

    def __init__(self, model_type: Literal["binary", "multiclass"] = "binary") -> None:
        if model_type not in ("binary", "multiclass"):
            raise InvalidArgument(
                "CBPE supports binary and multiclass classifiers", model_type=model_type
            )
        self.model_type = model_type
        self._calibrators: list[Any] = []
        self._reference_scores: np.ndarray | None = None
        self.reference_ece_: float | None = None

    def _matrix(self, scores: Any, name: str = "scores") -> np.ndarray:
        """Scores as an ``(n, classes)`` matrix (binary: ``[1 - s, s]``)."""
        if self.model_type == "binary":
            positive = _as_scores(scores, name)
            return np.column_stack([1.0 - positive, positive])
        matrix = _as_scores(scores, name, ndim=2)
        if matrix.shape[1] < 3:
            raise InvalidArgument(f"multiclass {name} need 3+ columns, got {matrix.shape[1]}")
        if self._calibrators and matrix.shape[1] != len(self._calibrators):
            raise InvalidArgument(
                f"{name} has {matrix.shape[1]} columns but CBPE was fitted on "
                f"{len(self._calibrators)} classes"
            )
        return matrix

    def fit(self, reference_scores: Any, reference_labels: Any) -> CBPE:
        """Calibrate on labelled reference data (see the class docstring for the shapes)."""
        from sklearn.isotonic import IsotonicRegression

        self._calibrators = []
        scores = self._matrix(reference_scores, "reference_scores")
        labels = _as_class_labels(reference_labels, scores.shape[1])
        if len(labels) != len(scores):
            raise InvalidArgument(
                f"reference_scores has {len(scores)} rows but reference_labels has {len(labels)}"
            )
        missing = sorted(set(range(scores.shape[1])) - set(labels.tolist()))
        if missing:
            raise InvalidArgument(f"reference_labels lack class(es) {missing}: all must appear")
        calibrators, eces = [], []
        for k in range(scores.shape[1]):
            target = (labels == k).astype(float)
            eces.append(expected_calibration_error(scores[:, k], target))
            calibrator = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
            calibrators.append(calibrator.fit(scores[:, k], target))
        self.reference_ece_ = float(np.mean(eces))
        self._calibrators = calibrators
        self._reference_scores = np.asarray(reference_scores, dtype=float)
        return self

    def _calibrated(self, matrix: np.ndarray) -> np.ndarray:
        if not self._calibrators:
            raise InvalidState("CBPE is not fitted: call fit() first")
        if self.model_type == "binary":
            p = np.clip(np.asarray(self._calibrators[1].predict(matrix[:, 1]), float), 0, 1)
            return np.column_stack([1.0 - p, p])
        columns = [
            np.asarray(c.predict(matrix[:, k]), float) for k, c in enumerate(self._calibrators)
        ]
        calibrated = np.clip(np.column_stack(columns), 0.0, 1.0)
        total = calibrated.sum(axis=1, keepdims=True)
        uniform = np.full_like(calibrated, 1.0 / calibrated.shape[1])
        normalised: np.ndarray = np.where(
            total > 0, calibrated / np.where(total > 0, total, 1), uniform
        )
        return normalised

    def calibrate(self, scores: Any) -> np.ndarray:
        """Calibrated probabilities (binary: the positive class's; else a column per class)."""
        calibrated = self._calibrated(self._matrix(scores))
        result: np.ndarray = calibrated[:, 1] if self.model_type == "binary" else calibrated
        return result

    def estimate(self, scores: Any, threshold: float = 0.5) -> dict[str, float]:
        """Expected accuracy, precision, recall, f1 and roc_auc of unlabelled scores.

        Binary: a row is predicted positive when ``score >= threshold``; multiclass:
        the predicted class is the arg-max (``threshold`` is unused). With calibrated
        probabilities ``p`` of class ``k``: TP = Σ p·[ŷ=k], FP = Σ (1-p)·[ŷ=k],
        FN = Σ p·[ŷ≠k]; expected accuracy is the mean of ``p`` of the predicted class.
        Binary metrics are those of the positive class, multiclass ones the macro
        average (0 when a denominator is 0, like ``zero_division=0``). ``roc_auc`` is
        :func:`expected_roc_auc` (one-vs-rest macro average when multiclass).
        """
        if not 0.0 <= threshold <= 1.0:
            raise InvalidArgument(f"threshold must be in [0, 1], got {threshold}")
        raw = self._matrix(scores)
        p = self._calibrated(raw)
        if self.model_type == "binary":
            predicted = (raw[:, 1] >= threshold).astype(int)
            classes = [1]
        else:
            predicted = np.argmax(raw, axis=1)
            classes = list(range(raw.shape[1]))
        rows = np.arange(len(p))
        out = {"accuracy": float(p[rows, predicted].mean())}
        per_class: dict[str, list[float]] = {m: [] for m in CBPE_METRICS[1:]}
        for k in classes:
            hit = predicted == k
            tp, fp = float(p[hit, k].sum()), float((1.0 - p[hit, k]).sum())
            fn = float(p[~hit, k].sum())
            per_class["precision"].append(tp / (tp + fp) if tp + fp > 0 else 0.0)
            per_class["recall"].append(tp / (tp + fn) if tp + fn > 0 else 0.0)
            per_class["f1"].append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn > 0 else 0.0)
            per_class["roc_auc"].append(expected_roc_auc(raw[:, k], p[:, k]))
        out.update({m: float(np.mean(v)) for m, v in per_class.items()})
        return out

    def estimate_windows(
        self,
        frame: pd.DataFrame,
        score_column: str | list[str],
        *,
        window: Window = None,
        time_column: str = "time",
        threshold: float = 0.5,
    ) -> pd.DataFrame:
        """:meth:`estimate` per window of ``frame`` (windows as :func:`realised_performance`):
        columns ``window_start``, ``window_end``, ``rows`` and one per metric.
        ``score_column`` is one column (binary) or one column per class (multiclass)."""
        columns = [score_column] if isinstance(score_column, str) else list(score_column)
        _require_columns(frame, columns)
        records: list[dict[str, Any]] = []
        for start, end, rows in _windows(frame, window, time_column):
            record: dict[str, Any] = {"window_start": start, "window_end": end, "rows": len(rows)}
            values = rows[columns].to_numpy(dtype=float)
            scores = values[:, 0] if self.model_type == "binary" and len(columns) == 1 else values
            record.update(self.estimate(scores, threshold=threshold))
            records.append(record)
        return pd.DataFrame.from_records(records)

    def reference_bounds(
        self, chunks: int = 10, threshold: float = 0.5, std_multiplier: float = 3.0
    ) -> dict[str, tuple[float, float]]:
        """Alert bounds per metric: mean ± ``std_multiplier`` standard deviations of the
        estimate over ``chunks`` equal consecutive chunks of the reference scores,
        clipped to [0, 1] (NannyML's ``StandardDeviationThreshold``). An estimate
        outside its bounds on new data is worth an alert."""
        if self._reference_scores is None:
            raise InvalidState("CBPE is not fitted: call fit() first")
        if chunks < 2 or chunks > len(self._reference_scores):
            raise InvalidArgument(
                f"chunks must be between 2 and {len(self._reference_scores)}, got {chunks}"
            )
        values: dict[str, list[float]] = {m: [] for m in CBPE_METRICS}
        for part in np.array_split(self._reference_scores, chunks):
            for metric, value in self.estimate(part, threshold=threshold).items():
                values[metric].append(value)
        bounds: dict[str, tuple[float, float]] = {}
        for metric, series in values.items():
            finite = np.asarray([v for v in series if not math.isnan(v)])
            if len(finite) < 2:
                bounds[metric] = (math.nan, math.nan)
                continue
            mean, std = float(finite.mean()), float(finite.std(ddof=1))
            low = max(0.0, mean - std_multiplier * std)
            bounds[metric] = (low, min(1.0, mean + std_multiplier * std))
        return bounds
