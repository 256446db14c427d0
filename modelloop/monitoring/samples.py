"""Prepared column samples: test-ready values plus the summaries the tests reuse.

A column is prepared once (missing and infinite values dropped, numbers sorted,
categories counted) and can then be compared with any number of other samples. That is
what lets :class:`~modelloop.monitoring.profile.ReferenceProfile` fit a reference once
and score many production windows against it; :func:`~modelloop.monitoring.drift.
column_drift` goes through the same code, so both give the same numbers.

Every comparison here equals the array-based test in
:mod:`~modelloop.monitoring.stattests` on the same values: the sorted and counted forms
only skip work (re-sorting, re-counting) that the tests would otherwise repeat.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from modelloop.errors import InvalidArgument
from modelloop.monitoring.column_types import ColumnType, combined_n_unique, to_numeric_values
from modelloop.monitoring.stattests import (
    BINNING_MIN_UNIQUE,
    StatResult,
    StatTest,
    chi2_contingency_counts,
    chisquare_counts,
    counts_over_union,
    merge_sorted,
    shares_distance,
    sorted_n_unique,
    sturges_shares,
    wasserstein_merged,
    z_counts,
)

__all__ = [
    "CountedSample",
    "NumericSample",
    "Sample",
    "SamplePair",
    "combined_unique",
    "compare",
    "learn_from_values",
    "make_sample",
    "prepare_values",
]

FloatArray = NDArray[np.float64]
# Learned p-value thresholds stay positive: p < 0 would never alert at all.
MIN_P_THRESHOLD = 1e-12


@dataclass(frozen=True, eq=False)
class NumericSample:
    """Finite values of a numeric (or datetime, as ns) column, ascending.

    ``std`` is the population std computed on the values in their original order, so
    it is bit for bit the ``np.std`` the unsorted tests compute.
    """

    values: FloatArray
    std: float
    n_unique: int

    @classmethod
    def of(cls, values: FloatArray) -> NumericSample:
        """A sample of finite float64 ``values`` in any order (they are copied, sorted)."""
        std = float(np.std(values)) if values.size else 0.0
        ordered = np.sort(values)
        return cls(ordered, std, sorted_n_unique(ordered))

    @property
    def size(self) -> int:
        """Number of values."""
        return int(self.values.size)

    def unique_counts(self) -> tuple[FloatArray, NDArray[np.int64]]:
        """Distinct values (ascending) and how often each occurs."""
        if self.values.size == 0:
            return self.values, np.zeros(0, dtype=np.int64)
        starts = np.flatnonzero(np.r_[True, self.values[1:] != self.values[:-1]])
        counts = np.diff(np.r_[starts, self.values.size]).astype(np.int64)
        return self.values[starts], counts


@dataclass(frozen=True, eq=False)
class CountedSample:
    """A categorical (or boolean) column as counts per distinct non-missing value."""

    counts: pd.Series
    size: int

    @classmethod
    def of(cls, values: pd.Series) -> CountedSample:
        """Count ``values`` (missing values already dropped)."""
        return cls(values.value_counts(dropna=True), len(values))

    @property
    def n_unique(self) -> int:
        """Number of distinct values."""
        return len(self.counts)


Sample = NumericSample | CountedSample


def prepare_values(
    series: pd.Series, column_type: ColumnType, name: str
) -> tuple[FloatArray | pd.Series, int]:
    """Test-ready values in row order with missing values dropped, and how many were dropped.

    Numbers (and datetimes as int64 ns) become a float64 array; Evidently treats +-inf
    as missing too. Other columns stay a Series; a pandas categorical becomes plain
    objects, so that the union of reference and current values is not limited to the
    declared categories (nor padded with unused ones).
    """
    if column_type in ("numeric", "datetime"):
        dtype = series.dtype
        if column_type == "numeric" and isinstance(dtype, np.dtype) and dtype.kind in "fiu":
            # Plain numpy numbers need no conversion: skip to_numeric's copies.
            values = series.to_numpy(dtype=np.float64)
        else:
            values = to_numeric_values(series, column_type, name).to_numpy()
        finite_mask = np.isfinite(values)
        finite = values if finite_mask.all() else values[finite_mask]
        return finite, len(series) - len(finite)
    kept = series.dropna()
    if isinstance(kept.dtype, pd.CategoricalDtype):
        kept = kept.astype(object)
    return kept, len(series) - len(kept)


def make_sample(values: FloatArray | pd.Series) -> Sample:
    """The sample of values returned by :func:`prepare_values`."""
    if isinstance(values, pd.Series):
        return CountedSample.of(values)
    return NumericSample.of(values)


class SamplePair:
    """A reference and a current sample of one column, to be compared.

    For numeric samples the merge of both sorted samples is computed once and shared
    by the distinct-value count (which picks the default test) and wasserstein.
    """

    def __init__(self, reference: Sample, current: Sample) -> None:
        """Pair two samples of the same kind (both numeric or both counted)."""
        if isinstance(reference, NumericSample) != isinstance(current, NumericSample):
            raise InvalidArgument("cannot compare a numeric sample with a counted one")
        self.reference = reference
        self.current = current

    @cached_property
    def _merged(self) -> tuple[FloatArray, NDArray[np.bool_]]:
        ref, cur = self._numeric()
        return merge_sorted(ref.values, cur.values)

    def _numeric(self) -> tuple[NumericSample, NumericSample]:
        ref, cur = self.reference, self.current
        if not (isinstance(ref, NumericSample) and isinstance(cur, NumericSample)):
            raise InvalidArgument("this comparison needs numeric samples")
        return ref, cur

    def n_unique(self) -> int:
        """Distinct values over both samples (what Evidently's test choice counts)."""
        ref, cur = self.reference, self.current
        if isinstance(ref, CountedSample) and isinstance(cur, CountedSample):
            # The distinct values of each side have the same distinct union as the rows.
            return combined_n_unique(pd.Series(ref.counts.index), pd.Series(cur.counts.index))
        if ref.size == 0 or cur.size == 0:
            return ref.n_unique + cur.n_unique
        return sorted_n_unique(self._merged[0])

    def compare(self, test: StatTest, *, threshold: float | None = None) -> StatResult:
        """Run ``test`` on the two (non-empty) samples.

        A numeric-only test on counted samples raises ``InvalidArgument``.
        """
        ref, cur = self.reference, self.current
        if test.numeric_only:
            if not (isinstance(ref, NumericSample) and isinstance(cur, NumericSample)):
                raise InvalidArgument(f"stattest {test.name!r} needs numeric samples")
            if test.name == "wasserstein":
                return wasserstein_merged(*self._merged, ref.std, threshold=threshold)
            return test.func(ref.values, cur.values, threshold=threshold)
        if test.name == "chisquare":
            return chisquare_counts(*self._counts(), threshold=threshold)
        if test.name == "z":
            return z_counts(*self._counts(), threshold=threshold)
        if test.name == "chi2_contingency":
            return chi2_contingency_counts(*self._counts(), threshold=threshold)
        ref_pct, cur_pct = self._shares()
        return shares_distance(test.name, ref_pct, cur_pct, threshold=threshold)

    def _counts(self) -> tuple[FloatArray, FloatArray]:
        """Per-value counts of both samples over the sorted union of values."""
        ref, cur = self.reference, self.current
        if isinstance(ref, CountedSample) and isinstance(cur, CountedSample):
            _, ref_n, cur_n = counts_over_union(ref.counts, cur.counts)
            return ref_n, cur_n
        ref, cur = self._numeric()
        ref_keys, ref_counts = ref.unique_counts()
        cur_keys, cur_counts = cur.unique_counts()
        keys = np.union1d(ref_keys, cur_keys)
        ref_n = np.zeros(keys.size, dtype=np.float64)
        cur_n = np.zeros(keys.size, dtype=np.float64)
        ref_n[keys.searchsorted(ref_keys)] = ref_counts
        cur_n[keys.searchsorted(cur_keys)] = cur_counts
        return ref_n, cur_n

    def _shares(self) -> tuple[FloatArray, FloatArray]:
        """Per-bin shares as :func:`~modelloop.monitoring.stattests.binned_frequencies`."""
        ref, cur = self.reference, self.current
        if isinstance(ref, NumericSample) and isinstance(cur, NumericSample):
            if ref.n_unique > BINNING_MIN_UNIQUE:
                return sturges_shares(ref.values, cur.values)
            ref_n, cur_n = self._counts()
            return ref_n / ref.size, cur_n / cur.size
        ref_n, cur_n = self._counts()
        return ref_n / ref_n.sum(), cur_n / cur_n.sum()


def combined_unique(reference: Sample, current: Sample) -> int:
    """Distinct values over both samples together (see :meth:`SamplePair.n_unique`)."""
    return SamplePair(reference, current).n_unique()


def compare(
    test: StatTest, reference: Sample, current: Sample, *, threshold: float | None = None
) -> StatResult:
    """Run ``test`` on two non-empty samples (see :meth:`SamplePair.compare`)."""
    return SamplePair(reference, current).compare(test, threshold=threshold)


def learn_from_values(
    values: FloatArray | pd.Series,
    sample: Sample,
    test: StatTest,
    *,
    name: str,
    chunks: int = 10,
    std_multiplier: float = 3.0,
) -> float:
    """The NannyML-style threshold of :func:`~modelloop.monitoring.drift.learn_threshold`.

    ``values`` are the prepared reference values in row order and ``sample`` their
    sample; each of ``chunks`` contiguous chunks is compared with the whole sample.
    """
    if len(values) < chunks * max(test.min_rows, 2):
        raise InvalidArgument(
            f"column {name!r} has {len(values)} non-missing reference values, "
            f"too few for {chunks} chunks",
            column=name,
        )
    bounds = np.linspace(0, len(values), chunks + 1).astype(int)
    scores = np.array(
        [
            compare(test, sample, make_sample(_rows(values, lo, hi))).value
            for lo, hi in itertools.pairwise(bounds)
        ]
    )
    mean, std = float(scores.mean()), float(scores.std())
    if test.kind == "distance":
        return mean + std_multiplier * std
    return max(mean - std_multiplier * std, MIN_P_THRESHOLD)


def _rows(values: FloatArray | pd.Series, start: int, stop: int) -> FloatArray | pd.Series:
    return values.iloc[start:stop] if isinstance(values, pd.Series) else values[start:stop]
