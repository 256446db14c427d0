"""The drift tests behave as statistics should: on samples from one distribution the
share flagged stays near the nominal rate, and known shifts are detected."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelloop.monitoring import column_drift, dataset_drift

PAIRS = 400


def _flag_rate(
    make: object, rows: int, seed: int, *, current_rows: int | None = None, test: str | None = None
) -> float:
    rng = np.random.default_rng(seed)
    flagged = 0
    for _ in range(PAIRS):
        ref = make(rng, rows)  # type: ignore[operator]
        cur = make(rng, current_rows or rows)  # type: ignore[operator]
        result = column_drift(pd.Series(ref, name="x"), pd.Series(cur, name="x"), stattest=test)
        flagged += result.drifted
    return flagged / PAIRS


def _normal(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.normal(10, 3, n)


def _categories(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.choice(np.array(["a", "b", "c", "d"]), n, p=[0.4, 0.3, 0.2, 0.1])


def _booleans(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.random(n) < 0.3


@pytest.mark.parametrize(
    ("make", "test_name", "default"),
    [
        (_normal, "ks", True),
        (_booleans, "z", True),
        (_categories, "chi2_contingency", False),
    ],
)
def test_p_value_tests_flag_about_the_nominal_five_percent_under_no_drift(
    make: object, test_name: str, default: bool
) -> None:
    rng = np.random.default_rng(1)
    ref, cur = make(rng, 300), make(rng, 300)  # type: ignore[operator]
    chosen = column_drift(pd.Series(ref, name="x"), pd.Series(cur, name="x")).stattest
    assert (chosen == test_name) is default
    rate = _flag_rate(make, 300, seed=2, test=test_name)
    # Binomial(400, 0.05) has a standard deviation of 1.1 points: +-3.5 of them.
    assert 0.012 <= rate <= 0.088, rate


def test_evidentlys_chisquare_is_nominal_only_with_a_much_larger_reference() -> None:
    # Evidently's default for categories tests the window against the reference
    # proportions as if they were exact: fine when the reference dwarfs the window,
    # over-alerting when both are the same size (chi2_contingency is the remedy).
    assert 0.012 <= _flag_rate(_categories, 1000, seed=5, current_rows=100) <= 0.088
    assert _flag_rate(_categories, 300, seed=5) > 0.15


def test_distance_tests_stay_quiet_on_large_samples_from_one_distribution() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        frame = pd.DataFrame({"x": _normal(rng, 5000), "c": _categories(rng, 5000)})
        other = pd.DataFrame({"x": _normal(rng, 5000), "c": _categories(rng, 5000)})
        result = dataset_drift(frame, other)
        assert result.columns["x"].stattest == "wasserstein"
        assert result.columns["c"].stattest == "jensenshannon"
        assert result.n_drifted == 0


@pytest.mark.parametrize("rows", [300, 5000])
def test_a_mean_shift_a_variance_change_and_a_frequency_change_are_each_detected(
    rows: int,
) -> None:
    rng = np.random.default_rng(4)
    reference = pd.DataFrame(
        {
            "mean": rng.normal(10, 3, rows),
            "spread": rng.normal(10, 3, rows),
            "freq": _categories(rng, rows),
            "calm": rng.normal(10, 3, rows),
        }
    )
    current = pd.DataFrame(
        {
            "mean": rng.normal(11.5, 3, rows),  # half a standard deviation
            "spread": rng.normal(10, 6, rows),  # twice the standard deviation
            "freq": rng.choice(np.array(["a", "b", "c", "d"]), rows, p=[0.2, 0.3, 0.2, 0.3]),
            "calm": rng.normal(10, 3, rows),
        }
    )
    result = dataset_drift(reference, current)
    assert result.drifted_columns == ["mean", "spread", "freq"]
    expected = ("ks", "chisquare") if rows <= 1000 else ("wasserstein", "jensenshannon")
    assert result.columns["mean"].stattest == expected[0]
    assert result.columns["freq"].stattest == expected[1]
    assert result.dataset_drift  # 3 of 4 columns
