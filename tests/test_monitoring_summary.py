"""Mergeable per-window summaries and drift computed from them alone."""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelloop.errors import InvalidArgument
from modelloop.monitoring import dataset_drift
from modelloop.monitoring.summary import (
    APPROXIMATE_STATTESTS,
    Histogram,
    SummarySpec,
    WindowSummary,
    approximate_drift,
    histogram_pair,
)

# Largest |approximate - exact| measured on the million-row pairs below: PSI 5.1e-4 (the
# shifted uniform, on Sturges bins), Jensen-Shannon 2.0e-4, Wasserstein 4.4e-5 on
# unshifted pairs and 7e-7 on shifted ones; value-count columns are exact.
DISTANCE_ERROR = 1e-3


def _mixed(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1.0, n)
    x[rng.random(n) < 0.05] = np.nan
    x[:3] = [np.inf, -np.inf, np.nan]
    cat = rng.choice(np.array(["a", "b", "c", "d"], dtype=object), n)
    cat[rng.random(n) < 0.02] = None
    start = np.datetime64("2026-01-01T00:00:00", "ns")
    return pd.DataFrame(
        {
            "x": x,
            "count": rng.poisson(3 + shift, n),
            "cat": cat,
            "flag": rng.random(n) < 0.3 + shift / 10,
            "when": start + (rng.random(n) * 86_400e9 * (1 + shift)).astype("timedelta64[ns]"),
        }
    )


def _assert_summaries_equal(a: WindowSummary, b: WindowSummary) -> None:
    """Counts and value counts equal exactly; float moments and offsets to rounding."""
    left, right = a.to_dict(include_spec=False), b.to_dict(include_spec=False)
    assert left["rows"] == right["rows"]
    assert left["extra_columns"] == right["extra_columns"]
    for name, col in left["columns"].items():
        other = right["columns"][name]
        for key in ("type", "count", "missing", "absent", "counts", "other", "truncated"):
            assert col.get(key) == other.get(key), (name, key)
        assert sorted(map(tuple, col["values"] or [])) == sorted(map(tuple, other["values"] or []))
        for key in ("min", "max"):
            assert col.get(key) == other.get(key), (name, key)
        for key in ("mean", "m2"):
            if col.get(key) is not None:
                assert col[key] == pytest.approx(other[key], rel=1e-9, abs=1e-9)
        if "offsets" in col:
            assert np.allclose(col["offsets"], other["offsets"], rtol=1e-9, atol=1e-6)


def test_summary_holds_counts_moments_and_bins() -> None:
    frame = _mixed(5000, seed=1)
    spec = SummarySpec.fit(frame)
    summary = spec.summarise(frame)
    assert summary.rows == 5000
    assert spec.column_types == {
        "x": "numeric",
        "count": "numeric",
        "cat": "categorical",
        "flag": "boolean",
        "when": "datetime",
    }
    x = summary.columns["x"]
    finite = frame["x"][np.isfinite(frame["x"])]
    assert (x.count, x.missing) == (len(finite), 5000 - len(finite))
    assert x.min == finite.min()
    assert x.max == finite.max()
    assert x.mean == pytest.approx(finite.mean(), rel=1e-12)
    assert x.std == pytest.approx(finite.std(ddof=0), rel=1e-12)
    assert sum(x.counts) == x.count
    # The reference never falls outside its own edges.
    assert x.counts[0] == 0
    assert x.counts[-1] == 0
    assert x.values is None  # continuous: no exact value counts
    assert summary.columns["count"].values == frame["count"].value_counts().to_dict()
    cat = summary.columns["cat"]
    assert cat.values == frame["cat"].value_counts().to_dict()
    assert cat.missing == frame["cat"].isna().sum()
    assert summary.columns["flag"].values == frame["flag"].value_counts().to_dict()
    assert summary.columns["when"].min == float(frame["when"].min().value)


def test_merged_chunks_equal_the_whole_window() -> None:
    frame = _mixed(20_000, seed=2, shift=0.5)
    reference = _mixed(20_000, seed=3)
    spec = SummarySpec.fit(reference)
    whole = spec.summarise(frame, start_ms=0, end_ms=10_000)
    bounds = np.linspace(0, len(frame), 11).astype(int)
    chunks = [
        spec.summarise(frame.iloc[lo:hi], start_ms=int(lo), end_ms=int(hi) // 2)
        for lo, hi in itertools.pairwise(bounds)
    ]
    merged = WindowSummary.merge(chunks)
    _assert_summaries_equal(merged, whole)
    assert (merged.start_ms, merged.end_ms) == (0, 10_000)
    # The shifted window overflows the reference's edges; merging keeps that exact too.
    assert merged.columns["x"].counts[-1] > 0
    assert merged.histogram("x").counts == whole.histogram("x").counts
    # Every column type, datetime included, scores from the merged summary as from raw rows.
    exact = dataset_drift(reference, frame)
    approx = approximate_drift(spec, spec.summarise(reference), merged)
    for name, want in exact.columns.items():
        got = approx.columns[name]
        assert (got.stattest, got.drifted) == (want.stattest, want.drifted), name
        assert got.value == pytest.approx(want.value, abs=DISTANCE_ERROR), name
    assert approx.drifted_columns == ["x", "count", "when"]


def test_round_trip_through_json_is_exact() -> None:
    frame = _mixed(3000, seed=4)
    spec = SummarySpec.fit(frame)
    summary = spec.summarise(_mixed(2000, seed=5, shift=1.0), start_ms=5, end_ms=9)
    text = json.dumps(summary.to_dict(), allow_nan=False)
    again = WindowSummary.from_dict(json.loads(text))
    assert again == summary
    assert again.spec == spec
    assert again.columns == summary.columns
    assert SummarySpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec

    compact = json.loads(json.dumps(summary.to_dict(include_spec=False)))
    assert "spec" not in compact
    with pytest.raises(InvalidArgument, match="without its spec"):
        WindowSummary.from_dict(compact)
    assert WindowSummary.from_dict(compact, spec=spec) == summary
    other_spec = SummarySpec.fit(_mixed(3000, seed=6))
    with pytest.raises(InvalidArgument, match="another spec"):
        WindowSummary.from_dict(compact, spec=other_spec)
    with pytest.raises(InvalidArgument, match="malformed"):
        WindowSummary.from_dict({"format": 1, "columns": 3}, spec=spec)


def test_summary_stays_compact() -> None:
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({"a": rng.lognormal(0, 1, 200_000), "b": rng.normal(0, 1, 200_000)})
    spec = SummarySpec.fit(frame)
    summary = spec.summarise(frame)
    for column in summary.to_dict(include_spec=False)["columns"].values():
        assert len(json.dumps(column)) < 6000
    assert len(json.dumps(spec.to_dict())) < 2 * 6000


def test_window_lacking_columns_and_empty_windows() -> None:
    reference = _mixed(2000, seed=8)
    spec = SummarySpec.fit(reference)
    window = reference.drop(columns=["x", "cat"]).assign(extra=1)
    summary = spec.summarise(window)
    assert summary.missing_columns == ("x", "cat")
    assert summary.extra_columns == ("extra",)
    assert summary.columns["x"].count == 0
    assert summary.columns["x"].missing == summary.columns["x"].absent == 2000

    empty = spec.summarise(reference.iloc[:0])
    assert empty.rows == 0
    assert empty.histogram("x") == Histogram("numeric", ())
    merged = WindowSummary.merge([empty, summary, spec.summarise(reference)])
    assert merged.rows == 4000
    assert merged.columns["x"].count == spec.summarise(reference).columns["x"].count

    drift = approximate_drift(spec, spec.summarise(reference), summary)
    assert drift.columns["x"].status == "not enough data"
    assert drift.columns["x"].value is None
    assert drift.columns["count"].status == "ok"
    assert drift.n_tested == 3


def test_categories_beyond_the_cap_are_counted_as_other() -> None:
    reference = pd.DataFrame({"c": [f"r{i % 8}" for i in range(800)]})
    spec = SummarySpec.fit(reference, max_categories=5)
    assert len(spec.categories["c"]) == 5
    window = pd.DataFrame({"c": [f"new{i % 40}" for i in range(400)] + ["r0"] * 10})
    summary = spec.summarise(window)
    col = summary.columns["c"]
    assert col.truncated
    assert col.other == 400 - 5 * 10
    assert col.values is not None
    assert col.values["r0"] == 10
    assert sum(col.values.values()) + col.other == col.count == 410

    merged = WindowSummary.merge([summary, spec.summarise(window.iloc[::-1])])
    assert merged.columns["c"].count == 820
    assert merged.columns["c"].values is not None
    assert len(merged.columns["c"].values) <= 5 + 5
    assert sum(merged.columns["c"].values.values()) + merged.columns["c"].other == 820
    # The exact reference keeps no "other"; the untruncated test stays exact.
    assert not spec.summarise(reference).columns["c"].truncated


def _million_row_pairs(n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(11)
    letters = list("abcdefghij")
    p_ref = np.linspace(1, 2, 10) / 15
    reference = pd.DataFrame(
        {
            "normal": rng.normal(0, 1, n),
            "normal_shifted": rng.normal(0, 1, n),
            "lognormal": rng.lognormal(0, 1, n),
            "lognormal_shifted": rng.lognormal(0, 1, n),
            "uniform": rng.uniform(0, 1, n),
            "uniform_shifted": rng.uniform(0, 1, n),
            "category": rng.choice(letters, n, p=p_ref),
            "category_shifted": rng.choice(letters, n, p=p_ref),
            "level": rng.integers(0, 4, n),
            "age": rng.integers(18, 90, n),
        }
    )
    current = pd.DataFrame(
        {
            "normal": rng.normal(0, 1, n),
            "normal_shifted": rng.normal(0.5, 1, n),
            "lognormal": rng.lognormal(0, 1, n),
            "lognormal_shifted": rng.lognormal(0.15, 1.1, n),
            "uniform": rng.uniform(0, 1, n),
            "uniform_shifted": rng.uniform(0.05, 1.05, n),
            "category": rng.choice(letters, n, p=p_ref),
            "category_shifted": rng.choice(letters, n, p=p_ref[::-1]),
            "level": rng.integers(0, 4, n),
            "age": rng.integers(22, 94, n),
        }
    )
    return reference, current


@pytest.mark.slow
def test_approximate_drift_reproduces_exact_drift_at_a_million_rows() -> None:
    n = 1_000_000
    reference, current = _million_row_pairs(n)
    spec = SummarySpec.fit(reference)
    ref_summary = spec.summarise(reference)
    # The current side is summarised in ten windows and merged, as a monitor would.
    cur_summary = WindowSummary.merge(
        [spec.summarise(current.iloc[i : i + n // 10]) for i in range(0, n, n // 10)]
    )
    checks: list[tuple[str, dict[str, str] | None]] = [("default", None)]
    numeric = ["normal", "normal_shifted", "lognormal_shifted", "uniform_shifted", "age"]
    checks += [(test, {c: test for c in numeric}) for test in ("jensenshannon", "psi")]
    drifted_seen = set()
    for label, stattests in checks:
        columns = None if stattests is None else numeric
        exact = dataset_drift(reference, current, columns=columns, stattests=stattests)
        approx = approximate_drift(
            spec, ref_summary, cur_summary, columns=columns, stattests=stattests
        )
        for name, want in exact.columns.items():
            got = approx.columns[name]
            assert want.value is not None
            assert got.value is not None
            assert got.stattest == want.stattest, (label, name)
            # Keep the cases honest: none sits within the error of its threshold.
            assert abs(want.value - want.threshold) > 10 * DISTANCE_ERROR, (label, name)
            assert abs(got.value - want.value) <= DISTANCE_ERROR, (label, name, got.value)
            assert got.drifted == want.drifted, (label, name)
            if want.drifted:
                drifted_seen.add(name)
        assert approx.dataset_drift == exact.dataset_drift
        assert approx.share_drifted == exact.share_drifted
    assert drifted_seen == {
        "normal_shifted",
        "lognormal_shifted",
        "uniform_shifted",
        "category_shifted",
        "age",
    }
    # Categorical and few-valued columns are exact.
    exact = dataset_drift(reference, current, columns=["category_shifted", "level"])
    approx = approximate_drift(
        spec, ref_summary, cur_summary, columns=["category_shifted", "level"]
    )
    for name in ("category_shifted", "level"):
        assert approx.columns[name].value == pytest.approx(exact.columns[name].value, rel=1e-12)


def test_small_data_picks_the_same_tests_and_verdicts() -> None:
    rng = np.random.default_rng(12)
    n = 600
    reference = pd.DataFrame(
        {
            "x": rng.normal(0, 1, n),
            "shifted": rng.normal(0, 1, n),
            "three": rng.choice([1, 2, 3], n),
            "cat": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
            "flag": rng.random(n) < 0.5,
        }
    )
    current = pd.DataFrame(
        {
            "x": rng.normal(0, 1, n),
            "shifted": rng.normal(0.8, 1, n),
            "three": rng.choice([1, 2, 3], n, p=[0.2, 0.3, 0.5]),
            "cat": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
            "flag": rng.random(n) < 0.2,
        }
    )
    spec = SummarySpec.fit(reference)
    exact = dataset_drift(reference, current)
    approx = approximate_drift(spec, spec.summarise(reference), spec.summarise(current))
    assert {n: c.stattest for n, c in approx.columns.items()} == {
        "x": "ks",
        "shifted": "ks",
        "three": "chisquare",
        "cat": "chisquare",
        "flag": "z",
    }
    for name, want in exact.columns.items():
        got = approx.columns[name]
        assert got.stattest == want.stattest
        assert got.drifted == want.drifted, name
    assert approx.drifted_columns == ["shifted", "three", "flag"]
    # Value-count tests are exact; KS uses the asymptotic distribution on bin edges.
    for name in ("three", "cat", "flag"):
        assert approx.columns[name].value == pytest.approx(exact.columns[name].value, rel=1e-9)
    assert approx.columns["x"].value == pytest.approx(exact.columns["x"].value, abs=0.1)


def test_histograms_for_plotting() -> None:
    reference = _mixed(4000, seed=13)
    spec = SummarySpec.fit(reference)
    ref, cur = spec.summarise(reference), spec.summarise(_mixed(4000, seed=14, shift=2.0))
    fine = ref.histogram("x")
    assert fine.kind == "numeric"
    assert len(fine.edges) == len(fine.counts) + 1
    assert sum(fine.counts) == ref.columns["x"].count
    assert list(fine.edges) == sorted(fine.edges)

    ref_bars, cur_bars = histogram_pair(ref, cur, "x", bins=20)
    assert ref_bars.edges == cur_bars.edges
    assert len(ref_bars.counts) == 20
    assert ref_bars.edges[0] == min(ref.columns["x"].min or 0, cur.columns["x"].min or 0)
    assert ref_bars.edges[-1] == max(ref.columns["x"].max or 0, cur.columns["x"].max or 0)
    for bars, summary in ((ref_bars, ref), (cur_bars, cur)):
        assert sum(bars.counts) == pytest.approx(summary.columns["x"].count)
        assert math.isclose(sum(bars.shares), 1.0)
    # The shifted window's mass sits to the right of the reference's.
    centre = np.convolve(ref_bars.edges, [0.5, 0.5], "valid")
    assert np.dot(cur_bars.shares, centre) > np.dot(ref_bars.shares, centre) + 1.5

    cat_ref, cat_cur = histogram_pair(ref, cur, "cat", max_categories=2)
    assert cat_ref.kind == "categorical"
    assert len(cat_ref.categories) == 2
    assert cat_ref.total == ref.columns["cat"].count
    assert cat_cur.total == cur.columns["cat"].count
    assert cat_ref.other > 0
    # A few-valued numeric column is drawn one bar per value.
    level_ref, _ = histogram_pair(ref, cur, "count")
    assert level_ref.kind == "categorical"
    assert list(level_ref.categories) == sorted(level_ref.categories)
    assert Histogram.from_dict(json.loads(json.dumps(cat_ref.to_dict()))) == cat_ref


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: SummarySpec.fit([1, 2, 3]), "DataFrame"),  # type: ignore[arg-type]
        (lambda: SummarySpec.fit(pd.DataFrame({"a": [1.0]}), bins=1), "bins"),
        (lambda: SummarySpec.fit(pd.DataFrame({"a": [1.0]}), columns=["b"]), "missing"),
        (lambda: SummarySpec.fit(pd.DataFrame({"a": [1.0]}), max_categories=0), "max_categories"),
        (lambda: WindowSummary.merge([]), "at least one"),
        (lambda: SummarySpec.from_dict({"format": 1}), "malformed"),
    ],
)
def test_bad_input_raises_invalid_argument(call: Any, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        call()


def test_bad_windows_and_tests_raise_invalid_argument() -> None:
    reference = _mixed(1500, seed=15)
    spec = SummarySpec.fit(reference)
    with pytest.raises(InvalidArgument, match="non-numeric"):
        spec.summarise(reference.assign(x="oops"))
    ref = spec.summarise(reference)
    other = SummarySpec.fit(reference, bins=16).summarise(reference)
    with pytest.raises(InvalidArgument, match="different specs"):
        WindowSummary.merge([ref, other])
    with pytest.raises(InvalidArgument, match="another spec"):
        approximate_drift(spec, ref, other)
    with pytest.raises(InvalidArgument, match="cannot be computed from summaries"):
        approximate_drift(spec, ref, ref, stattests={"x": "anderson"})
    with pytest.raises(InvalidArgument, match="exact value counts"):
        approximate_drift(spec, ref, ref, stattests={"x": "chisquare"})
    with pytest.raises(InvalidArgument, match="needs a numeric column"):
        approximate_drift(spec, ref, ref, stattests={"cat": "wasserstein"})
    with pytest.raises(InvalidArgument, match="not compared"):
        approximate_drift(spec, ref, ref, columns=["x"], thresholds={"cat": 0.2})
    with pytest.raises(InvalidArgument, match="no column"):
        ref.histogram("nope")
    assert "wasserstein" in APPROXIMATE_STATTESTS
