"""Column and dataset drift reports, column types, and learned thresholds."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from modelloop.errors import InvalidArgument
from modelloop.monitoring import (
    column_drift,
    dataset_drift,
    infer_column_type,
    infer_column_types,
    learn_threshold,
)


def _frames(n: int = 500, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Four columns; ``shifted_num`` and ``shifted_cat`` drift, the others do not."""
    rng = np.random.default_rng(seed)
    reference = pd.DataFrame(
        {
            "stable_num": rng.normal(0, 1, n),
            "shifted_num": rng.normal(0, 1, n),
            "stable_cat": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
            "shifted_cat": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
        }
    )
    current = pd.DataFrame(
        {
            "stable_num": rng.normal(0, 1, n),
            "shifted_num": rng.normal(1.0, 1, n),
            "stable_cat": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
            "shifted_cat": rng.choice(["a", "b", "c"], n, p=[0.2, 0.3, 0.5]),
        }
    )
    return reference, current


def test_dataset_drift_share_and_evidently_rule() -> None:
    reference, current = _frames()
    report = dataset_drift(reference, current)
    assert report.drifted_columns == ["shifted_num", "shifted_cat"]
    assert report.columns["stable_num"].stattest == "ks"
    assert report.columns["stable_cat"].stattest == "chisquare"
    assert (report.n_tested, report.n_drifted, report.share_drifted) == (4, 2, 0.5)
    assert report.dataset_drift  # share >= drift_share
    assert not dataset_drift(reference, current, drift_share=0.6).dataset_drift


def test_column_drift_value_is_the_stattest_on_the_column() -> None:
    reference, current = _frames()
    result = column_drift(reference["shifted_num"], current["shifted_num"])
    assert result.value == stats.ks_2samp(reference["shifted_num"], current["shifted_num"]).pvalue
    assert (result.column, result.column_type, result.status) == ("shifted_num", "numeric", "ok")


def test_large_reference_switches_to_distances() -> None:
    reference, current = _frames(n=1001)
    report = dataset_drift(reference, current)
    assert report.columns["stable_num"].stattest == "wasserstein"
    assert report.columns["stable_cat"].stattest == "jensenshannon"
    assert report.drifted_columns == ["shifted_num", "shifted_cat"]


def test_missing_values_are_dropped_and_counted() -> None:
    reference, current = _frames()
    reference.loc[:9, "stable_num"] = np.nan
    reference.loc[:4, "stable_cat"] = None
    current.loc[:2, "stable_num"] = np.inf  # Evidently drops infinities too
    report = dataset_drift(reference, current)
    num = report.columns["stable_num"]
    assert (num.reference_missing, num.current_missing) == (10, 3)
    assert (num.reference_rows, num.current_rows) == (490, 497)
    expected = stats.ks_2samp(reference["stable_num"].iloc[10:], current["stable_num"].iloc[3:])
    assert num.value == expected.pvalue
    assert report.columns["stable_cat"].reference_missing == 5


def test_all_missing_column_is_not_enough_data() -> None:
    reference, current = _frames()
    current["stable_num"] = np.nan
    report = dataset_drift(reference, current)
    result = report.columns["stable_num"]
    assert result.status == "not enough data"
    assert result.value is None
    assert not result.drifted
    assert result.current_missing == len(current)
    # Untestable columns are left out of the share: 2 drifted of 3 tested.
    assert (report.n_tested, report.n_drifted) == (3, 2)
    assert report.share_drifted == pytest.approx(2 / 3)


def test_column_missing_from_current_is_named() -> None:
    reference, current = _frames()
    with pytest.raises(InvalidArgument, match="columns missing from current: shifted_cat"):
        dataset_drift(reference, current.drop(columns=["shifted_cat"]))


def test_bad_overrides_are_named() -> None:
    reference, current = _frames()
    with pytest.raises(InvalidArgument, match="not compared: nope"):
        dataset_drift(reference, current, stattests={"nope": "ks"})
    with pytest.raises(InvalidArgument, match="unknown column type 'text'"):
        dataset_drift(reference, current, column_types={"stable_cat": "text"})
    with pytest.raises(InvalidArgument, match="needs a numeric column"):
        dataset_drift(reference, current, stattests={"stable_cat": "ks"})
    with pytest.raises(InvalidArgument, match="drift_share"):
        dataset_drift(reference, current, drift_share=0)


def test_column_type_inference() -> None:
    frame = pd.DataFrame(
        {
            "flag": [True, False, True],
            "when": pd.date_range("2024-01-01", periods=3),
            "name": ["x", "y", "z"],
            "count": [1, 2, 3],
            "boxed_float": pd.Series([1.5, 2.5, None], dtype=object),
            "cat": pd.Categorical(["a", "b", "a"]),
        }
    )
    assert infer_column_types(frame, list(frame.columns)) == {
        "flag": "boolean",
        "when": "datetime",
        "name": "categorical",
        "count": "numeric",
        "boxed_float": "numeric",
        "cat": "categorical",
    }
    assert infer_column_type(pd.Series([1, None], dtype="Int64")) == "numeric"


def test_column_type_override_changes_the_default_test() -> None:
    rng = np.random.default_rng(1)
    reference = pd.DataFrame({"code": rng.integers(0, 10, 300)})
    current = pd.DataFrame({"code": rng.integers(0, 10, 300)})
    assert dataset_drift(reference, current).columns["code"].stattest == "ks"
    report = dataset_drift(reference, current, column_types={"code": "categorical"})
    assert report.columns["code"].column_type == "categorical"
    assert report.columns["code"].stattest == "chisquare"


def test_boolean_and_datetime_columns() -> None:
    rng = np.random.default_rng(2)
    start = pd.Timestamp("2024-01-01")
    reference = pd.DataFrame(
        {
            "flag": rng.random(400) < 0.3,
            "when": start + pd.to_timedelta(rng.integers(0, 10**6, 400), unit="s"),
        }
    )
    current = pd.DataFrame(
        {
            "flag": rng.random(400) < 0.6,
            "when": start + pd.to_timedelta(rng.integers(10**5, 11 * 10**5, 400), unit="s"),
        }
    )
    report = dataset_drift(reference, current)
    assert report.columns["flag"].stattest == "z"
    assert report.columns["flag"].drifted
    when = report.columns["when"]
    assert (when.column_type, when.stattest) == ("datetime", "ks")
    as_ns = [df["when"].to_numpy().astype(np.int64).astype(float) for df in (reference, current)]
    assert when.value == stats.ks_2samp(*as_ns).pvalue


def test_to_dict_json_round_trip() -> None:
    reference, current = _frames()
    current["stable_num"] = np.nan
    report = dataset_drift(reference, current, thresholds={"shifted_num": 0.01})
    as_dict = report.to_dict()
    assert json.loads(json.dumps(as_dict, allow_nan=False)) == as_dict
    assert as_dict["columns"]["shifted_num"]["threshold"] == 0.01
    assert as_dict["columns"]["stable_num"]["status"] == "not enough data"
    column = column_drift(reference["shifted_cat"], current["shifted_cat"]).to_dict()
    assert json.loads(json.dumps(column, allow_nan=False)) == column


def test_learn_threshold_distance_is_mean_plus_k_std() -> None:
    values = pd.Series(np.random.default_rng(3).normal(size=2000), name="x")
    chunk_scores = [
        stats.wasserstein_distance(values, values[i : i + 200]) / np.std(values)
        for i in range(0, 2000, 200)
    ]
    expected = np.mean(chunk_scores) + 2.0 * np.std(chunk_scores)
    learned = learn_threshold(values, "wasserstein", std_multiplier=2.0)
    assert learned == pytest.approx(expected, rel=1e-12)


def test_learn_threshold_p_value_is_floored_and_validated() -> None:
    values = pd.Series(np.random.default_rng(4).normal(size=500), name="x")
    learned = learn_threshold(values, "ks")
    assert 0 < learned < 0.05
    with pytest.raises(InvalidArgument, match="too few"):
        learn_threshold(values.iloc[:10], "ks")
    with pytest.raises(InvalidArgument, match="chunks"):
        learn_threshold(values, "ks", chunks=1)


def test_learned_thresholds_do_not_over_alert_on_large_samples() -> None:
    n = 200_000
    reference = pd.DataFrame({"x": np.random.default_rng(0).normal(0, 1, n)})
    tiny = pd.DataFrame({"x": np.random.default_rng(2).normal(0.01, 1, n)})
    real = pd.DataFrame({"x": np.random.default_rng(3).normal(0.5, 1, n)})
    ks_only = {"x": "ks"}
    wasserstein = {"x": "wasserstein"}

    # An irrelevant 0.01-sigma shift: KS at p < 0.05 alerts because n is large ...
    assert dataset_drift(reference, tiny, stattests=ks_only).columns["x"].drifted
    # ... while Wasserstein with a threshold learned from reference chunks does not.
    learned = dataset_drift(reference, tiny, stattests=wasserstein, thresholds="learned")
    result = learned.columns["x"]
    assert result.value is not None
    assert not result.drifted
    assert result.threshold < 0.1  # tighter than Evidently's fixed 0.1, yet quiet here

    # A real 0.5-sigma shift is flagged by both.
    assert dataset_drift(reference, real, stattests=ks_only).columns["x"].drifted
    learned = dataset_drift(reference, real, stattests=wasserstein, thresholds="learned")
    assert learned.columns["x"].drifted
    assert learned.dataset_drift


def test_learned_thresholds_with_default_tests() -> None:
    reference, current = _frames(n=3000)
    report = dataset_drift(reference, current, thresholds="learned")
    assert report.columns["stable_num"].stattest == "wasserstein"
    assert report.columns["stable_cat"].stattest == "jensenshannon"
    assert report.drifted_columns == ["shifted_num", "shifted_cat"]


def test_monitoring_public_names_are_pinned() -> None:
    import modelloop.monitoring as monitoring

    assert monitoring.__all__ == sorted(monitoring.__all__)
    assert set(monitoring.__all__) == {
        "APPROXIMATE_STATTESTS",
        "AlertChange",
        "CBPE",
        "CBPE_METRICS",
        "ColumnDrift",
        "ColumnQuality",
        "ColumnSummary",
        "ColumnType",
        "DEFAULT_RULES",
        "DataQuality",
        "DatasetDrift",
        "DeliveryResult",
        "Histogram",
        "MonitorConfig",
        "OpenAlert",
        "ReferenceProfile",
        "ReportData",
        "Rule",
        "RuleOutcome",
        "STATTESTS",
        "StatResult",
        "SummarySpec",
        "Transitions",
        "WebhookNotifier",
        "WindowSpec",
        "WindowSummary",
        "approximate_drift",
        "column_drift",
        "compare_frames",
        "data_quality",
        "dataset_drift",
        "default_test",
        "evaluate_rules",
        "event_message",
        "event_payload",
        "get_stattest",
        "histogram_pair",
        "infer_column_type",
        "infer_column_types",
        "learn_threshold",
        "load_rules",
        "log_alert_event",
        "parse_window",
        "realised_performance",
        "redacted_url",
        "render_json",
        "render_report_html",
        "transition",
    }  # fmt: skip
    for name in monitoring.__all__:
        assert hasattr(monitoring, name), name
