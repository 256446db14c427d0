"""ReferenceProfile: fitted once, it gives dataset_drift's report for every window."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from modelloop.errors import InvalidArgument
from modelloop.monitoring import dataset_drift
from modelloop.monitoring import stattests as st
from modelloop.monitoring.drift import DatasetDrift
from modelloop.monitoring.profile import ReferenceProfile

REL = 1e-9


def _mixed(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """Every column type, missing values, and a numeric code column with few values."""
    rng = np.random.default_rng(seed)
    num = rng.normal(shift, 1, n)
    num[rng.random(n) < 0.05] = np.nan
    num[:2] = [np.inf, -np.inf]
    ints = pd.array(rng.integers(0, 50, n), dtype="Int64")
    ints[rng.random(n) < 0.03] = pd.NA
    p_cat = [0.5, 0.3, 0.2] if shift == 0 else [0.2, 0.3, 0.5]
    cat = rng.choice(["a", "b", "c"], n, p=p_cat).astype(object)
    cat[rng.random(n) < 0.05] = None
    when = pd.Timestamp("2024-01-01") + pd.to_timedelta(
        rng.integers(0, 10**6, n) + int(shift * 10**5), "s"
    )
    when = when.where(rng.random(n) > 0.02)  # some NaT
    return pd.DataFrame(
        {
            "num": num,
            "ints": ints,
            "codes": rng.integers(0, 4, n).astype(float),  # 4 values: chisquare / JS
            "pair": rng.integers(0, 2, n),  # 2 values: z / JS
            "cat": cat,
            "levels": pd.Categorical(rng.choice(["x", "y", "z", "w"], n), categories=list("xyzwv")),
            "flag": rng.random(n) < (0.3 + 0.2 * shift),
            "when": when,
            "text": rng.choice(["red", "green", "blue", "cyan", "grey"], n),
        }
    )


def _assert_same(ours: DatasetDrift, expected: DatasetDrift) -> None:
    got, want = ours.to_dict(), expected.to_dict()
    assert list(got["columns"]) == list(want["columns"])
    for name in want["columns"]:
        mine, theirs = dict(got["columns"][name]), dict(want["columns"][name])
        value, expected_value = mine.pop("value"), theirs.pop("value")
        assert mine == theirs, name
        if expected_value is None:
            assert value is None, name
        else:
            assert value == pytest.approx(expected_value, rel=REL, abs=1e-300), name
    got.pop("columns")
    want.pop("columns")
    assert got == want


@pytest.mark.parametrize("n", [400, 3000])  # p-value tests, then distances
def test_drift_equals_dataset_drift_on_mixed_frames(n: int) -> None:
    reference = _mixed(n, 0)
    profile = ReferenceProfile.fit(reference)
    tests = set()
    for seed, shift in ((1, 0.0), (2, 1.0), (3, 0.3)):
        current = _mixed(n // 2, seed, shift)
        report = profile.drift(current)
        _assert_same(report, dataset_drift(reference, current))
        tests |= {col.stattest for col in report.columns.values()}
    assert tests == ({"ks", "chisquare", "z"} if n <= 1000 else {"wasserstein", "jensenshannon"})


def test_values_are_scipy_on_the_same_data() -> None:
    reference, current = _mixed(5000, 0), _mixed(4000, 1, 0.5)
    report = ReferenceProfile.fit(reference).drift(current)
    ref = reference["num"].to_numpy()
    cur = current["num"].to_numpy()
    ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
    expected = stats.wasserstein_distance(ref, cur) / np.std(ref)
    assert report.columns["num"].value == pytest.approx(expected, rel=REL)
    ref_codes, cur_codes = reference["codes"], current["codes"]
    keys = sorted(set(ref_codes) | set(cur_codes))
    shares = [np.array([(s == k).mean() for k in keys]) for s in (ref_codes, cur_codes)]
    assert report.columns["codes"].value == pytest.approx(distance.jensenshannon(*shares), rel=REL)


def test_profile_with_overrides_and_mapping_thresholds() -> None:
    reference, current = _mixed(3000, 0), _mixed(2000, 4, 0.2)
    options: dict[str, Any] = {
        "columns": ["num", "codes", "cat", "when"],
        "column_types": {"codes": "categorical"},
        "stattests": {"num": "ks", "when": "psi", "cat": "hellinger"},
        "thresholds": {"num": 0.01, "cat": 0.05},
        "drift_share": 0.25,
    }
    profile = ReferenceProfile.fit(reference, **options)
    assert profile.columns == ["num", "codes", "cat", "when"]
    assert profile.column_types == {
        "num": "numeric",
        "codes": "categorical",
        "cat": "categorical",
        "when": "datetime",
    }
    _assert_same(profile.drift(current), dataset_drift(reference, current, **options))


@pytest.mark.parametrize("n", [600, 3000])
def test_learned_thresholds_follow_the_test_each_window_picks(n: int) -> None:
    rng = np.random.default_rng(5)
    reference = pd.DataFrame(
        {
            "few": rng.integers(0, 2, n).astype(float),  # 2 values in the reference
            "x": rng.normal(0, 1, n),
            "c": rng.choice(["a", "b"], n),
        }
    )
    profile = ReferenceProfile.fit(reference, thresholds="learned")
    same = pd.DataFrame(
        {
            "few": rng.integers(0, 2, 300),
            "x": rng.normal(0, 1, 300),
            "c": rng.choice(["a", "b"], 300),
        }
    )
    wider = pd.DataFrame(  # 8 values in "few" now: the default test changes
        {
            "few": rng.integers(0, 8, 300),
            "x": rng.normal(0.5, 1, 300),
            "c": rng.choice(["a", "b", "c"], 300),
        }
    )
    picked = set()
    for current in (same, wider):
        report = profile.drift(current)
        _assert_same(report, dataset_drift(reference, current, thresholds="learned"))
        picked.add(report.columns["few"].stattest)
    assert len(picked) == 2


def test_learned_threshold_error_is_raised_when_the_window_needs_it() -> None:
    reference = pd.DataFrame({"x": np.arange(15.0)})  # too few rows for 10 chunks
    current = pd.DataFrame({"x": np.arange(10.0)})
    with pytest.raises(InvalidArgument, match="too few") as expected:
        dataset_drift(reference, current, thresholds="learned")
    profile = ReferenceProfile.fit(reference, thresholds="learned")
    with pytest.raises(InvalidArgument, match="too few") as got:
        profile.drift(current)
    assert str(got.value) == str(expected.value)


def test_parquet_in_and_out_equals_frames(tmp_path: Any) -> None:
    reference, current = _mixed(3000, 0), _mixed(1500, 6, 0.4)
    reference.to_parquet(tmp_path / "ref.parquet")
    current.to_parquet(tmp_path / "cur.parquet")
    from_frame = ReferenceProfile.fit(reference).drift(current)
    from_file = ReferenceProfile.fit_parquet(tmp_path / "ref.parquet")
    assert from_file.columns == list(reference.columns)
    assert from_file.column_types == ReferenceProfile.fit(reference).column_types
    _assert_same(from_file.drift_parquet(tmp_path / "cur.parquet"), from_frame)
    _assert_same(from_file.drift(current), from_frame)
    subset = ReferenceProfile.fit_parquet(tmp_path / "ref.parquet", columns=["text", "num"])
    assert list(subset.drift_parquet(tmp_path / "cur.parquet").columns) == ["text", "num"]


def test_bad_parquet_input_is_named(tmp_path: Any) -> None:
    reference = _mixed(500, 0)
    reference.to_parquet(tmp_path / "ref.parquet")
    reference.drop(columns=["cat"]).to_parquet(tmp_path / "cur.parquet")
    profile = ReferenceProfile.fit_parquet(tmp_path / "ref.parquet")
    with pytest.raises(InvalidArgument, match="columns missing from current: cat"):
        profile.drift_parquet(tmp_path / "cur.parquet")
    (tmp_path / "junk.parquet").write_text("not parquet")
    with pytest.raises(InvalidArgument, match="cannot read current Parquet file"):
        profile.drift_parquet(tmp_path / "junk.parquet")
    with pytest.raises(InvalidArgument, match="cannot read reference Parquet file"):
        ReferenceProfile.fit_parquet(tmp_path / "absent.parquet")
    with pytest.raises(InvalidArgument, match="columns missing from reference: nope"):
        ReferenceProfile.fit_parquet(tmp_path / "ref.parquet", columns=["num", "nope"])


def test_missing_column_and_type_mismatch_are_named() -> None:
    reference = _mixed(500, 0)
    profile = ReferenceProfile.fit(reference)
    with pytest.raises(InvalidArgument, match="columns missing from current: flag, text"):
        profile.drift(reference.drop(columns=["flag", "text"]))
    current = reference.copy()
    current["num"] = ["n/a"] * len(current)
    with pytest.raises(InvalidArgument, match="'num' is typed 'numeric'") as got:
        profile.drift(current)
    assert got.value.details["column"] == "num"
    texty = reference.assign(num=reference["num"].astype(object))
    texty.loc[3, "num"] = "oops"
    with pytest.raises(InvalidArgument, match="'num' is typed 'numeric'"):
        ReferenceProfile.fit(texty, column_types={"num": "numeric"})


def test_empty_and_all_missing_columns_are_not_enough_data() -> None:
    reference = _mixed(500, 0)
    reference["empty_ref"] = np.nan
    profile = ReferenceProfile.fit(reference)
    report = profile.drift(reference.iloc[:0])
    assert report.n_tested == 0
    assert not report.dataset_drift
    assert {c.status for c in report.columns.values()} == {"not enough data"}
    current = _mixed(300, 1)
    current["empty_ref"] = 1.0
    current["num"] = np.nan
    current["cat"] = None
    report = profile.drift(current)
    for name in ("num", "cat", "empty_ref"):
        assert report.columns[name].status == "not enough data", name
        assert report.columns[name].value is None
    _assert_same(report, dataset_drift(reference, current))


def test_bad_options_are_refused_at_fit_time() -> None:
    reference = _mixed(300, 0)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"drift_share": 0}, "drift_share"),
        ({"columns": ["num", "nope"]}, "columns missing from reference: nope"),
        ({"stattests": {"nope": "ks"}}, "not compared: nope"),
        ({"thresholds": {"nope": 0.1}}, "not compared: nope"),
        ({"thresholds": "bogus"}, "mapping or 'learned'"),
        ({"column_types": {"nope": "numeric"}}, "not compared: nope"),
        ({"column_types": {"cat": "text"}}, "unknown column type 'text'"),
        ({"stattests": {"cat": "ks"}}, "needs a numeric column"),
        ({"stattests": {"num": "nope"}}, "unknown stattest 'nope'"),
    ]
    for options, message in cases:
        with pytest.raises(InvalidArgument, match=message):
            ReferenceProfile.fit(reference, **options)


def test_reference_summaries_are_reported() -> None:
    reference = _mixed(500, 0)
    profile = ReferenceProfile.fit(reference, columns=["num", "cat"])
    finite = np.isfinite(reference["num"].to_numpy()).sum()
    assert profile.reference_rows == {"num": finite, "cat": reference["cat"].notna().sum()}
    assert profile.nbytes >= finite * 8
    assert profile.drift_share == 0.5
    results = list(profile.iter_drift(_mixed(200, 1)))
    assert [r.column for r in results] == ["num", "cat"]


# -- the fast paths against numpy / SciPy directly -----------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_sorted_fast_paths_equal_numpy_and_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(1, 3000)), int(rng.integers(1, 3000))
    ref, cur = [
        rng.normal(size=n).round(seed % 3 + 1),  # rounding makes ties
        rng.normal(seed, 2, size=m).round(seed % 3 + 1),
    ]
    if seed == 5:
        ref, cur = np.full(n, 2.0), np.full(m, 2.0)  # a constant sample: one widened bin
    both = np.concatenate([ref, cur])
    edges = st.sturges_edges(both.min(), both.max(), both.size)
    np.testing.assert_array_equal(edges, np.histogram_bin_edges(both, bins="sturges"))
    np.testing.assert_array_equal(
        st.sorted_histogram(np.sort(ref), edges), np.histogram(ref, edges)[0]
    )
    value = st.wasserstein_sorted(np.sort(ref), np.sort(cur), float(np.std(ref))).value
    expected = stats.wasserstein_distance(ref, cur) / max(np.std(ref), 0.001)
    assert value == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert st.sorted_n_unique(np.sort(ref)) == len(np.unique(ref))


def test_a_pickled_profile_gives_the_same_report() -> None:
    import pickle

    reference = _mixed(3000, 0)
    reference["tiny"] = np.where(np.arange(3000) < 5, 1.0, np.nan)  # cannot learn: kept error
    profile = ReferenceProfile.fit(reference, thresholds="learned")
    restored = pickle.loads(pickle.dumps(profile))
    current = _mixed(1000, 7, 0.5).assign(tiny=1.0)
    with pytest.raises(InvalidArgument, match="'tiny' has 5 non-missing reference values"):
        restored.drift(current)
    columns = [c for c in reference.columns if c != "tiny"]
    profile = ReferenceProfile.fit(reference, columns=columns, thresholds="learned")
    restored = pickle.loads(pickle.dumps(profile))
    _assert_same(restored.drift(current), profile.drift(current))
    _assert_same(
        restored.drift(current),
        dataset_drift(reference, current, columns=columns, thresholds="learned"),
    )
