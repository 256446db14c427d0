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
    "chi2_contingency",
    "chi2_contingency_counts",
    "chisquare",
    "chisquare_counts",
    "counts_over_union",
    "cramer_von_mises",
    "default_test",
    "get_stattest",
    "hellinger",
    "jensenshannon",
    "kl_div",
    "ks",
    "merge_sorted",
    "psi",
    "shares_distance",
    "sorted_histogram",
    "sorted_n_unique",
    "sturges_edges",
    "sturges_shares",
    "wasserstein",
    "wasserstein_merged",
    "wasserstein_sorted",
    "z",
    "z_counts",
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
    return counts_over_union(ref_counts, cur_counts)


def counts_over_union(
    ref_counts: pd.Series, cur_counts: pd.Series
) -> tuple[list[Any], FloatArray, FloatArray]:
    """Two ``value_counts`` results aligned on the sorted union of their values.

    Missing keys count 0. This is what every per-value test compares, so a reference's
    counts can be computed once and aligned with many current samples.
    """
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
        ref = np.sort(_numeric(reference, "binning"))
        cur = np.sort(_numeric(current, "binning"))
        if sorted_n_unique(ref) > BINNING_MIN_UNIQUE:
            ref_pct, cur_pct = sturges_shares(ref, cur)
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


def sorted_n_unique(values: FloatArray) -> int:
    """Distinct values of an ascending array without NaN (-0.0 equals 0.0, as in pandas)."""
    if values.size == 0:
        return 0
    return int(np.count_nonzero(values[1:] != values[:-1])) + 1


def sturges_edges(low: float, high: float, size: int) -> FloatArray:
    """``np.histogram_bin_edges(data, bins="sturges")`` from the data's min, max and size.

    The same arithmetic as numpy (width = range / (log2(n) + 1), a single bin for a
    constant sample widened by 0.5 each side), so the edges are bit for bit numpy's
    without concatenating reference and current.
    """
    first, last = np.float64(low), np.float64(high)
    span = last - first
    width = span / (np.log2(np.float64(size)) + 1.0)
    n_bins = int(np.ceil(span / width)) if width else 1
    if first == last:
        first, last = first - 0.5, last + 0.5
    return np.linspace(first, last, n_bins + 1, endpoint=True, dtype=np.float64)


def sorted_histogram(values: FloatArray, edges: FloatArray) -> FloatArray:
    """``np.histogram(values, edges)[0]`` for ascending ``values``, by binary search.

    Bins are half-open ``[e_i, e_i+1)`` except the last, which includes its right
    edge; values outside the edges are not counted, exactly as numpy does.
    """
    positions = values.searchsorted(edges, side="left")
    positions[-1] = values.searchsorted(edges[-1], side="right")
    return np.diff(positions).astype(np.float64)


def sturges_shares(ref_sorted: FloatArray, cur_sorted: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Shares of two ascending samples in Sturges bins over both (Evidently's binning)."""
    low = min(ref_sorted[0], cur_sorted[0])
    high = max(ref_sorted[-1], cur_sorted[-1])
    edges = sturges_edges(low, high, ref_sorted.size + cur_sorted.size)
    ref_pct = sorted_histogram(ref_sorted, edges) / ref_sorted.size
    cur_pct = sorted_histogram(cur_sorted, edges) / cur_sorted.size
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
    _, ref_n, cur_n = _category_counts(reference, current, "chisquare")
    return chisquare_counts(ref_n, cur_n, threshold=threshold)


def chisquare_counts(
    ref_n: FloatArray, cur_n: FloatArray, *, threshold: float | None = None
) -> StatResult:
    """:func:`chisquare` from per-value counts aligned on the union of values."""
    if len(ref_n) < 2:
        return _verdict("chisquare", "p_value", 1.0, _threshold("chisquare", threshold))
    f_exp = ref_n * (cur_n.sum() / ref_n.sum())
    # (obs - 0)^2 / 0 is the intended infinity for unseen categories; silence numpy.
    with np.errstate(divide="ignore", invalid="ignore"):
        p_value = stats.chisquare(cur_n, f_exp).pvalue
    return _verdict("chisquare", "p_value", p_value, _threshold("chisquare", threshold))


def chi2_contingency(
    reference: ArrayLike,
    current: ArrayLike,
    *,
    column_type: ColumnType = "categorical",
    threshold: float | None = None,
) -> StatResult:
    """Two-sample chi-square test of homogeneity (SciPy's ``chi2_contingency`` on the
    2 x k table of counts, no continuity correction).

    Unlike Evidently's :func:`chisquare`, which treats the reference proportions as
    exact, it accounts for the reference being a sample too, so two samples of the
    same distribution are flagged at the nominal rate whatever their sizes (the
    goodness-of-fit test over-alerts when the reference is not much larger than the
    current window). A category seen in only one sample is an ordinary count here.
    """
    del column_type
    _, ref_n, cur_n = _category_counts(reference, current, "chi2_contingency")
    return chi2_contingency_counts(ref_n, cur_n, threshold=threshold)


def chi2_contingency_counts(
    ref_n: FloatArray, cur_n: FloatArray, *, threshold: float | None = None
) -> StatResult:
    """:func:`chi2_contingency` from per-value counts aligned on the union of values."""
    name = "chi2_contingency"
    if len(ref_n) < 2:
        return _verdict(name, "p_value", 1.0, _threshold(name, threshold))
    table = np.vstack([ref_n, cur_n])
    p_value = stats.chi2_contingency(table, correction=False).pvalue
    return _verdict(name, "p_value", p_value, _threshold(name, threshold))


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
    _, ref_n, cur_n = _category_counts(reference, current, "z")
    return z_counts(ref_n, cur_n, threshold=threshold)


def z_counts(ref_n: FloatArray, cur_n: FloatArray, *, threshold: float | None = None) -> StatResult:
    """:func:`z` from per-value counts aligned on the (sorted) union of values."""
    if len(ref_n) > 2:
        raise InvalidArgument(f"z test needs at most 2 distinct values, got {len(ref_n)}")
    if len(ref_n) < 2:
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
    return wasserstein_sorted(np.sort(ref), np.sort(cur), float(np.std(ref)), threshold=threshold)


def wasserstein_sorted(
    ref_sorted: FloatArray,
    cur_sorted: FloatArray,
    ref_std: float,
    *,
    threshold: float | None = None,
) -> StatResult:
    """:func:`wasserstein` from ascending samples and the reference's std."""
    merged, from_ref = merge_sorted(ref_sorted, cur_sorted)
    return wasserstein_merged(merged, from_ref, ref_std, threshold=threshold)


def merge_sorted(
    ref_sorted: FloatArray, cur_sorted: FloatArray
) -> tuple[FloatArray, NDArray[np.bool_]]:
    """Both ascending samples merged (stable: reference first among ties), and which
    merged values came from the reference."""
    merged = np.concatenate((ref_sorted, cur_sorted))
    order = np.argsort(merged, kind="stable")  # two ascending runs: a linear merge
    return merged[order], order < ref_sorted.size


def wasserstein_merged(
    merged: FloatArray,
    from_ref: NDArray[np.bool_],
    ref_std: float,
    *,
    threshold: float | None = None,
) -> StatResult:
    """:func:`wasserstein` from :func:`merge_sorted`'s output and the reference's std.

    SciPy's ``wasserstein_distance`` integrates |U - V| over the merged sample, locating
    every merged value in both samples by binary search. The merge already says which
    sample each value came from, so a running count gives the same CDF steps (where
    values tie the step width is 0), and the sum is SciPy's term for term.
    """
    n_ref = int(np.count_nonzero(from_ref))
    n_cur = merged.size - n_ref
    deltas = np.diff(merged)
    ref_cdf = np.cumsum(from_ref[:-1], dtype=np.float64)  # exact: counts < 2**53
    cur_cdf = np.arange(1, merged.size, dtype=np.float64)
    cur_cdf -= ref_cdf
    ref_cdf /= n_ref
    cur_cdf /= n_cur
    ref_cdf -= cur_cdf
    np.abs(ref_cdf, out=ref_cdf)
    value = float(np.vecdot(ref_cdf, deltas)) / max(ref_std, _MIN_STD)
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
    return shares_distance("jensenshannon", ref_pct, cur_pct, threshold=threshold)


def psi(
    reference: ArrayLike,
    current: ArrayLike,
    *,
    column_type: ColumnType = "numeric",
    threshold: float | None = None,
) -> StatResult:
    """Population stability index sum((ref - cur) * ln(ref / cur)); empty bins filled as
    Evidently's ``get_binned_data`` does (1e-4, or 1e-6 x the smallest share if <= 1e-4)."""
    ref_pct, cur_pct = binned_frequencies(reference, current, column_type)
    return shares_distance("psi", ref_pct, cur_pct, threshold=threshold)


def kl_div(
    reference: ArrayLike,
    current: ArrayLike,
    *,
    column_type: ColumnType = "numeric",
    threshold: float | None = None,
) -> StatResult:
    """KL(reference || current) via ``scipy.stats.entropy``; empty bins filled as in psi."""
    ref_pct, cur_pct = binned_frequencies(reference, current, column_type)
    return shares_distance("kl_div", ref_pct, cur_pct, threshold=threshold)


def hellinger(
    reference: ArrayLike,
    current: ArrayLike,
    *,
    column_type: ColumnType = "numeric",
    threshold: float | None = None,
) -> StatResult:
    """Hellinger distance sqrt(0.5 * sum((sqrt p - sqrt q)^2)), in [0, 1], over JS's bins."""
    ref_pct, cur_pct = binned_frequencies(reference, current, column_type)
    return shares_distance("hellinger", ref_pct, cur_pct, threshold=threshold)


def shares_distance(
    name: str, ref_pct: FloatArray, cur_pct: FloatArray, *, threshold: float | None = None
) -> StatResult:
    """A binned distance (jensenshannon, psi, kl_div, hellinger) from aligned shares.

    psi and kl_div fill empty bins first (see :func:`binned_frequencies`).
    """
    if name == "jensenshannon":
        value = distance.jensenshannon(ref_pct, cur_pct)
    elif name == "psi":
        ref_pct, cur_pct = _fill_zeroes(ref_pct), _fill_zeroes(cur_pct)
        value = np.sum((ref_pct - cur_pct) * np.log(ref_pct / cur_pct))
    elif name == "kl_div":
        value = stats.entropy(_fill_zeroes(ref_pct), _fill_zeroes(cur_pct))
    elif name == "hellinger":
        value = np.sqrt(0.5 * np.sum((np.sqrt(ref_pct) - np.sqrt(cur_pct)) ** 2))
    else:
        raise InvalidArgument(f"{name!r} is not a binned distance")
    return _verdict(name, "distance", value, _threshold(name, threshold))


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
        StatTest("chi2_contingency", "p_value", 0.05, False, 1, chi2_contingency),
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
