"""Two-sample drift statistics, computed the way Evidently computes them.

Every test takes the reference and the current values (missing values already
dropped) and returns a :class:`StatResult`. A p-value test reports drift when
``p < threshold``; a distance reports drift when ``value >= threshold``. Names and
default thresholds follow Evidently 0.7 (``stattests/*.py``), so verdicts stay
comparable with an Evidently report on the same data.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import stats  # type: ignore[import-untyped]
from scipy.spatial import distance  # type: ignore[import-untyped]

from modelloop.errors import InvalidArgument
from modelloop.monitoring.column_types import ColumnType, validate_column_type

__all__ = [
    "STATTESTS",
    "StatKind",
    "StatResult",
    "StatTest",
    "anderson",
    "binned_frequencies",
    "chisquare",
    "cramer_von_mises",
    "default_test",
    "get_stattest",
    "hellinger",
    "jensenshannon",
    "kl_div",
    "ks",
    "psi",
    "wasserstein",
    "z",
]

StatKind = Literal["p_value", "distance"]
FloatArray = NDArray[np.float64]

# Evidently switches from p-value tests to distances above this many reference rows.
SMALL_DATA_ROWS = 1000
# get_binned_data bins numeric columns when the *reference* has more distinct values.
BINNING_MIN_UNIQUE = 20
# Evidently's wasserstein floors the reference std so a constant reference cannot divide by 0.
_MIN_STD = 0.001


@dataclass(frozen=True)
class StatResult:
    """The outcome of one statistical test."""

    name: str
    kind: StatKind
    value: float
    threshold: float
    drifted: bool

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of the result."""
        return asdict(self)


def _verdict(name: str, kind: StatKind, value: float, threshold: float) -> StatResult:
    value = float(value)
    drifted = value < threshold if kind == "p_value" else value >= threshold
    return StatResult(name, kind, value, float(threshold), bool(drifted))


def _numeric(values: ArrayLike, name: str) -> FloatArray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"{name} needs numeric values: {exc}") from exc
    if array.ndim != 1 or array.size == 0:
        raise InvalidArgument(f"{name} needs a non-empty one-dimensional sample")
    if not np.isfinite(array).all():
        raise InvalidArgument(f"{name} got missing or infinite values; drop them first")
    return array


def _series(values: ArrayLike, name: str) -> pd.Series:
    series = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values))
    if series.empty:
        raise InvalidArgument(f"{name} needs a non-empty sample")
    return series


def _sorted_keys(index: pd.Index) -> list[Any]:
    keys = list(index)
    try:
        return sorted(keys)
    except TypeError:  # mixed types (e.g. str and int): order by text, still deterministic
        return sorted(keys, key=repr)


def _category_counts(
    reference: ArrayLike, current: ArrayLike, name: str
) -> tuple[list[Any], FloatArray, FloatArray]:
    """Counts of each distinct value over the union of both samples' values."""
    ref_counts = _series(reference, name).value_counts(dropna=True)
    cur_counts = _series(current, name).value_counts(dropna=True)
    keys = _sorted_keys(ref_counts.index.union(cur_counts.index, sort=False))
    ref = np.asarray(ref_counts.reindex(keys, fill_value=0), dtype=np.float64)
    cur = np.asarray(cur_counts.reindex(keys, fill_value=0), dtype=np.float64)
    return keys, ref, cur


def _fill_zeroes(percents: FloatArray) -> FloatArray:
    # Evidently's get_binned_data(feel_zeroes=True): an empty bin gets 1e-4, or a
    # millionth of the smallest non-empty share when that is already <= 1e-4, so that
    # log(p/q) in psi and kl_div stays finite.
    filled = percents.copy()
    smallest = filled[filled != 0].min()
    filled[filled == 0] = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    return filled


def binned_frequencies(
    reference: ArrayLike,
    current: ArrayLike,
    column_type: ColumnType = "numeric",
    *,
    fill_zeroes: bool = False,
) -> tuple[FloatArray, FloatArray]:
    """Reference and current shares per bin, as Evidently's ``get_binned_data``.

    A numeric column whose reference has more than 20 distinct values is cut into
    Sturges bins over the combined data; anything else uses one bin per distinct value
    over the union of both samples.
    """
    if column_type in ("numeric", "datetime"):
        ref = _numeric(reference, "binning")
        cur = _numeric(current, "binning")
        if len(np.unique(ref)) > BINNING_MIN_UNIQUE:
            edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
            ref_pct = np.histogram(ref, edges)[0] / len(ref)
            cur_pct = np.histogram(cur, edges)[0] / len(cur)
        else:
            _, ref_n, cur_n = _category_counts(ref, cur, "binning")
            ref_pct, cur_pct = ref_n / len(ref), cur_n / len(cur)
    else:
        _, ref_n, cur_n = _category_counts(reference, current, "binning")
        ref_pct, cur_pct = ref_n / ref_n.sum(), cur_n / cur_n.sum()
    ref_pct = np.asarray(ref_pct, dtype=np.float64)
    cur_pct = np.asarray(cur_pct, dtype=np.float64)
    if fill_zeroes:
        return _fill_zeroes(ref_pct), _fill_zeroes(cur_pct)
    return ref_pct, cur_pct


def ks(reference: ArrayLike, current: ArrayLike, *, threshold: float | None = None) -> StatResult:
    """Two-sample Kolmogorov-Smirnov p-value (``scipy.stats.ks_2samp``)."""
    ref, cur = _numeric(reference, "ks"), _numeric(current, "ks")
    p_value = stats.ks_2samp(ref, cur).pvalue
    return _verdict("ks", "p_value", p_value, _threshold("ks", threshold))


def chisquare(
    reference: ArrayLike,
    current: ArrayLike,
    *,
    column_type: ColumnType = "categorical",
    threshold: float | None = None,
) -> StatResult:
    """Chi-square goodness of fit of current counts against reference proportions.

    Categories are the union of both samples. As in Evidently, a category absent from
    the reference has an expected count of 0, so any current row in it makes the
    statistic infinite and the p-value 0: an unseen category is drift. A single
    category overall gives p = 1 (nothing to compare; SciPy would return NaN).
    """
    del column_type  # chisquare always compares per-value counts, numeric or not
    keys, ref_n, cur_n = _category_counts(reference, current, "chisquare")
    if len(keys) < 2:
        return _verdict("chisquare", "p_value", 1.0, _threshold("chisquare", threshold))
    f_exp = ref_n * (cur_n.sum() / ref_n.sum())
    # (obs - 0)^2 / 0 is the intended infinity for unseen categories; silence numpy.
    with np.errstate(divide="ignore", invalid="ignore"):
        p_value = stats.chisquare(cur_n, f_exp).pvalue
    return _verdict("chisquare", "p_value", p_value, _threshold("chisquare", threshold))


def z(
    reference: ArrayLike,
    current: ArrayLike,
    *,
    column_type: ColumnType = "categorical",
    threshold: float | None = None,
) -> StatResult:
    """Two-proportion Z-test (pooled variance), two-sided p-value.

    For at most two distinct values: the share of the first value (in sorted order)
    is compared between samples. One value overall gives p = 1, as in Evidently. The
    p-value is ``2 * norm.sf(|z|)``, equal to Evidently's ``2 * (1 - norm.cdf(|z|))``
    but without its loss of precision in the tail.
    """
    del column_type
    keys, ref_n, cur_n = _category_counts(reference, current, "z")
    if len(keys) > 2:
        raise InvalidArgument(f"z test needs at most 2 distinct values, got {len(keys)}")
    if len(keys) < 2:
        return _verdict("z", "p_value", 1.0, _threshold("z", threshold))
    n1, n2 = ref_n.sum(), cur_n.sum()
    p1, p2 = ref_n[0] / n1, cur_n[0] / n2
    pooled = (ref_n[0] + cur_n[0]) / (n1 + n2)
    z_stat = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    p_value = 2 * stats.norm.sf(abs(z_stat))
    return _verdict("z", "p_value", p_value, _threshold("z", threshold))


def wasserstein(
    reference: ArrayLike, current: ArrayLike, *, threshold: float | None = None
) -> StatResult:
    """Wasserstein-1 distance divided by the reference std (Evidently's "normed").

    The std (population, ddof=0) is floored at 0.001 as Evidently does, so a constant
    reference does not divide by zero.
    """
    ref, cur = _numeric(reference, "wasserstein"), _numeric(current, "wasserstein")
    norm = max(float(np.std(ref)), _MIN_STD)
    value = stats.wasserstein_distance(ref, cur) / norm
    return _verdict("wasserstein", "distance", value, _threshold("wasserstein", threshold))


def jensenshannon(
    reference: ArrayLike,
    current: ArrayLike,
    *,
    column_type: ColumnType = "numeric",
    threshold: float | None = None,
) -> StatResult:
    """SciPy's Jensen-Shannon *distance* (natural log) of the binned frequencies."""
    ref_pct, cur_pct = binned_frequencies(reference, current, column_type)
    value = distance.jensenshannon(ref_pct, cur_pct)
    return _verdict("jensenshannon", "distance", value, _threshold("jensenshannon", threshold))


def psi(
    reference: ArrayLike,
    current: ArrayLike,
    *,
    column_type: ColumnType = "numeric",
    threshold: float | None = None,
) -> StatResult:
    """Population stability index sum((ref - cur) * ln(ref / cur)); empty bins filled as
    Evidently's ``get_binned_data`` does (1e-4, or 1e-6 x the smallest share if <= 1e-4)."""
    ref_pct, cur_pct = binned_frequencies(reference, current, column_type, fill_zeroes=True)
    value = np.sum((ref_pct - cur_pct) * np.log(ref_pct / cur_pct))
    return _verdict("psi", "distance", value, _threshold("psi", threshold))


def kl_div(
    reference: ArrayLike,
    current: ArrayLike,
    *,
    column_type: ColumnType = "numeric",
    threshold: float | None = None,
) -> StatResult:
    """KL(reference || current) via ``scipy.stats.entropy``; empty bins filled as in psi."""
    ref_pct, cur_pct = binned_frequencies(reference, current, column_type, fill_zeroes=True)
    value = stats.entropy(ref_pct, cur_pct)
    return _verdict("kl_div", "distance", value, _threshold("kl_div", threshold))


def hellinger(
    reference: ArrayLike,
    current: ArrayLike,
    *,
    column_type: ColumnType = "numeric",
    threshold: float | None = None,
) -> StatResult:
    """Hellinger distance sqrt(0.5 * sum((sqrt p - sqrt q)^2)), in [0, 1], over JS's bins."""
    ref_pct, cur_pct = binned_frequencies(reference, current, column_type)
    value = np.sqrt(0.5 * np.sum((np.sqrt(ref_pct) - np.sqrt(cur_pct)) ** 2))
    return _verdict("hellinger", "distance", value, _threshold("hellinger", threshold))


def anderson(
    reference: ArrayLike, current: ArrayLike, *, threshold: float | None = None
) -> StatResult:
    """k-sample Anderson-Darling significance (``scipy.stats.anderson_ksamp``, midrank).

    SciPy caps the significance to [0.001, 0.25]; the cap warning is expected and
    silenced. All values equal in both samples gives p = 1 (SciPy refuses that input).
    """
    ref, cur = _numeric(reference, "anderson"), _numeric(current, "anderson")
    if np.unique(np.concatenate([ref, cur])).size < 2:
        return _verdict("anderson", "p_value", 1.0, _threshold("anderson", threshold))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="p-value capped", category=UserWarning)
        p_value = stats.anderson_ksamp([ref, cur], variant="midrank").pvalue
    return _verdict("anderson", "p_value", p_value, _threshold("anderson", threshold))


def cramer_von_mises(
    reference: ArrayLike, current: ArrayLike, *, threshold: float | None = None
) -> StatResult:
    """Two-sample Cramér-von Mises p-value (``scipy.stats.cramervonmises_2samp``)."""
    ref = _numeric(reference, "cramer_von_mises")
    cur = _numeric(current, "cramer_von_mises")
    if ref.size < 2 or cur.size < 2:
        raise InvalidArgument("cramer_von_mises needs at least 2 values in each sample")
    p_value = stats.cramervonmises_2samp(ref, cur).pvalue
    name = "cramer_von_mises"
    return _verdict(name, "p_value", p_value, _threshold(name, threshold))


@dataclass(frozen=True)
class StatTest:
    """A registered test: its kind, Evidently's default threshold, and what it accepts."""

    name: str
    kind: StatKind
    default_threshold: float
    numeric_only: bool
    min_rows: int
    func: Callable[..., StatResult]

    def run(
        self,
        reference: ArrayLike,
        current: ArrayLike,
        *,
        column_type: ColumnType = "numeric",
        threshold: float | None = None,
    ) -> StatResult:
        """Run the test; ``column_type`` picks the binning path of the binned tests."""
        if self.numeric_only:
            return self.func(reference, current, threshold=threshold)
        return self.func(reference, current, column_type=column_type, threshold=threshold)


STATTESTS: Mapping[str, StatTest] = {
    test.name: test
    for test in (
        StatTest("ks", "p_value", 0.05, True, 1, ks),
        StatTest("chisquare", "p_value", 0.05, False, 1, chisquare),
        StatTest("z", "p_value", 0.05, False, 1, z),
        StatTest("anderson", "p_value", 0.1, True, 1, anderson),
        StatTest("cramer_von_mises", "p_value", 0.1, True, 2, cramer_von_mises),
        StatTest("wasserstein", "distance", 0.1, True, 1, wasserstein),
        StatTest("jensenshannon", "distance", 0.1, False, 1, jensenshannon),
        StatTest("psi", "distance", 0.1, False, 1, psi),
        StatTest("kl_div", "distance", 0.1, False, 1, kl_div),
        StatTest("hellinger", "distance", 0.1, False, 1, hellinger),
    )
}


def get_stattest(name: str) -> StatTest:
    """The registered test called ``name``, or ``InvalidArgument`` listing the known ones."""
    try:
        return STATTESTS[name]
    except KeyError:
        raise InvalidArgument(
            f"unknown stattest {name!r}; expected one of {', '.join(sorted(STATTESTS))}",
            stattest=name,
        ) from None


def _threshold(name: str, threshold: float | None) -> float:
    if threshold is None:
        return STATTESTS[name].default_threshold
    if not np.isfinite(threshold):
        raise InvalidArgument(f"threshold for {name} must be a finite number, got {threshold}")
    return float(threshold)


def default_test(column_type: str, n_unique: int, reference_rows: int) -> str:
    """The test Evidently picks by default (``registry._get_default_stattest``).

    ``n_unique`` counts reference and current together; ``reference_rows`` counts the
    reference only. Up to 1000 reference rows: numeric with > 5 values -> ks, 3-5 ->
    chisquare, <= 2 -> z; categorical with > 2 values -> chisquare, else z. Above 1000
    rows: numeric -> wasserstein, everything else -> jensenshannon. Boolean is a
    two-value categorical; datetime is tested as numeric (int64 nanoseconds).
    """
    kind = validate_column_type(column_type)
    numeric = kind in ("numeric", "datetime")
    if reference_rows > SMALL_DATA_ROWS:
        return "wasserstein" if numeric and n_unique > 5 else "jensenshannon"
    if numeric:
        if n_unique > 5:
            return "ks"
        return "chisquare" if n_unique > 2 else "z"
    return "chisquare" if n_unique > 2 else "z"
