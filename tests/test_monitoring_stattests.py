"""Each drift statistic against a direct SciPy / numpy computation on the same data."""

from __future__ import annotations

import warnings
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from modelloop.errors import InvalidArgument
from modelloop.monitoring import stattests as st

REL = 1e-12


@pytest.fixture
def normal_pair() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(42)
    return rng.normal(0, 1, 400), rng.normal(0.2, 1.3, 300)


def _shares(values: list[object], keys: list[object]) -> np.ndarray:
    counts = Counter(values)
    return np.array([counts[k] / len(values) for k in keys])


def test_ks_is_scipy_ks_2samp(normal_pair: tuple[np.ndarray, np.ndarray]) -> None:
    ref, cur = normal_pair
    result = st.ks(ref, cur)
    assert result.value == stats.ks_2samp(ref, cur).pvalue
    assert (result.name, result.kind, result.threshold) == ("ks", "p_value", 0.05)
    assert result.drifted == (result.value < 0.05)


def test_wasserstein_is_normed_by_reference_std(
    normal_pair: tuple[np.ndarray, np.ndarray],
) -> None:
    ref, cur = normal_pair
    result = st.wasserstein(ref, cur)
    assert result.value == pytest.approx(
        stats.wasserstein_distance(ref, cur) / np.std(ref), rel=REL
    )
    assert result.kind == "distance"
    assert result.drifted == (result.value >= 0.1)


def test_wasserstein_constant_reference_uses_evidently_floor() -> None:
    ref, cur = np.full(50, 3.0), np.full(50, 3.5)
    assert st.wasserstein(ref, cur).value == pytest.approx(0.5 / 0.001, rel=REL)


def test_anderson_is_scipy_midrank_significance(
    normal_pair: tuple[np.ndarray, np.ndarray],
) -> None:
    ref, cur = normal_pair
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = stats.anderson_ksamp([ref, cur], variant="midrank").pvalue
    result = st.anderson(ref, cur)
    assert result.value == expected
    assert result.threshold == 0.1
    # Identical samples: SciPy caps the significance at 0.25 (its warning is silenced).
    assert st.anderson(ref, ref).value == 0.25
    assert st.anderson(np.ones(5), np.ones(7)).value == 1.0


def test_cramer_von_mises_is_scipy(normal_pair: tuple[np.ndarray, np.ndarray]) -> None:
    ref, cur = normal_pair
    result = st.cramer_von_mises(ref, cur)
    assert result.value == stats.cramervonmises_2samp(ref, cur).pvalue
    assert result.threshold == 0.1
    with pytest.raises(InvalidArgument, match="at least 2"):
        st.cramer_von_mises([1.0], [1.0, 2.0])


def test_chisquare_goodness_of_fit_against_reference_proportions() -> None:
    ref = ["a"] * 50 + ["b"] * 30 + ["c"] * 20
    cur = ["a"] * 30 + ["b"] * 40 + ["c"] * 30
    keys = ["a", "b", "c"]
    f_exp = _shares(ref, keys) * len(cur)
    f_obs = np.array([Counter(cur)[k] for k in keys])
    result = st.chisquare(pd.Series(ref), pd.Series(cur))
    assert result.value == pytest.approx(stats.chisquare(f_obs, f_exp).pvalue, rel=REL)
    assert result.drifted


def test_chisquare_by_hand() -> None:
    # 5a+5b vs 8a+3b: expected 5.5 each, statistic 2 * 2.5**2 / 5.5 = 25/11 on 1 dof.
    result = st.chisquare(["a"] * 5 + ["b"] * 5, ["a"] * 8 + ["b"] * 3)
    assert result.value == pytest.approx(stats.chi2.sf(25 / 11, 1), rel=REL)
    assert not result.drifted


def test_chisquare_unseen_category_is_drift_like_evidently() -> None:
    ref = ["a"] * 60 + ["b"] * 40
    cur = ["a"] * 58 + ["b"] * 40 + ["new"] * 2
    result = st.chisquare(ref, cur)  # no RuntimeWarning escapes (warnings are errors)
    assert result.value == 0.0
    assert result.drifted
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = stats.chisquare([58, 40, 2], [60.0, 40.0, 0.0]).pvalue
    assert expected == 0.0


def test_chisquare_single_category_is_no_drift() -> None:
    assert st.chisquare(["a"] * 3, ["a"] * 9).value == 1.0


def test_z_on_booleans_matches_formula_and_2x2_chi_square() -> None:
    rng = np.random.default_rng(7)
    ref = rng.random(800) < 0.30
    cur = rng.random(600) < 0.36
    result = st.z(pd.Series(ref), pd.Series(cur), column_type="boolean")
    # The first sorted key is False: compare shares of False.
    p1, p2 = np.mean(~ref), np.mean(~cur)
    pooled = (np.sum(~ref) + np.sum(~cur)) / (ref.size + cur.size)
    z_stat = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1 / ref.size + 1 / cur.size))
    assert result.value == pytest.approx(2 * stats.norm.sf(abs(z_stat)), rel=REL)
    # The pooled two-proportion z-test is the uncorrected 2x2 Pearson chi-square.
    table = [[ref.sum(), (~ref).sum()], [cur.sum(), (~cur).sum()]]
    chi2_p = stats.chi2_contingency(table, correction=False).pvalue
    assert result.value == pytest.approx(chi2_p, rel=1e-9)
    assert result.drifted == (result.value < 0.05)


def test_z_edge_cases() -> None:
    assert st.z([True] * 4, [True] * 6).value == 1.0
    with pytest.raises(InvalidArgument, match="at most 2"):
        st.z(["a", "b"], ["c"])


def test_jensenshannon_binned_path_uses_sturges_over_combined_data(
    normal_pair: tuple[np.ndarray, np.ndarray],
) -> None:
    ref, cur = normal_pair
    edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
    expected = distance.jensenshannon(
        np.histogram(ref, edges)[0] / ref.size, np.histogram(cur, edges)[0] / cur.size
    )
    result = st.jensenshannon(ref, cur)
    assert result.value == pytest.approx(expected, rel=REL)
    assert len(edges) - 1 != 30  # Sturges, not Evidently's ignored n_bins=30


def test_jensenshannon_small_unique_path_uses_value_frequencies() -> None:
    ref = [0, 1, 2, 3] * 25 + [3] * 20
    cur = [0, 1, 2] * 30 + [5] * 10
    keys = [0, 1, 2, 3, 5]
    expected = distance.jensenshannon(_shares(ref, keys), _shares(cur, keys))
    assert st.jensenshannon(ref, cur).value == pytest.approx(expected, rel=REL)


def test_binning_switches_above_20_reference_values() -> None:
    twenty = np.arange(20, dtype=float)
    ref_pct, _ = st.binned_frequencies(np.repeat(twenty, 3), twenty)
    assert ref_pct.size == 20  # one share per value
    twenty_one = np.arange(21, dtype=float)
    ref_pct, _ = st.binned_frequencies(np.repeat(twenty_one, 3), twenty_one)
    edges = np.histogram_bin_edges(
        np.concatenate([np.repeat(twenty_one, 3), twenty_one]), "sturges"
    )
    assert ref_pct.size == len(edges) - 1


def _filled(p: np.ndarray) -> np.ndarray:
    smallest = p[p > 0].min()
    return np.where(p == 0, smallest / 1e6 if smallest <= 1e-4 else 1e-4, p)


def test_psi_and_kl_div_fill_empty_bins_like_evidently() -> None:
    ref = ["a"] * 50 + ["b"] * 30 + ["c"] * 20
    cur = ["a"] * 70 + ["b"] * 30
    keys = ["a", "b", "c"]
    p, q = _filled(_shares(ref, keys)), _filled(_shares(cur, keys))
    assert q[2] == 1e-4
    psi = st.psi(ref, cur, column_type="categorical")
    assert psi.value == pytest.approx(np.sum((p - q) * np.log(p / q)), rel=REL)
    kl = st.kl_div(ref, cur, column_type="categorical")
    assert kl.value == pytest.approx(stats.entropy(p, q), rel=REL)
    assert psi.drifted and kl.drifted


def test_psi_tiny_share_fill_is_a_millionth_of_the_smallest() -> None:
    ref = ["a"] * 99_999 + ["b"]
    cur = ["a"] * 10
    p = _shares(ref, ["a", "b"])
    q = _filled(_shares(cur, ["a", "b"]))
    assert q[1] == 1e-4
    assert _filled(np.array([0.0, 1e-5, 1 - 1e-5]))[0] == pytest.approx(1e-11, rel=REL)
    expected = np.sum((p - q) * np.log(p / q))
    assert st.psi(ref, cur, column_type="categorical").value == pytest.approx(expected, rel=REL)


def test_hellinger_numeric(normal_pair: tuple[np.ndarray, np.ndarray]) -> None:
    ref, cur = normal_pair
    edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
    p = np.histogram(ref, edges)[0] / ref.size
    q = np.histogram(cur, edges)[0] / cur.size
    expected = np.sqrt(0.5 * np.sum((np.sqrt(p) - np.sqrt(q)) ** 2))
    assert st.hellinger(ref, cur).value == pytest.approx(expected, rel=REL)
    assert st.hellinger(ref, ref).value == 0.0


@pytest.mark.parametrize(
    ("name", "kind", "threshold"),
    [
        ("ks", "p_value", 0.05),
        ("chisquare", "p_value", 0.05),
        ("z", "p_value", 0.05),
        ("anderson", "p_value", 0.1),
        ("cramer_von_mises", "p_value", 0.1),
        ("wasserstein", "distance", 0.1),
        ("jensenshannon", "distance", 0.1),
        ("psi", "distance", 0.1),
        ("kl_div", "distance", 0.1),
        ("hellinger", "distance", 0.1),
    ],
)
def test_registry_defaults(name: str, kind: str, threshold: float) -> None:
    test = st.get_stattest(name)
    assert (test.kind, test.default_threshold) == (kind, threshold)
    result = test.run([0.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 1.0])
    assert (result.name, result.kind, result.threshold) == (name, kind, threshold)


def test_threshold_override_and_direction() -> None:
    ref, cur = np.arange(100.0), np.arange(100.0) + 5
    value = st.wasserstein(ref, cur).value
    assert st.wasserstein(ref, cur, threshold=value).drifted  # >= for distances
    assert not st.wasserstein(ref, cur, threshold=value * 1.01).drifted
    p = st.ks(ref, cur).value
    assert not st.ks(ref, cur, threshold=p).drifted  # strict < for p-values


def test_unknown_stattest_and_bad_input() -> None:
    with pytest.raises(InvalidArgument, match="unknown stattest 'nope'"):
        st.get_stattest("nope")
    with pytest.raises(InvalidArgument, match="missing or infinite"):
        st.ks([1.0, np.nan], [1.0])
    with pytest.raises(InvalidArgument, match="non-empty"):
        st.ks([], [1.0])
    with pytest.raises(InvalidArgument, match="numeric"):
        st.psi(["a"], ["b"])  # numeric binning (the default) of strings


@pytest.mark.parametrize(
    ("column_type", "n_unique", "rows", "expected"),
    [
        ("numeric", 6, 1000, "ks"),
        ("numeric", 5, 1000, "chisquare"),
        ("numeric", 3, 1000, "chisquare"),
        ("numeric", 2, 1000, "z"),
        ("numeric", 1, 10, "z"),
        ("categorical", 3, 1000, "chisquare"),
        ("categorical", 2, 1000, "z"),
        ("boolean", 2, 1000, "z"),
        ("datetime", 50, 1000, "ks"),
        ("numeric", 6, 1001, "wasserstein"),
        ("numeric", 5, 1001, "jensenshannon"),
        ("numeric", 2, 1001, "jensenshannon"),
        ("categorical", 30, 1001, "jensenshannon"),
        ("categorical", 2, 1001, "jensenshannon"),
        ("boolean", 2, 5000, "jensenshannon"),
        ("datetime", 50, 1001, "wasserstein"),
    ],
)
def test_default_test_table(column_type: str, n_unique: int, rows: int, expected: str) -> None:
    assert st.default_test(column_type, n_unique, rows) == expected


def test_default_test_rejects_unknown_type() -> None:
    with pytest.raises(InvalidArgument, match="unknown column type 'text'"):
        st.default_test("text", 3, 10)


def test_chi2_contingency_is_scipys_two_sample_test() -> None:
    from scipy import stats as scipy_stats

    from modelloop.monitoring.stattests import chi2_contingency

    rng = np.random.default_rng(11)
    ref = rng.choice(np.array(["a", "b", "c"]), 400, p=[0.5, 0.3, 0.2])
    cur = rng.choice(np.array(["a", "b", "c", "d"]), 150, p=[0.4, 0.3, 0.2, 0.1])
    table = [[(ref == k).sum() for k in "abcd"], [(cur == k).sum() for k in "abcd"]]
    expected = scipy_stats.chi2_contingency(table, correction=False).pvalue
    result = chi2_contingency(ref, cur)
    assert abs(result.value - expected) <= 1e-9
    assert result.drifted == (expected < 0.05)
    assert chi2_contingency(["x"] * 5, ["x"] * 3).value == 1.0
