"""Compact, mergeable per-window column summaries, and drift computed from them alone.

A :class:`SummarySpec` is fitted once from the reference: per numeric (or datetime)
column a fixed set of bin edges (reference quantiles plus equal-width edges), per
categorical column its most frequent values. :meth:`SummarySpec.summarise` turns a
window of raw rows into a :class:`WindowSummary` of a few KB per column;
:meth:`WindowSummary.merge` adds windows exactly (counts add), so "the last 7 days"
or a long history never rereads raw data.

Drift between two summaries (:func:`approximate_drift`) reproduces
:func:`~modelloop.monitoring.dataset_drift` closely without raw data; see
:mod:`modelloop.monitoring.summary_stats` for how each statistic is computed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from modelloop.errors import InvalidArgument
from modelloop.monitoring.column_types import (
    ColumnType,
    infer_column_types,
    to_numeric_values,
    validate_column_type,
)
from modelloop.monitoring.drift import ColumnDrift, DatasetDrift
from modelloop.monitoring.stattests import default_test, get_stattest
from modelloop.monitoring.summary_stats import (
    APPROXIMATE_STATTESTS,
    SMALL_VALUES,
    ColumnSummary,
    Histogram,
    Key,
    approximate_statistic,
    column_histogram,
    histogram_bars,
    is_numeric,
    n_unique,
    to_key,
)

__all__ = [
    "APPROXIMATE_STATTESTS",
    "ColumnSummary",
    "Histogram",
    "SummarySpec",
    "WindowSummary",
    "approximate_drift",
    "histogram_pair",
]

FloatArray = NDArray[np.float64]

FORMAT = 1
DEFAULT_BINS = 128
DEFAULT_MAX_CATEGORIES = 200
# Rows looked at before counting distinct numeric values over the whole window, so a
# continuous column does not pay for a full hash of its values.
_DISTINCT_PROBE = 4096


# --- the spec ------------------------------------------------------------------------------


def _fit_edges(values: FloatArray, bins: int) -> FloatArray:
    if values.size == 0:
        return np.empty(0)
    lo, hi = float(values.min()), float(values.max())
    quantiles = np.quantile(values, np.linspace(0.0, 1.0, bins + 1))
    # Equal-width edges bound the width of the sparse tail bins, which matters for the
    # re-binned histograms (plots, JS, PSI) of long-tailed columns.
    uniform = np.linspace(lo, hi, bins // 4 + 1)
    edges = np.unique(np.concatenate([quantiles, uniform, [lo]]))
    # The last edge sits just above the maximum so the reference has no overflow.
    top = np.nextafter(hi, np.inf)
    return np.append(edges[edges < hi], top) if edges.size > 1 else np.array([lo, top])


def _top_categories(series: pd.Series, limit: int) -> tuple[Key, ...]:
    counts = series.dropna().value_counts(sort=False)
    # Stable sort: ties keep their first-seen order, so a refit gives the same spec.
    top = counts[counts > 0].sort_values(ascending=False, kind="stable").iloc[:limit]
    return tuple(to_key(k) for k in top.index)


@dataclasses.dataclass(frozen=True)
class SummarySpec:
    """How every column is summarised; fitted once from the reference (:meth:`fit`).

    ``edges`` maps numeric/datetime columns to their fixed bin edges; ``categories``
    maps categorical/boolean columns to the reference's most frequent values (always
    counted exactly). ``max_categories`` bounds the other values kept per column.
    """

    column_types: Mapping[str, ColumnType]
    edges: Mapping[str, tuple[float, ...]]
    categories: Mapping[str, tuple[Key, ...]]
    bins: int = DEFAULT_BINS
    max_categories: int = DEFAULT_MAX_CATEGORIES

    @classmethod
    def fit(
        cls,
        reference: pd.DataFrame,
        columns: Sequence[str] | None = None,
        column_types: Mapping[str, str] | None = None,
        *,
        bins: int = DEFAULT_BINS,
        max_categories: int = DEFAULT_MAX_CATEGORIES,
    ) -> SummarySpec:
        """Fit bin edges and categories from ``reference`` (all columns by default).

        ``bins`` quantile bins (plus ``bins // 4`` equal-width ones) per numeric column;
        ``column_types`` overrides the inferred types as in ``dataset_drift``.
        """
        if not isinstance(reference, pd.DataFrame):
            raise InvalidArgument("SummarySpec.fit needs a pandas DataFrame")
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
            raise InvalidArgument(f"bins must be an integer >= 2, got {bins!r}")
        if isinstance(max_categories, bool) or not isinstance(max_categories, int):
            raise InvalidArgument(f"max_categories must be an integer, got {max_categories!r}")
        if max_categories < 1:
            raise InvalidArgument(f"max_categories must be >= 1, got {max_categories}")
        names = [str(c) for c in (reference.columns if columns is None else columns)]
        absent = [c for c in names if c not in reference.columns]
        if absent:
            raise InvalidArgument(f"columns missing from reference: {', '.join(absent)}")
        if len(set(names)) != len(names):
            raise InvalidArgument("columns are repeated")
        types = infer_column_types(reference, names, column_types)
        edges: dict[str, tuple[float, ...]] = {}
        categories: dict[str, tuple[Key, ...]] = {}
        for name, kind in types.items():
            if is_numeric(kind):
                values = to_numeric_values(reference[name], kind, name).to_numpy()
                edges[name] = tuple(_fit_edges(values[np.isfinite(values)], bins).tolist())
            else:
                categories[name] = _top_categories(reference[name], max_categories)
        return cls(types, edges, categories, bins, max_categories)

    @property
    def columns(self) -> tuple[str, ...]:
        """The summarised columns, in order."""
        return tuple(self.column_types)

    @cached_property
    def fingerprint(self) -> str:
        """A digest of the spec; summaries from different specs cannot be compared."""
        text = json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @cached_property
    def _edge_arrays(self) -> dict[str, FloatArray]:
        return {name: np.asarray(e, dtype=np.float64) for name, e in self.edges.items()}

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (see :meth:`from_dict`)."""
        columns: dict[str, Any] = {}
        for name, kind in self.column_types.items():
            if is_numeric(kind):
                columns[name] = {"type": kind, "edges": list(self.edges[name])}
            else:
                columns[name] = {"type": kind, "categories": list(self.categories[name])}
        return {
            "format": FORMAT,
            "bins": self.bins,
            "max_categories": self.max_categories,
            "columns": columns,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SummarySpec:
        """The inverse of :meth:`to_dict`; malformed input raises ``InvalidArgument``."""
        try:
            if data["format"] != FORMAT:
                raise InvalidArgument(f"unsupported summary spec format {data['format']!r}")
            types: dict[str, ColumnType] = {}
            edges: dict[str, tuple[float, ...]] = {}
            categories: dict[str, tuple[Key, ...]] = {}
            for name, column in data["columns"].items():
                kind = validate_column_type(column["type"], name)
                types[name] = kind
                if is_numeric(kind):
                    edges[name] = tuple(float(e) for e in column["edges"])
                else:
                    categories[name] = tuple(to_key(c) for c in column["categories"])
            return cls(types, edges, categories, int(data["bins"]), int(data["max_categories"]))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidArgument(f"malformed summary spec: {exc!r}") from exc

    def summarise(
        self, frame: pd.DataFrame, *, start_ms: int | None = None, end_ms: int | None = None
    ) -> WindowSummary:
        """Summarise one window of rows. A spec column the frame lacks is recorded as
        absent (all its rows missing); columns outside the spec are listed in
        ``extra_columns``."""
        if not isinstance(frame, pd.DataFrame):
            raise InvalidArgument("summarise needs a pandas DataFrame")
        rows = len(frame)
        columns: dict[str, ColumnSummary] = {}
        for name, kind in self.column_types.items():
            if name not in frame.columns:
                columns[name] = self._absent(name, kind, rows)
            elif is_numeric(kind):
                values = to_numeric_values(frame[name], kind, name).to_numpy()
                columns[name] = _summarise_numeric(values, self._edge_arrays[name], kind)
            else:
                columns[name] = self._summarise_categorical(name, kind, frame[name])
        extra = tuple(sorted(str(c) for c in frame.columns if str(c) not in self.column_types))
        return WindowSummary(self, rows, columns, start_ms, end_ms, extra)

    def _absent(self, name: str, kind: ColumnType, rows: int) -> ColumnSummary:
        if is_numeric(kind):
            bins = len(self.edges[name]) + 1
            return ColumnSummary(
                kind, 0, rows, rows, counts=(0,) * bins, offsets=(0.0,) * bins, values={}
            )
        return ColumnSummary(kind, 0, rows, rows, values={})

    def _summarise_categorical(
        self, name: str, kind: ColumnType, series: pd.Series
    ) -> ColumnSummary:
        present = series.dropna()
        counts = present.value_counts(sort=False)
        counts = counts[counts > 0]
        keep = self.categories[name]
        known = counts.index.isin(keep)
        new = counts[~known]
        other, truncated = 0, False
        if len(new) > self.max_categories:
            # Only the largest new values are kept; the long tail becomes one count.
            new = new.sort_values(ascending=False, kind="stable")
            other, truncated = int(new.iloc[self.max_categories :].sum()), True
            new = new.iloc[: self.max_categories]
        values: dict[Key, int] = {}
        for part in (counts[known], new):
            for k, c in zip(part.index, part.to_numpy(), strict=True):
                key = to_key(k)
                values[key] = values.get(key, 0) + int(c)
        return ColumnSummary(
            kind,
            len(present),
            len(series) - len(present),
            0,
            values=values,
            other=other,
            truncated=truncated,
        )


def _summarise_numeric(values: FloatArray, edges: FloatArray, kind: ColumnType) -> ColumnSummary:
    finite = values[np.isfinite(values)]
    missing = len(values) - len(finite)
    nbins = len(edges) + 1
    if finite.size == 0:
        return ColumnSummary(
            kind, 0, missing, 0, counts=(0,) * nbins, offsets=(0.0,) * nbins, values={}
        )
    index = np.searchsorted(edges, finite, side="right")
    counts = np.bincount(index, minlength=nbins)
    offsets: FloatArray = np.zeros(nbins)
    if edges.size:
        # Bin i > 0 is anchored at its left edge; the underflow bin at the first edge, so
        # abs() gives the (positive) distance below it.
        anchors = np.concatenate([edges[:1], edges])
        weights = np.abs(finite - anchors[index])
        offsets = np.bincount(index, weights=weights, minlength=nbins).astype(np.float64)
    mean = float(finite.mean())
    m2 = float(np.square(finite - mean).sum())
    small: dict[Key, int] | None = None
    if np.unique(finite[:_DISTINCT_PROBE]).size <= SMALL_VALUES:
        distinct = pd.Series(finite).value_counts(sort=False)
        if len(distinct) <= SMALL_VALUES:
            small = dict(zip(distinct.index.tolist(), distinct.tolist(), strict=True))
    return ColumnSummary(
        kind,
        int(finite.size),
        missing,
        0,
        float(finite.min()),
        float(finite.max()),
        mean,
        m2,
        tuple(counts.tolist()),
        tuple(offsets.tolist()),
        small,
    )


# --- window summaries ----------------------------------------------------------------------


def _merge_moments(parts: Sequence[ColumnSummary]) -> tuple[int, float | None, float]:
    # Chan et al.'s pairwise update: exact up to rounding, whatever the order.
    n, mean, m2 = 0, 0.0, 0.0
    for part in parts:
        if not part.count or part.mean is None:
            continue
        total = n + part.count
        delta = part.mean - mean
        mean += delta * part.count / total
        m2 += part.m2 + delta * delta * n * part.count / total
        n = total
    return n, (mean if n else None), m2


def _cap_values(
    values: dict[Key, int], keep: tuple[Key, ...], limit: int
) -> tuple[dict[Key, int], int]:
    kept = set(keep)
    new = [k for k in values if k not in kept]
    if len(new) <= limit:
        return values, 0
    new.sort(key=lambda k: (-values[k], repr(k)))
    dropped = new[limit:]
    other = sum(values[k] for k in dropped)
    return {k: c for k, c in values.items() if k not in set(dropped)}, other


def _merge_column(spec: SummarySpec, name: str, parts: Sequence[ColumnSummary]) -> ColumnSummary:
    kind = spec.column_types[name]
    _, mean, m2 = _merge_moments(parts)
    count = sum(p.count for p in parts)
    missing = sum(p.missing for p in parts)
    absent = sum(p.absent for p in parts)
    values: dict[Key, int] | None = {}
    for part in parts:
        if part.values is None or values is None:
            values = None
            continue
        for key, c in part.values.items():
            values[key] = values.get(key, 0) + c
    if is_numeric(kind):
        if values is not None and len(values) > SMALL_VALUES:
            values = None
        mins = [p.min for p in parts if p.min is not None]
        maxs = [p.max for p in parts if p.max is not None]
        return ColumnSummary(
            kind,
            count,
            missing,
            absent,
            min(mins) if mins else None,
            max(maxs) if maxs else None,
            mean,
            m2,
            tuple(np.asarray([p.counts for p in parts], dtype=np.int64).sum(axis=0).tolist()),
            tuple(np.asarray([p.offsets for p in parts]).sum(axis=0).tolist()),
            values,
        )
    values, extra = _cap_values(values or {}, spec.categories[name], spec.max_categories)
    other = sum(p.other for p in parts) + extra
    truncated = any(p.truncated for p in parts) or extra > 0
    return ColumnSummary(
        kind, count, missing, absent, values=values, other=other, truncated=truncated
    )


@dataclasses.dataclass(frozen=True, eq=False)
class WindowSummary:
    """The summary of one window (or of several merged): rows, and one
    :class:`ColumnSummary` per spec column. Equality compares content and spec."""

    spec: SummarySpec
    rows: int
    columns: Mapping[str, ColumnSummary]
    start_ms: int | None = None
    end_ms: int | None = None
    extra_columns: tuple[str, ...] = ()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WindowSummary):
            return NotImplemented
        return self.to_dict(include_spec=False) == other.to_dict(include_spec=False)

    __hash__ = None  # type: ignore[assignment]

    @property
    def missing_columns(self) -> tuple[str, ...]:
        """Spec columns absent from at least part of the window's rows."""
        return tuple(name for name, col in self.columns.items() if col.absent)

    @classmethod
    def merge(cls, summaries: Iterable[WindowSummary]) -> WindowSummary:
        """One summary of all ``summaries`` (same spec): counts add exactly, min/max and
        moments combine, the time span covers them all."""
        parts = list(summaries)
        if not parts:
            raise InvalidArgument("merge needs at least one window summary")
        spec = parts[0].spec
        if any(p.spec.fingerprint != spec.fingerprint for p in parts):
            raise InvalidArgument("cannot merge summaries made with different specs")
        columns = {
            name: _merge_column(spec, name, [p.columns[name] for p in parts])
            for name in spec.columns
        }
        starts = [p.start_ms for p in parts if p.start_ms is not None]
        ends = [p.end_ms for p in parts if p.end_ms is not None]
        extra = tuple(sorted({c for p in parts for c in p.extra_columns}))
        return cls(
            spec,
            sum(p.rows for p in parts),
            columns,
            min(starts) if starts else None,
            max(ends) if ends else None,
            extra,
        )

    def to_dict(self, *, include_spec: bool = True) -> dict[str, Any]:
        """JSON-able form. Without ``include_spec`` only the spec's fingerprint is kept
        (store the spec once; pass it back to :meth:`from_dict`)."""
        out: dict[str, Any] = {
            "format": FORMAT,
            "spec_fingerprint": self.spec.fingerprint,
            "rows": self.rows,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "extra_columns": list(self.extra_columns),
            "columns": {name: col.to_dict() for name, col in self.columns.items()},
        }
        if include_spec:
            out["spec"] = self.spec.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], spec: SummarySpec | None = None) -> WindowSummary:
        """The inverse of :meth:`to_dict`. ``spec`` is needed when the dict was written
        without it; it must be the spec the summary was made with."""
        try:
            if data["format"] != FORMAT:
                raise InvalidArgument(f"unsupported window summary format {data['format']!r}")
            if spec is None:
                if "spec" not in data:
                    raise InvalidArgument(
                        "this window summary was stored without its spec; pass spec="
                    )
                spec = SummarySpec.from_dict(data["spec"])
            if spec.fingerprint != data["spec_fingerprint"]:
                raise InvalidArgument("window summary was made with another spec")
            stored = data["columns"]
            # Compared as sets: a JSON store may have sorted the keys.
            if set(stored) != set(spec.columns):
                raise InvalidArgument("window summary columns do not match its spec")
            columns = {n: ColumnSummary.from_dict(stored[n]) for n in spec.columns}
            return cls(
                spec,
                int(data["rows"]),
                columns,
                data.get("start_ms"),
                data.get("end_ms"),
                tuple(str(c) for c in data.get("extra_columns", ())),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidArgument(f"malformed window summary: {exc!r}") from exc

    def column(self, name: str) -> ColumnSummary:
        """The summary of ``name`` (``InvalidArgument`` naming it if unknown)."""
        try:
            return self.columns[name]
        except KeyError:
            raise InvalidArgument(f"no column {name!r} in this summary", column=name) from None

    def histogram(
        self, name: str, *, bins: int | None = None, range: tuple[float, float] | None = None
    ) -> Histogram:
        """Bars of one column: a numeric column's fine bins (or ``bins`` equal-width bins
        over ``range``, default its min..max), a categorical column's value counts."""
        edges = self.spec._edge_arrays.get(name, np.empty(0))
        return column_histogram(self.column(name), edges, bins=bins, span=range)


def histogram_pair(
    reference: WindowSummary,
    current: WindowSummary,
    column: str,
    *,
    bins: int = 30,
    max_categories: int = 20,
) -> tuple[Histogram, Histogram]:
    """Reference and current bars of ``column`` on common bins, for plotting.

    Numeric columns get ``bins`` equal-width bins over both samples' range (one bar per
    value when both have few distinct values); categorical columns their
    ``max_categories`` most frequent values (reference first), the rest as ``other``.
    """
    if reference.spec.fingerprint != current.spec.fingerprint:
        raise InvalidArgument("reference and current summaries were made with different specs")
    edges = reference.spec._edge_arrays.get(column, np.empty(0))
    ref, cur = reference.column(column), current.column(column)
    return histogram_bars(ref, cur, edges, bins=bins, max_categories=max_categories)


# --- drift from summaries ------------------------------------------------------------------


def approximate_drift(
    spec: SummarySpec,
    reference: WindowSummary,
    current: WindowSummary,
    *,
    columns: Sequence[str] | None = None,
    stattests: Mapping[str, str] | None = None,
    thresholds: Mapping[str, float] | None = None,
    drift_share: float = 0.5,
) -> DatasetDrift:
    """Per-column and dataset drift computed from two summaries only (no raw data).

    Tests and thresholds are chosen as :func:`~modelloop.monitoring.dataset_drift`
    chooses them; ``stattests`` may name any of :data:`APPROXIMATE_STATTESTS`. Exact for
    value-count columns (categorical, boolean, numeric with few values) that were not
    truncated; numeric distances come from the bins (Wasserstein: exact unless the CDFs
    cross inside a bin; KS: the supremum over bin edges). ``n_unique`` is a lower bound
    for numeric columns with more than ``SMALL_VALUES`` distinct values. A column the
    current window lacks is reported as "not enough data".
    """
    if not 0 < drift_share <= 1:
        raise InvalidArgument(f"drift_share must be in (0, 1], got {drift_share}")
    for summary, label in ((reference, "reference"), (current, "current")):
        if summary.spec.fingerprint != spec.fingerprint:
            raise InvalidArgument(f"the {label} summary was made with another spec")
    names = list(spec.columns if columns is None else columns)
    unknown = [n for n in names if n not in spec.column_types]
    if unknown:
        raise InvalidArgument(
            f"columns not in the summary spec: {', '.join(unknown)}", columns=unknown
        )
    for label, mapping in (("stattests", stattests), ("thresholds", thresholds)):
        extra = sorted(set(mapping or {}) - set(names))
        if extra:
            raise InvalidArgument(
                f"{label} names columns that are not compared: {', '.join(extra)}"
            )
    results = {
        name: _column_drift(
            spec,
            name,
            reference.columns[name],
            current.columns[name],
            (stattests or {}).get(name),
            (thresholds or {}).get(name),
        )
        for name in names
    }
    tested = [r for r in results.values() if r.status == "ok"]
    n_drifted = sum(r.drifted for r in tested)
    share = n_drifted / len(tested) if tested else 0.0
    return DatasetDrift(
        results, len(tested), n_drifted, share, drift_share, bool(tested) and share >= drift_share
    )


def _column_drift(
    spec: SummarySpec,
    name: str,
    ref: ColumnSummary,
    cur: ColumnSummary,
    stattest: str | None,
    threshold: float | None,
) -> ColumnDrift:
    kind = spec.column_types[name]
    unique = n_unique(ref, cur)
    test = get_stattest(stattest or default_test(kind, unique, ref.count))
    if test.name not in APPROXIMATE_STATTESTS:
        raise InvalidArgument(
            f"stattest {test.name!r} cannot be computed from summaries; "
            f"use one of {', '.join(APPROXIMATE_STATTESTS)}",
            column=name,
            stattest=test.name,
        )
    if test.numeric_only and not is_numeric(kind):
        raise InvalidArgument(
            f"stattest {test.name!r} needs a numeric column; {name!r} is {kind}", column=name
        )
    if threshold is not None and not math.isfinite(threshold):
        raise InvalidArgument(f"threshold for {name!r} must be a finite number, got {threshold}")
    used = test.default_threshold if threshold is None else float(threshold)
    common: dict[str, Any] = {
        "column": name,
        "column_type": kind,
        "stattest": test.name,
        "kind": test.kind,
        "threshold": used,
        "n_unique": unique,
        "reference_rows": ref.count,
        "current_rows": cur.count,
        "reference_missing": ref.missing,
        "current_missing": cur.missing,
    }
    if ref.count < test.min_rows or cur.count < test.min_rows:
        return ColumnDrift(value=None, drifted=False, status="not enough data", **common)
    value = approximate_statistic(test.name, ref, cur, spec._edge_arrays.get(name, np.empty(0)))
    drifted = value < used if test.kind == "p_value" else value >= used
    return ColumnDrift(value=value, drifted=bool(drifted), status="ok", **common)
