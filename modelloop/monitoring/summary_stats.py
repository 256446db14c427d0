"""The column summary of one window and the drift statistics computed from two of them.

:mod:`modelloop.monitoring.summary` builds these summaries; this module holds what
needs no spec: the :class:`ColumnSummary` record, the :class:`Histogram` bars drawn
from it, and for each test of :data:`APPROXIMATE_STATTESTS` its value from a
reference and a current summary.

A numeric column keeps, per bin, the count and the sum of each value's distance to
the bin's left edge (its right edge for the underflow bin). With those the integral
of the empirical CDF over every bin is exact, so the Wasserstein distance is exact
whenever the two CDFs do not cross inside a bin, and a lower bound otherwise
(crossings only happen where the CDFs are close, far below any threshold). Columns
with few distinct values keep exact value counts, and their tests are exact.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import stats  # type: ignore[import-untyped]
from scipy.spatial import distance  # type: ignore[import-untyped]

from modelloop.errors import InvalidArgument
from modelloop.monitoring.column_types import ColumnType, validate_column_type
from modelloop.monitoring.stattests import BINNING_MIN_UNIQUE, _fill_zeroes, _sorted_keys

__all__ = [
    "APPROXIMATE_STATTESTS",
    "SMALL_VALUES",
    "ColumnSummary",
    "Histogram",
    "Key",
    "approximate_statistic",
    "bin_bounds",
    "cumulative_below",
    "column_histogram",
    "histogram_bars",
    "is_numeric",
    "n_unique",
    "to_key",
]

Key = str | int | float | bool
FloatArray = NDArray[np.float64]

# Numeric columns keep exact value counts up to this many distinct values: Evidently bins
# per distinct value up to 20 reference values and picks tests on <= 2 and <= 5 values.
SMALL_VALUES = 32
_MIN_STD = 0.001  # Evidently's floor of the reference std in wasserstein


def is_numeric(column_type: ColumnType) -> bool:
    """Whether the column is summarised by bins (numeric and datetime columns)."""
    return column_type in ("numeric", "datetime")


def to_key(value: Any) -> Key:
    """A JSON-native category key: numbers, strings and booleans stay, anything else is
    its text (so a summary always serialises)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    return str(value)


@dataclasses.dataclass(frozen=True)
class ColumnSummary:
    """One column of one window.

    ``count`` non-missing values, ``missing`` missing ones (NaN, None, +-inf, and every
    row of a window that lacked the column: those are also counted in ``absent``).
    Numeric columns have ``min``/``max``/``mean``/``m2`` (sum of squared deviations),
    ``counts`` per bin of the spec's edges (underflow first, overflow last) and
    ``offsets`` (per bin, the sum of distances to the bin's anchor edge). ``values``
    holds exact counts per distinct value: always for categorical and boolean columns
    (at most the spec's categories plus ``max_categories`` others; the rest are counted
    in ``other`` and ``truncated`` is set), for numeric ones only while they have at
    most ``SMALL_VALUES`` distinct values (``None`` beyond).
    """

    column_type: ColumnType
    count: int = 0
    missing: int = 0
    absent: int = 0
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    m2: float = 0.0
    counts: tuple[int, ...] = ()
    offsets: tuple[float, ...] = ()
    values: dict[Key, int] | None = None
    other: int = 0
    truncated: bool = False

    @property
    def rows(self) -> int:
        """Rows of the window (present or not)."""
        return self.count + self.missing

    @property
    def std(self) -> float | None:
        """Population standard deviation (ddof=0, as Wasserstein's normalisation uses)."""
        return math.sqrt(self.m2 / self.count) if self.count and self.mean is not None else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (see :meth:`from_dict`)."""
        out: dict[str, Any] = {
            "type": self.column_type,
            "count": self.count,
            "missing": self.missing,
            "absent": self.absent,
        }
        if is_numeric(self.column_type):
            out |= {"min": self.min, "max": self.max, "mean": self.mean, "m2": self.m2}
            out |= {"counts": list(self.counts), "offsets": list(self.offsets)}
        else:
            out |= {"other": self.other, "truncated": self.truncated}
        out["values"] = None if self.values is None else [[k, c] for k, c in self.values.items()]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnSummary:
        """The inverse of :meth:`to_dict`."""
        raw = data.get("values")
        values = None if raw is None else {to_key(k): int(c) for k, c in raw}
        opt = {k: None if data.get(k) is None else float(data[k]) for k in ("min", "max", "mean")}
        return cls(
            column_type=validate_column_type(data["type"]),
            count=int(data["count"]),
            missing=int(data["missing"]),
            absent=int(data["absent"]),
            m2=float(data.get("m2", 0.0)),
            counts=tuple(int(c) for c in data.get("counts", ())),
            offsets=tuple(float(o) for o in data.get("offsets", ())),
            values=values,
            other=int(data.get("other", 0)),
            truncated=bool(data.get("truncated", False)),
            **opt,
        )


def bin_bounds(col: ColumnSummary, edges: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Left and right bounds of every bin of a numeric column (the underflow bin starts
    at the column's minimum, the overflow bin ends at its maximum)."""
    assert col.min is not None
    assert col.max is not None
    if edges.size == 0:
        return np.array([col.min]), np.array([col.max])
    lo, hi = min(col.min, float(edges[0])), max(col.max, float(edges[-1]))
    return np.concatenate([[lo], edges]), np.concatenate([edges, [hi]])


def cumulative_below(col: ColumnSummary, edges: FloatArray, grid: FloatArray) -> FloatArray:
    """Approximate count of values below each point of ``grid`` (all of them at or past
    the maximum), as ``np.histogram`` splits values on edges.

    Within a bin the values are taken as uniform over the widest sub-interval whose
    mean is the bin's known mean: exact for a bin holding one value, and it keeps
    a window whose values start or stop inside a bin from leaking past them.
    """
    left, right = bin_bounds(col, edges)
    counts = np.asarray(col.counts, dtype=np.float64)
    offsets = np.asarray(col.offsets, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(counts > 0, left + offsets / counts, left)
    if edges.size:
        # The underflow bin's offsets are distances below the first edge.
        mean[0] = edges[0] - offsets[0] / counts[0] if counts[0] else left[0]
    else:
        mean = (left + right) / 2  # no edges (an all-missing reference): no offsets kept
    mean = np.clip(mean, left, right)
    low_half = mean - left < (right - left) / 2
    lo = np.where(low_half, left, 2 * mean - right)
    hi = np.where(low_half, 2 * mean - left, right)
    before = np.concatenate([[0.0], np.cumsum(counts)[:-1]])
    xp = np.column_stack([lo, hi]).ravel()
    fp = np.column_stack([before, before + counts]).ravel()
    # Just below each point, so a value sitting on a grid point counts above it.
    below: FloatArray = np.interp(np.nextafter(grid, -np.inf), xp, fp)
    top = float(col.max if col.max is not None else -np.inf)
    below[grid > top] = col.count
    if grid.size and grid[-1] >= top:
        below[-1] = col.count
    return below


@dataclasses.dataclass(frozen=True)
class Histogram:
    """Bars for plotting: ``counts`` over ``edges`` (numeric, ``len(edges) == len(counts)
    + 1``) or per ``categories`` plus ``other`` (values of no listed category)."""

    kind: Literal["numeric", "categorical"]
    counts: tuple[float, ...]
    edges: tuple[float, ...] = ()
    categories: tuple[Key, ...] = ()
    other: float = 0.0

    @property
    def total(self) -> float:
        """All counted values (``other`` included)."""
        return float(sum(self.counts)) + self.other

    @property
    def shares(self) -> tuple[float, ...]:
        """``counts`` divided by :attr:`total` (zeros for an empty histogram)."""
        total = self.total
        return tuple(c / total if total else 0.0 for c in self.counts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "kind": self.kind,
            "counts": list(self.counts),
            "edges": list(self.edges),
            "categories": list(self.categories),
            "other": self.other,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Histogram:
        """The inverse of :meth:`to_dict`."""
        kind = data.get("kind")
        if kind not in ("numeric", "categorical"):
            raise InvalidArgument(f"histogram kind must be numeric or categorical, got {kind!r}")
        return cls(
            kind=kind,
            counts=tuple(float(c) for c in data.get("counts", ())),
            edges=tuple(float(e) for e in data.get("edges", ())),
            categories=tuple(to_key(c) for c in data.get("categories", ())),
            other=float(data.get("other", 0.0)),
        )


def column_histogram(
    col: ColumnSummary,
    edges: FloatArray,
    *,
    bins: int | None = None,
    span: tuple[float, float] | None = None,
) -> Histogram:
    """Bars of one column: a numeric column's own bins (or ``bins`` equal-width bins over
    ``span``, default its min..max), a categorical column's value counts."""
    if not is_numeric(col.column_type):
        values = col.values or {}
        bars = tuple(float(c) for c in values.values())
        return Histogram("categorical", bars, (), tuple(values), float(col.other))
    if bins is not None and bins < 1:
        raise InvalidArgument(f"bins must be >= 1, got {bins}")
    if not col.count:
        if span is None:
            return Histogram("numeric", ())
        grid = np.linspace(span[0], span[1], (bins or 30) + 1)
        return Histogram("numeric", (0.0,) * (len(grid) - 1), tuple(grid.tolist()))
    left, right = bin_bounds(col, edges)
    if bins is None and span is None:
        keep = np.flatnonzero((right > left) | (np.asarray(col.counts) > 0))
        grid = np.append(left[keep], right[keep[-1]])
        counts = np.asarray(col.counts, dtype=np.float64)[keep]
        return Histogram("numeric", tuple(counts.tolist()), tuple(grid.tolist()))
    lo, hi = span if span is not None else (float(left[0]), float(right[-1]))
    grid = np.linspace(lo, hi, (bins or 30) + 1)
    counts = np.diff(cumulative_below(col, edges, grid))
    return Histogram("numeric", tuple(counts.tolist()), tuple(grid.tolist()))


def histogram_bars(
    ref: ColumnSummary,
    cur: ColumnSummary,
    edges: FloatArray,
    *,
    bins: int = 30,
    max_categories: int = 20,
) -> tuple[Histogram, Histogram]:
    """Reference and current bars of one column on common bins (see ``histogram_pair``)."""
    if is_numeric(ref.column_type) and (
        ref.values is None or cur.values is None or len(ref.values | cur.values) > bins
    ):
        present = [c for c in (ref, cur) if c.count]
        if not present:
            return Histogram("numeric", ()), Histogram("numeric", ())
        lo = min(c.min for c in present if c.min is not None)
        hi = max(c.max for c in present if c.max is not None)
        if hi == lo:
            lo, hi = lo - 0.5, hi + 0.5
        return (
            column_histogram(ref, edges, bins=bins, span=(lo, hi)),
            column_histogram(cur, edges, bins=bins, span=(lo, hi)),
        )
    ref_values, cur_values = ref.values or {}, cur.values or {}
    keys = list(ref_values | cur_values)
    if is_numeric(ref.column_type):
        keys.sort()
    else:
        keys.sort(key=lambda k: (-ref_values.get(k, 0), -cur_values.get(k, 0), repr(k)))
    shown, rest = keys[:max_categories], keys[max_categories:]

    def bars(values: dict[Key, int], other: int) -> Histogram:
        extra = other + sum(values.get(k, 0) for k in rest)
        counts = tuple(float(values.get(k, 0)) for k in shown)
        return Histogram("categorical", counts, (), tuple(shown), float(extra))

    return bars(ref_values, ref.other), bars(cur_values, cur.other)


def _union_counts(ref: ColumnSummary, cur: ColumnSummary) -> tuple[FloatArray, FloatArray]:
    """Counts per distinct value over both samples (plus one ``other`` bucket if any)."""
    if ref.values is None or cur.values is None:
        raise InvalidArgument(
            f"this test needs exact value counts, kept only for columns with at most "
            f"{SMALL_VALUES} distinct numbers"
        )
    ref_values, cur_values = ref.values, cur.values
    keys = _sorted_keys(pd.Index(list(ref_values | cur_values), dtype=object))
    ref_n = [float(ref_values.get(k, 0)) for k in keys]
    cur_n = [float(cur_values.get(k, 0)) for k in keys]
    if ref.other or cur.other:
        ref_n.append(float(ref.other))
        cur_n.append(float(cur.other))
    return np.asarray(ref_n), np.asarray(cur_n)


def _binned_shares(
    ref: ColumnSummary, cur: ColumnSummary, edges: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Shares per bin as ``stattests.binned_frequencies`` bins the raw values."""
    per_value = ref.values is not None and len(ref.values) <= BINNING_MIN_UNIQUE
    if not is_numeric(ref.column_type) or (per_value and cur.values is not None):
        ref_n, cur_n = _union_counts(ref, cur)
        return ref_n / ref_n.sum(), cur_n / cur_n.sum()
    # Sturges bins over the combined range, as numpy's histogram_bin_edges("sturges").
    assert ref.min is not None
    assert cur.min is not None
    assert ref.max is not None
    assert cur.max is not None
    lo, hi = min(ref.min, cur.min), max(ref.max, cur.max)
    if hi == lo:
        lo, hi = lo - 0.5, hi + 0.5
    width = (hi - lo) / (math.log2(ref.count + cur.count) + 1.0)
    grid = np.linspace(lo, hi, math.ceil((hi - lo) / width) + 1)
    shares = []
    for col in (ref, cur):
        shares.append(np.diff(cumulative_below(col, edges, grid)) / col.count)
    return shares[0], shares[1]


def _wasserstein(ref: ColumnSummary, cur: ColumnSummary, edges: FloatArray) -> float:
    assert ref.min is not None
    assert cur.min is not None
    assert ref.max is not None
    assert cur.max is not None
    if ref.values is not None and cur.values is not None:
        points = np.array(sorted(ref.values.keys() | cur.values.keys()), dtype=np.float64)
        ref_cdf = np.cumsum([ref.values.get(p, 0) for p in points]) / ref.count
        cur_cdf = np.cumsum([cur.values.get(p, 0) for p in points]) / cur.count
        distance_ = float(np.sum(np.abs(ref_cdf - cur_cdf)[:-1] * np.diff(points)))
    else:
        lo, hi = min(ref.min, cur.min), max(ref.max, cur.max)
        integrals = [_cdf_integrals(col, edges, lo, hi) for col in (ref, cur)]
        distance_ = float(np.abs(integrals[0] - integrals[1]).sum())
    return distance_ / max(ref.std or 0.0, _MIN_STD)


def _cdf_integrals(col: ColumnSummary, edges: FloatArray, lo: float, hi: float) -> FloatArray:
    """The integral of the column's empirical CDF over each bin, exact from counts and
    offsets: over [a, b) it is (b - a) * F(a-) + (b - a) * share - mean offset from a."""
    counts = np.asarray(col.counts, dtype=np.float64) / col.count
    offsets = np.asarray(col.offsets, dtype=np.float64) / col.count
    if edges.size == 0:
        return np.array([(hi - lo) * counts[0] - (offsets[0] - lo * counts[0])])
    left = np.concatenate([[lo], edges])
    right = np.concatenate([edges, [hi]])
    before = np.concatenate([[0.0], np.cumsum(counts)[:-1]])
    widths = right - left
    integrals: FloatArray = widths * before + widths * counts - offsets
    # The underflow bin's offsets run down from the first edge: its integral is them.
    integrals[0] = offsets[0]
    return integrals


def _ks_statistic(ref: ColumnSummary, cur: ColumnSummary) -> float:
    if ref.values is not None and cur.values is not None:
        points = sorted(ref.values.keys() | cur.values.keys())
        ref_cdf = np.cumsum([ref.values.get(p, 0) for p in points]) / ref.count
        cur_cdf = np.cumsum([cur.values.get(p, 0) for p in points]) / cur.count
    else:
        # The supremum over the bin edges only: a lower bound of the exact statistic.
        ref_cdf = np.cumsum(ref.counts) / ref.count
        cur_cdf = np.cumsum(cur.counts) / cur.count
    return float(np.max(np.abs(ref_cdf - cur_cdf)))


def _ks(ref: ColumnSummary, cur: ColumnSummary, edges: FloatArray) -> float:
    del edges
    # Smirnov's asymptotic distribution, as scipy's ks_2samp(method="asymp").
    big, small = max(ref.count, cur.count), min(ref.count, cur.count)
    return float(
        stats.kstwo.sf(_ks_statistic(ref, cur), max(1, round(big * small / (big + small))))
    )


def _chisquare(ref: ColumnSummary, cur: ColumnSummary, edges: FloatArray) -> float:
    del edges
    ref_n, cur_n = _union_counts(ref, cur)
    if len(ref_n) < 2:
        return 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(stats.chisquare(cur_n, ref_n * (cur_n.sum() / ref_n.sum())).pvalue)


def _z(ref: ColumnSummary, cur: ColumnSummary, edges: FloatArray) -> float:
    del edges
    ref_n, cur_n = _union_counts(ref, cur)
    if len(ref_n) > 2:
        raise InvalidArgument(f"z test needs at most 2 distinct values, got {len(ref_n)}")
    if len(ref_n) < 2:
        return 1.0
    n1, n2 = ref_n.sum(), cur_n.sum()
    pooled = (ref_n[0] + cur_n[0]) / (n1 + n2)
    z_stat = (ref_n[0] / n1 - cur_n[0] / n2) / np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return float(2 * stats.norm.sf(abs(z_stat)))


def _jensenshannon(ref: ColumnSummary, cur: ColumnSummary, edges: FloatArray) -> float:
    return float(distance.jensenshannon(*_binned_shares(ref, cur, edges)))


def _psi(ref: ColumnSummary, cur: ColumnSummary, edges: FloatArray) -> float:
    p, q = (_fill_zeroes(s) for s in _binned_shares(ref, cur, edges))
    return float(np.sum((p - q) * np.log(p / q)))


def _kl_div(ref: ColumnSummary, cur: ColumnSummary, edges: FloatArray) -> float:
    p, q = (_fill_zeroes(s) for s in _binned_shares(ref, cur, edges))
    return float(stats.entropy(p, q))


def _hellinger(ref: ColumnSummary, cur: ColumnSummary, edges: FloatArray) -> float:
    p, q = _binned_shares(ref, cur, edges)
    return float(np.sqrt(0.5 * np.sum((np.sqrt(p) - np.sqrt(q)) ** 2)))


_Approx = Callable[[ColumnSummary, ColumnSummary, FloatArray], float]
_APPROX: dict[str, _Approx] = {
    "ks": _ks,
    "chisquare": _chisquare,
    "z": _z,
    "wasserstein": _wasserstein,
    "jensenshannon": _jensenshannon,
    "psi": _psi,
    "kl_div": _kl_div,
    "hellinger": _hellinger,
}
APPROXIMATE_STATTESTS: tuple[str, ...] = tuple(sorted(_APPROX))


def n_unique(ref: ColumnSummary, cur: ColumnSummary) -> int:
    """Distinct values over both summaries, as ``default_test`` needs them."""
    # Exact when both sides kept their value counts; otherwise a lower bound that is
    # still above every cut-off default_test uses.
    if ref.values is None or cur.values is None:
        return SMALL_VALUES + 1
    return len(ref.values.keys() | cur.values.keys()) + (1 if ref.other or cur.other else 0)


def approximate_statistic(
    stattest: str, reference: ColumnSummary, current: ColumnSummary, edges: FloatArray
) -> float:
    """The value of ``stattest`` (one of :data:`APPROXIMATE_STATTESTS`) from two summaries
    of a column binned on ``edges``; both must hold at least one value."""
    return _APPROX[stattest](reference, current, edges)
