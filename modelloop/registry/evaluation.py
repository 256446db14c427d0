"""Scoring a model on a labelled DataFrame: metrics, per-slice metrics and latency.

Everything here is pure computation (scikit-learn's metric functions on arrays);
nothing touches a store. :func:`evaluate` predicts once on the whole frame, then
scores the overall rows and every slice from those same predictions, and times
single-row predictions for the latency metrics that promotion gates check.

Classification metrics: ``accuracy``, ``precision``, ``recall``, ``f1``,
``roc_auc``, ``log_loss`` and ``example_count``. With two classes, ``precision``,
``recall`` and ``f1`` are those of the positive class (the greater label); with
more, they are the unweighted mean over classes (macro average). Regression
metrics: ``rmse``, ``mae``, ``r2``, ``mape`` and ``example_count``.
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, TypeAlias

import numpy as np
import pandas as pd

from modelloop.errors import InvalidArgument, InvalidState

__all__ = [
    "HIGHER_IS_BETTER",
    "MIN_SLICE_ROWS",
    "EvaluationResult",
    "ModelType",
    "SliceSpec",
    "compute_metrics",
    "confusion_matrix",
    "evaluate",
    "split_slices",
]

ModelType = Literal["classifier", "regressor"]
MODEL_TYPES: tuple[str, ...] = ("classifier", "regressor")

#: A slice: a column name (one slice per distinct value), a pandas query string
#: (one slice named by the query), or ``(name, mask_function)``.
SliceSpec: TypeAlias = str | tuple[str, Callable[[pd.DataFrame], Any]]

#: Slices with fewer rows than this are still scored but listed in
#: :attr:`EvaluationResult.small_slices` (their metrics are noise).
MIN_SLICE_ROWS = 2

#: Whether a larger value of each metric is better (used by promotion gates).
HIGHER_IS_BETTER: dict[str, bool] = {
    "accuracy": True,
    "precision": True,
    "recall": True,
    "f1": True,
    "roc_auc": True,
    "log_loss": False,
    "rmse": False,
    "mae": False,
    "r2": True,
    "mape": False,
    "example_count": True,
    "latency_p50_ms": False,
    "latency_p95_ms": False,
    "batch_rows_per_s": True,
}

_QUERY_OPERATOR = re.compile(r"==|!=|>=|<=|<|>|\bin\b|\bnot\b|\band\b|\bor\b|&|\|")


def _check_model_type(model_type: str) -> None:
    if model_type not in MODEL_TYPES:
        raise InvalidArgument(f"model_type must be 'classifier' or 'regressor', got {model_type!r}")


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (labels must be JSON-able)."""
    return value.item() if isinstance(value, np.generic) else value


def _sorted_labels(*arrays: Any) -> list[Any]:
    """The distinct values of the arrays, sorted (by ``str`` when types are mixed)."""
    try:
        return [_plain(v) for v in np.unique(np.concatenate([np.asarray(a) for a in arrays]))]
    except TypeError:  # mixed types in an object array
        unique = {_plain(v) for a in arrays for v in a}
        return sorted(unique, key=str)


def confusion_matrix(
    y_true: Any, y_pred: Any, labels: Sequence[Any] | None = None
) -> dict[str, Any]:
    """The confusion matrix as ``{"labels": [...], "matrix": [[int, ...], ...]}``.

    Row ``i`` is the true label ``labels[i]``, column ``j`` the predicted label
    ``labels[j]``. Without ``labels``, the sorted union of both arrays is used.
    """
    from sklearn.metrics import confusion_matrix as sk_confusion_matrix

    true = np.asarray(y_true)
    pred = np.asarray(y_pred)
    if len(true) != len(pred):
        raise InvalidArgument(f"y_true has {len(true)} rows but y_pred has {len(pred)}")
    label_list = [_plain(v) for v in labels] if labels is not None else _sorted_labels(true, pred)
    if not label_list:
        raise InvalidArgument("confusion_matrix needs at least one label")
    matrix = sk_confusion_matrix(true, pred, labels=label_list)
    return {"labels": label_list, "matrix": [[int(c) for c in row] for row in matrix]}


def compute_metrics(
    y_true: Any,
    y_pred: Any,
    *,
    model_type: ModelType,
    y_score: Any = None,
    labels: Sequence[Any] | None = None,
) -> dict[str, float]:
    """The metrics of one set of predictions (see the module docstring for the names).

    ``y_score`` holds predicted probabilities for a classifier: one column per label
    of ``labels`` (in that order), or for two classes a 1-D array of the positive
    class's probability. ``roc_auc`` is omitted without ``y_score`` or when ``y_true``
    holds a single class; ``log_loss`` is omitted without ``y_score``. Without
    ``labels``, the sorted union of ``y_true`` and ``y_pred`` is used.
    """
    _check_model_type(model_type)
    true = np.asarray(y_true)
    pred = np.asarray(y_pred)
    if true.ndim != 1 or pred.ndim != 1:
        raise InvalidArgument("y_true and y_pred must be one-dimensional")
    if len(true) != len(pred):
        raise InvalidArgument(f"y_true has {len(true)} rows but y_pred has {len(pred)}")
    if len(true) == 0:
        raise InvalidArgument("cannot compute metrics on zero rows")
    try:
        if model_type == "regressor":
            return _regression_metrics(true, pred)
        label_list = (
            [_plain(v) for v in labels] if labels is not None else _sorted_labels(true, pred)
        )
        return _classification_metrics(true, pred, y_score, label_list)
    except ValueError as exc:  # scikit-learn's complaint about its input (NaN, ...)
        raise InvalidArgument(f"cannot compute metrics: {exc}") from exc


def _regression_metrics(true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    from sklearn import metrics as skm

    try:
        true_f = true.astype(float)
        pred_f = pred.astype(float)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"regression targets and predictions must be numeric: {exc}") from exc
    out = {
        "rmse": float(skm.root_mean_squared_error(true_f, pred_f)),
        "mae": float(skm.mean_absolute_error(true_f, pred_f)),
        # R² is undefined on one row (sklearn warns and answers NaN).
        "r2": float(skm.r2_score(true_f, pred_f)) if len(true_f) >= 2 else math.nan,
        "mape": float(skm.mean_absolute_percentage_error(true_f, pred_f)),
        "example_count": float(len(true_f)),
    }
    return out


def _classification_metrics(
    true: np.ndarray, pred: np.ndarray, y_score: Any, labels: list[Any]
) -> dict[str, float]:
    from sklearn import metrics as skm

    present = set(_sorted_labels(true, pred))
    unknown = present - set(labels)
    if unknown:
        raise InvalidArgument(f"labels do not include {sorted(map(str, unknown))}")
    binary = len(labels) == 2
    averaging: dict[str, Any] = (
        {"average": "binary", "pos_label": labels[-1]} if binary else {"average": "macro"}
    )
    out: dict[str, float] = {
        "accuracy": float(skm.accuracy_score(true, pred)),
        "precision": float(
            skm.precision_score(true, pred, labels=labels, zero_division=0, **averaging)
        ),
        "recall": float(skm.recall_score(true, pred, labels=labels, zero_division=0, **averaging)),
        "f1": float(skm.f1_score(true, pred, labels=labels, zero_division=0, **averaging)),
        "example_count": float(len(true)),
    }
    if y_score is None or len(labels) < 2:
        return out
    score = np.asarray(y_score, dtype=float)
    if score.ndim == 2 and score.shape[1] == 1:
        score = score[:, 0]
    if len(score) != len(true):
        raise InvalidArgument(f"y_score has {len(score)} rows but y_true has {len(true)}")
    if score.ndim == 1 and not binary:
        raise InvalidArgument("a 1-D y_score is only meaningful for two classes")
    if score.ndim == 2 and score.shape[1] != len(labels):
        raise InvalidArgument(
            f"y_score has {score.shape[1]} columns but there are {len(labels)} labels"
        )
    positive = score if score.ndim == 1 else score[:, -1]
    true_classes = set(_sorted_labels(true))
    if len(true_classes) >= 2:
        if binary:
            out["roc_auc"] = float(skm.roc_auc_score(true == labels[-1], positive))
        else:
            out["roc_auc"] = _ovr_macro_auc(true, score, labels, true_classes)
    out["log_loss"] = float(skm.log_loss(true, positive if binary else score, labels=labels))
    return out


def _ovr_macro_auc(
    true: np.ndarray, score: np.ndarray, labels: list[Any], true_classes: set[Any]
) -> float:
    """One-vs-rest macro ROC AUC; classes absent from ``y_true`` are left out of the mean
    (sklearn's own function refuses them)."""
    from sklearn import metrics as skm

    if true_classes == set(labels):
        return float(
            skm.roc_auc_score(true, score, multi_class="ovr", average="macro", labels=labels)
        )
    aucs = [
        float(skm.roc_auc_score(true == label, score[:, i]))
        for i, label in enumerate(labels)
        if label in true_classes
    ]
    return float(np.mean(aucs))


def split_slices(data: pd.DataFrame, slices: Iterable[SliceSpec]) -> list[tuple[str, pd.DataFrame]]:
    """The named sub-frames the slice specs select, in spec order; empty ones are skipped.

    A column name gives one slice per distinct value (``"region=north"``, missing
    values as ``"region=nan"``); a string with an operator is a pandas query (the
    slice is named by the query); ``(name, fn)`` uses ``fn(data)`` as a row mask.
    """
    out: list[tuple[str, pd.DataFrame]] = []
    for spec in slices:
        if isinstance(spec, tuple):
            out.extend(_mask_slice(data, spec))
        elif isinstance(spec, str) and spec in data.columns:
            out.extend(_column_slices(data, spec))
        elif isinstance(spec, str) and _QUERY_OPERATOR.search(spec):
            try:
                sub = data.query(spec)
            except Exception as exc:  # pandas raises many kinds for a bad query
                raise InvalidArgument(f"slice query {spec!r} failed: {exc}") from exc
            out.append((spec, sub))
        elif isinstance(spec, str):
            raise InvalidArgument(f"slice {spec!r} is neither a column of the data nor a query")
        else:
            raise InvalidArgument(
                f"a slice must be a string or a (name, function) pair, got {spec!r}"
            )
    names = [name for name, _ in out]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidArgument(f"duplicate slice names: {duplicates}")
    return [(name, sub) for name, sub in out if len(sub)]


def _column_slices(data: pd.DataFrame, column: str) -> list[tuple[str, pd.DataFrame]]:
    col = data[column]
    out: list[tuple[str, pd.DataFrame]] = []
    for value in _sorted_labels(col.dropna().unique()):
        out.append((f"{column}={value}", data[col == value]))
    if col.isna().any():
        out.append((f"{column}=nan", data[col.isna()]))
    return out


def _mask_slice(data: pd.DataFrame, spec: tuple[Any, ...]) -> list[tuple[str, pd.DataFrame]]:
    if len(spec) != 2 or not isinstance(spec[0], str) or not callable(spec[1]):
        raise InvalidArgument("a slice tuple must be (name: str, mask_function)")
    name, fn = spec
    mask = np.asarray(fn(data))
    if mask.dtype != bool or mask.shape != (len(data),):
        raise InvalidArgument(
            f"slice {name!r}: the function must return one boolean per row ({len(data)})"
        )
    return [(name, data[mask])]


def _nan_safe(value: float) -> float | str | None:
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _nan_load(value: Any) -> float:
    return math.nan if value is None else float(value)


def _dump_metrics(metrics: Mapping[str, float]) -> dict[str, float | str | None]:
    return {k: _nan_safe(float(v)) for k, v in metrics.items()}


def _load_metrics(raw: Mapping[str, Any]) -> dict[str, float]:
    return {str(k): _nan_load(v) for k, v in raw.items()}


@dataclasses.dataclass(frozen=True)
class EvaluationResult:
    """A model's scores on one labelled DataFrame: overall, per slice and latency."""

    model_type: ModelType
    metrics: dict[str, float]
    slices: dict[str, dict[str, float]]
    confusion_matrix: dict[str, Any] | None
    row_count: int
    target: str
    #: Slices with fewer than :data:`MIN_SLICE_ROWS` rows (scored, but unreliable).
    small_slices: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (NaN becomes null, infinities the strings ``"Infinity"``)."""
        return {
            "model_type": self.model_type,
            "metrics": _dump_metrics(self.metrics),
            "slices": {name: _dump_metrics(m) for name, m in self.slices.items()},
            "confusion_matrix": self.confusion_matrix,
            "row_count": self.row_count,
            "target": self.target,
            "small_slices": list(self.small_slices),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvaluationResult:
        """The inverse of :meth:`to_dict`."""
        try:
            model_type = data["model_type"]
            _check_model_type(model_type)
            return cls(
                model_type=model_type,
                metrics=_load_metrics(data["metrics"]),
                slices={str(k): _load_metrics(v) for k, v in (data.get("slices") or {}).items()},
                confusion_matrix=data.get("confusion_matrix"),
                row_count=int(data["row_count"]),
                target=str(data["target"]),
                small_slices=tuple(data.get("small_slices") or ()),
            )
        except KeyError as exc:
            raise InvalidArgument(f"evaluation result is missing {exc.args[0]!r}") from exc
        except (TypeError, ValueError, AttributeError) as exc:
            raise InvalidArgument(f"malformed evaluation result: {exc}") from exc


def _as_1d(values: Any, rows: int, what: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1 or len(arr) != rows:
        raise InvalidArgument(f"{what} returned shape {arr.shape} for {rows} rows")
    return arr


def _probabilities(predictor: Any, features: pd.DataFrame) -> np.ndarray | None:
    proba_fn = getattr(predictor, "predict_proba", None)
    if proba_fn is None:
        return None
    try:
        proba = np.asarray(proba_fn(features), dtype=float)
    except (InvalidState, AttributeError, NotImplementedError):
        return None
    if proba.ndim not in (1, 2) or len(proba) != len(features):
        raise InvalidArgument(
            f"predict_proba returned shape {proba.shape} for {len(features)} rows"
        )
    return proba


def _class_labels(predictor: Any, y_true: np.ndarray, y_pred: np.ndarray) -> list[Any]:
    classes = getattr(predictor, "classes_", None)
    labels = _sorted_labels(y_true, y_pred)
    if classes is not None:
        declared = [_plain(c) for c in classes]
        if set(labels) <= set(declared):
            return declared
    return labels


def _latency(predictor: Any, features: pd.DataFrame, samples: int) -> dict[str, float]:
    count = min(samples, len(features))
    if count <= 0:
        return {}
    positions = np.unique(np.linspace(0, len(features) - 1, num=count).round().astype(int))
    timings: list[float] = []
    for pos in positions:
        row = features.iloc[[int(pos)]]
        start = time.perf_counter()
        predictor.predict(row)
        timings.append((time.perf_counter() - start) * 1000.0)
    return {
        "latency_p50_ms": float(np.percentile(timings, 50)),
        "latency_p95_ms": float(np.percentile(timings, 95)),
    }


def evaluate(
    predictor: Any,
    data: pd.DataFrame,
    target: str,
    *,
    model_type: ModelType,
    slices: Iterable[SliceSpec] = (),
    latency_samples: int = 100,
    feature_columns: Sequence[str] | None = None,
) -> EvaluationResult:
    """Score ``predictor`` (anything with ``predict(DataFrame)``) on ``data``.

    The features are every column but ``target`` (or ``feature_columns``). The model
    predicts once on the whole frame; overall and per-slice metrics come from those
    predictions. A classifier's ``predict_proba`` is used for ``roc_auc`` and
    ``log_loss`` when it exists and works. ``latency_samples`` evenly spaced rows
    are predicted one at a time for ``latency_p50_ms`` / ``latency_p95_ms``;
    ``batch_rows_per_s`` is the throughput of the whole-frame prediction.
    """
    _check_model_type(model_type)
    if not isinstance(data, pd.DataFrame):
        raise InvalidArgument(f"data must be a pandas DataFrame, got {type(data).__name__}")
    if target not in data.columns:
        raise InvalidArgument(f"target column {target!r} is not in the data")
    if len(data) == 0:
        raise InvalidArgument("cannot evaluate on an empty DataFrame")
    if latency_samples < 0:
        raise InvalidArgument(f"latency_samples must be >= 0, got {latency_samples}")
    frame = data.reset_index(drop=True)
    if feature_columns is None:
        columns = [c for c in frame.columns if c != target]
    else:
        columns = list(feature_columns)
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise InvalidArgument(f"feature columns not in the data: {missing}")
        if target in columns:
            raise InvalidArgument(f"the target {target!r} cannot be a feature column")
    if not columns:
        raise InvalidArgument("the data has no feature columns")
    features = frame[columns]
    y_true = frame[target].to_numpy()

    start = time.perf_counter()
    y_pred = _as_1d(predictor.predict(features), len(frame), "predict")
    elapsed = max(time.perf_counter() - start, 1e-9)
    y_score = _probabilities(predictor, features) if model_type == "classifier" else None

    labels: list[Any] | None = None
    cmatrix: dict[str, Any] | None = None
    if model_type == "classifier":
        labels = _class_labels(predictor, y_true, y_pred)
        if y_score is not None and y_score.ndim == 2 and y_score.shape[1] != len(labels):
            y_score = None  # columns cannot be matched to classes: skip probability metrics
        cmatrix = confusion_matrix(y_true, y_pred, labels)

    def score(positions: np.ndarray | None) -> dict[str, float]:
        if positions is None:
            return compute_metrics(
                y_true, y_pred, model_type=model_type, y_score=y_score, labels=labels
            )
        return compute_metrics(
            y_true[positions],
            y_pred[positions],
            model_type=model_type,
            y_score=None if y_score is None else y_score[positions],
            labels=labels,
        )

    metrics = score(None)
    metrics.update(_latency(predictor, features, latency_samples))
    metrics["batch_rows_per_s"] = len(frame) / elapsed
    slice_metrics: dict[str, dict[str, float]] = {}
    small: list[str] = []
    for name, sub in split_slices(frame, slices):
        slice_metrics[name] = score(sub.index.to_numpy())
        if len(sub) < MIN_SLICE_ROWS:
            small.append(name)
    return EvaluationResult(
        model_type=model_type,
        metrics=metrics,
        slices=slice_metrics,
        confusion_matrix=cmatrix,
        row_count=len(frame),
        target=target,
        small_slices=tuple(small),
    )
