"""Alert rules (parsing, loading, evaluation) and alert state transitions."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from modelloop.errors import InvalidArgument, NotFound
from modelloop.monitoring.alerting import (
    AlertChange,
    OpenAlert,
    Transitions,
    event_message,
    event_payload,
    transition,
)
from modelloop.monitoring.rules import (
    DEFAULT_RULES,
    OPERATORS,
    Rule,
    RuleOutcome,
    evaluate_rules,
    load_rules,
)

WINDOW = {
    "rows": 5000,
    "dataset_drift_share": 0.4,
    "dataset_drift": 1.0,
    "drift_score[age]": 0.21,
    "missing_share[age]": 0.0,
    "missing_share[city]": 0.2,
    "missing_share[income]": 0.07,
    "accuracy": 0.91,
}


# -- parsing -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        (">", 0.5, True),
        (">", 0.3, False),
        (">=", 0.3, True),
        (">=", 0.2, False),
        ("<", 0.2, True),
        ("<", 0.3, False),
        ("<=", 0.3, True),
        ("<=", 0.4, False),
        ("==", 0.3, True),
        ("==", 0.31, False),
        ("!=", 0.31, True),
        ("!=", 0.3, False),
    ],
)
def test_every_operator_parses_and_compares(op: str, value: float, expected: bool) -> None:
    rule = Rule.parse(f"accuracy {op} 0.3")
    assert rule.op == op
    assert rule.threshold == 0.3
    assert rule.holds(value) is expected
    (outcome,) = evaluate_rules([rule], {"accuracy": value})
    assert outcome.holds is expected
    assert outcome.value == value


def test_operators_cover_six_comparisons() -> None:
    assert sorted(OPERATORS) == sorted([">", ">=", "<", "<=", "==", "!="])


def test_parse_reads_metric_column_and_defaults() -> None:
    rule = Rule.parse("missing_share[age]>0.05")
    assert (rule.metric, rule.column, rule.op, rule.threshold) == (
        "missing_share",
        "age",
        ">",
        0.05,
    )
    assert rule.severity == "warning"
    assert rule.for_windows == 1
    # The default name is the normalised expression, spacing included.
    assert rule.name == "missing_share[age] > 0.05"
    assert rule.expression == "missing_share[age] > 0.05"


def test_parse_keeps_given_name_severity_and_for_windows() -> None:
    rule = Rule.parse(
        "  dataset_drift_share >=  1e-1 ", severity="Critical", name=" drift ", for_windows=3
    )
    assert rule.name == "drift"
    assert rule.severity == "critical"
    assert rule.for_windows == 3
    assert rule.threshold == 0.1
    assert rule.column is None
    assert rule.expression == "dataset_drift_share >= 0.1"


def test_column_names_with_spaces_and_brackets() -> None:
    assert Rule.parse("missing_share[first name] > 0.1").column == "first name"
    assert Rule.parse("missing_share[a]b] > 0.1").column == "a]b"
    assert Rule.parse("missing_share[a > b] <= 2").column == "a > b"


def test_integer_thresholds_print_without_decimal() -> None:
    assert Rule.parse("rows < 100.0").expression == "rows < 100"
    assert Rule.parse("rows < 100").threshold == 100.0


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("accuracy => 0.8", "not of the form"),
        ("accuracy <>0.8", "'>0.8' is not a number"),
        ("accuracy ~ 0.8", "not of the form"),
        ("accuracy 0.8", "not of the form"),
        ("accuracy >", "not of the form"),
        ("> 0.8", "not of the form"),
        ("accuracy > high", "'high' is not a number"),
        ("accuracy > 0.8 0.9", "not of the form"),
        ("accuracy > nan", "finite"),
        ("accuracy > inf", "finite"),
        ("missing_share[] > 0.1", "not of the form"),
        ("9lives > 1", "not of the form"),
        ("", "not of the form"),
    ],
)
def test_bad_expressions_are_refused_with_the_problem(text: str, problem: str) -> None:
    with pytest.raises(InvalidArgument, match="rule") as info:
        Rule.parse(text)
    assert problem in info.value.message


def test_bad_severity_and_for_windows_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="unknown severity 'severe'"):
        Rule.parse("accuracy < 0.8", severity="severe")
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(InvalidArgument, match="for_windows"):
            Rule.parse("accuracy < 0.8", for_windows=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="string"):
        Rule.parse(0.8)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="name"):
        Rule.parse("accuracy < 0.8", name="  ")


def test_constructor_validates_like_parse() -> None:
    with pytest.raises(InvalidArgument, match="operator '=>'"):
        Rule(name="x", metric="accuracy", column=None, op="=>", threshold=0.8)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="metric"):
        Rule(name="x", metric="acc uracy", column=None, op="<", threshold=0.8)


def test_to_dict_round_trips_through_json() -> None:
    for rule in (
        Rule.parse("missing_share[*] > 0.05", severity="critical", name="missing", for_windows=2),
        Rule.parse("accuracy <= 0.8"),
        Rule.parse("drift_score[a]b] != 3"),
    ):
        stored = json.loads(json.dumps(rule.to_dict()))
        assert stored["rule"] == rule.expression
        assert Rule.from_dict(stored) == rule


def test_from_dict_structured_form_and_disagreement() -> None:
    rule = Rule.from_dict({"metric": "missing_share", "column": "age", "op": ">", "threshold": 1})
    assert rule.expression == "missing_share[age] > 1"
    assert rule.name == "missing_share[age] > 1"
    with pytest.raises(InvalidArgument, match=r"threshold 0\.2 disagrees"):
        Rule.from_dict({"rule": "accuracy < 0.8", "threshold": 0.2})
    with pytest.raises(InvalidArgument, match="needs 'rule'"):
        Rule.from_dict({"metric": "accuracy", "op": "<"})
    with pytest.raises(InvalidArgument, match="unknown key"):
        Rule.from_dict({"rule": "accuracy < 0.8", "sevrity": "info"})


# -- loading -----------------------------------------------------------------------

RULES_YAML = """\
rules:
  - rule: dataset_drift_share > 0.3
    severity: critical
  - rule: missing_share[*] > 0.05      # wildcard: one alert key per matching column
    severity: warning
    name: missing values
  - accuracy < 0.8
  - rule: f1 < 0.7
    for_windows: 2
"""


def test_load_rules_from_file_text_and_list(tmp_path: Path) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text(RULES_YAML, encoding="utf-8")
    from_path = load_rules(path)
    assert [r.name for r in from_path] == [
        "dataset_drift_share > 0.3",
        "missing values",
        "accuracy < 0.8",
        "f1 < 0.7",
    ]
    assert [r.severity for r in from_path] == ["critical", "warning", "warning", "warning"]
    assert from_path[1].column == "*"
    assert from_path[3].for_windows == 2
    assert load_rules(str(path)) == from_path
    assert load_rules(RULES_YAML) == from_path
    as_list = load_rules(
        [
            {"rule": "dataset_drift_share > 0.3", "severity": "critical"},
            {"rule": "missing_share[*] > 0.05", "name": "missing values"},
            "accuracy < 0.8",
            {"rule": "f1 < 0.7", "for_windows": 2},
        ]
    )
    assert as_list == from_path
    assert load_rules([r.to_dict() for r in from_path]) == from_path
    assert load_rules("accuracy < 0.8") == [Rule.parse("accuracy < 0.8")]
    assert load_rules("rules: []") == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "rules:\n  - rule: accuracy < 0.8\n    colour: red\n",
            "rule #1: rule 'accuracy < 0.8': unknown key(s) colour",
        ),
        ("rules:\n  - a > 1\n  - rule: accuracy =< 0.8\n", "rule #2"),
        ("rules:\n  - rule: accuracy < lots\n", "threshold 'lots' is not a number"),
        ("rules:\n  - rule: accuracy < 0.8\n    severity: page\n", "unknown severity 'page'"),
        ("rules:\n  - rule: accuracy < 0.8\n    for_windows: 0\n", "for_windows"),
        ("rules:\n  - 42\n", "rule #1: expected a string or a mapping"),
        ("rules: {a: 1}\n", "'rules' must be a list"),
        ("rule:\n  - accuracy < 0.8\n", "unknown top-level key(s) rule"),
        ("rules: [\n", "not valid YAML"),
        ("rules:\n  - accuracy < 0.8\n  - accuracy < 0.8\n", "two rules are named"),
        (
            "rules:\n  - rule: accuracy < 0.8\n    name: a\n"
            "  - rule: accuracy < 0.8\n    name: b\n",
            "test the same metric the same way",
        ),
        ("rules:\n  - missing_share[*] > 0.1\n  - missing_share[age] > 0.1\n", "same way"),
    ],
)
def test_load_rules_is_strict(text: str, problem: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        load_rules(text)
    assert problem in info.value.message


def test_load_rules_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r"nope\.yaml"):
        load_rules(tmp_path / "nope.yaml")
    with pytest.raises(NotFound, match=r"nope\.yml"):
        load_rules(str(tmp_path / "nope.yml"))


def test_distinct_thresholds_on_one_metric_are_allowed() -> None:
    rules = load_rules(["accuracy < 0.8", {"rule": "accuracy < 0.6", "severity": "critical"}])
    outcomes = evaluate_rules(rules, {"accuracy": 0.7})
    assert [(o.key, o.holds) for o in outcomes] == [
        ("accuracy < 0.8", True),
        ("accuracy < 0.6", False),
    ]


def test_default_rules_are_valid_and_distinct() -> None:
    assert load_rules(list(DEFAULT_RULES)) == list(DEFAULT_RULES)
    outcomes = evaluate_rules(DEFAULT_RULES, {"dataset_drift_share": 0.5})
    assert [o.holds for o in outcomes] == [True, None]


# -- evaluation --------------------------------------------------------------------


def test_evaluate_expands_wildcards_per_column_in_order() -> None:
    rule = Rule.parse("missing_share[*] > 0.05", name="missing values")
    outcomes = evaluate_rules([rule], WINDOW)
    assert [(o.key, o.column, o.value, o.holds) for o in outcomes] == [
        ("missing_share[age] > 0.05", "age", 0.0, False),
        ("missing_share[city] > 0.05", "city", 0.2, True),
        ("missing_share[income] > 0.05", "income", 0.07, True),
    ]
    assert all(o.rule is rule for o in outcomes)
    assert all(rule.owns_key(o.key) for o in outcomes)
    assert not rule.owns_key("missing_share[age] > 0.5")
    assert not rule.owns_key("drift_score[age] > 0.05")


def test_evaluate_plain_and_column_rules() -> None:
    rules = load_rules(["dataset_drift_share > 0.3", "missing_share[city] >= 0.2", "rows < 1000"])
    outcomes = evaluate_rules(rules, WINDOW)
    assert [(o.key, o.column, o.value, o.holds) for o in outcomes] == [
        ("dataset_drift_share > 0.3", None, 0.4, True),
        ("missing_share[city] >= 0.2", "city", 0.2, True),
        ("rows < 1000", None, 5000.0, False),
    ]


def test_absent_or_nan_metric_is_no_data() -> None:
    rules = load_rules(["accuracy < 0.8", "f1 < 0.5", "new_category_share[*] > 0.1"])
    outcomes = evaluate_rules(rules, {"accuracy": math.nan, "rows": 10})
    assert [(o.key, o.value, o.holds) for o in outcomes] == [
        ("accuracy < 0.8", None, None),
        ("f1 < 0.5", None, None),
        # A wildcard matching no column still says "no data" once.
        ("new_category_share[*] > 0.1", None, None),
    ]
    (nan_column,) = evaluate_rules(rules[2:], {"new_category_share[city]": math.nan})
    assert (nan_column.key, nan_column.holds) == ("new_category_share[city] > 0.1", None)
    # A metric without column does not satisfy a rule on a column, and vice versa.
    assert evaluate_rules(load_rules(["drift_score > 0.1"]), WINDOW)[0].holds is None


def test_evaluate_refuses_bad_metrics_and_colliding_rules() -> None:
    with pytest.raises(InvalidArgument, match="'accuracy' has a non-numeric value 'high'"):
        evaluate_rules([Rule.parse("accuracy < 0.8")], {"accuracy": "high"})
    with pytest.raises(InvalidArgument, match="mapping"):
        evaluate_rules([Rule.parse("accuracy < 0.8")], [("accuracy", 0.5)])  # type: ignore[arg-type]
    wildcard = Rule.parse("missing_share[*] > 0.1")
    single = Rule.parse("missing_share[city] > 0.1", name="city")
    with pytest.raises(InvalidArgument, match=r"both test 'missing_share\[city\] > 0\.1'"):
        evaluate_rules([wildcard, single], WINDOW)


# -- transitions -------------------------------------------------------------------


class Store:
    """What a caller keeps between windows: open alerts, streaks and every event."""

    def __init__(self) -> None:
        self.open: dict[str, OpenAlert] = {}
        self.streaks: dict[str, int] = {}
        self.events: list[AlertChange] = []
        self.next_id = 1

    def window(self, rules: list[Rule], metrics: dict[str, float], end_ms: int) -> Transitions:
        result = transition(
            self.open, evaluate_rules(rules, metrics), end_ms + 5, end_ms, streaks=self.streaks
        )
        for change in result.fired:
            self.open[change.key] = OpenAlert(
                change.key,
                change.rule_name,
                change.severity,
                change.fired_ms,
                change.value,
                alert_id=str(self.next_id),
            )
            self.next_id += 1
        for change in result.still_firing:
            old = self.open[change.key]
            self.open[change.key] = OpenAlert(
                old.key, change.rule_name, change.severity, old.fired_ms, change.value, old.alert_id
            )
        for change in result.resolved:
            del self.open[change.key]
        self.streaks = dict(result.streaks)
        self.events.extend(result.events)
        return result


def test_alert_fires_once_while_holding_then_resolves_then_fires_again() -> None:
    rules = load_rules([{"rule": "dataset_drift_share > 0.3", "severity": "critical"}])
    store = Store()
    shares = [0.1, 0.4, 0.5, 0.6, 0.2, 0.25, 0.35]
    results = [
        store.window(rules, {"dataset_drift_share": s}, 1000 * i) for i, s in enumerate(shares)
    ]
    assert [(len(r.fired), len(r.still_firing), len(r.resolved)) for r in results] == [
        (0, 0, 0),
        (1, 0, 0),
        (0, 1, 0),
        (0, 1, 0),
        (0, 0, 1),
        (0, 0, 0),
        (1, 0, 0),
    ]
    assert [(e.state, e.alert_id, e.value) for e in store.events] == [
        ("firing", None, 0.4),
        ("resolved", "1", 0.2),
        ("firing", None, 0.35),
    ]
    first_fire, resolution, second_fire = store.events
    assert first_fire.fired_ms == 1005 and first_fire.window_end_ms == 1000
    assert resolution.fired_ms == 1005 and resolution.resolved_ms == 4005
    assert resolution.reason == "condition cleared"
    assert second_fire.fired_ms == 6005 and second_fire.resolved_ms is None
    # Still-firing changes carry the latest value so the caller can update it.
    assert [c.value for c in results[3].still_firing] == [0.6]
    assert store.open["dataset_drift_share > 0.3"].alert_id == "2"


def test_no_data_windows_change_nothing() -> None:
    rules = load_rules(["accuracy < 0.8", "missing_share[*] > 0.05"])
    store = Store()
    store.window(rules, {"accuracy": 0.7, "missing_share[age]": 0.1}, 0)
    assert sorted(store.open) == ["accuracy < 0.8", "missing_share[age] > 0.05"]
    no_data: list[dict[str, float]] = [
        {},
        {"accuracy": math.nan},
        {"missing_share[city]": 0.0},
        {"rows": 3},
    ]
    for end, metrics in enumerate(no_data, start=1):
        result = store.window(rules, metrics, end)
        assert result.fired == [] and result.resolved == [] and result.still_firing == []
    assert sorted(store.open) == ["accuracy < 0.8", "missing_share[age] > 0.05"]
    result = store.window(rules, {"accuracy": 0.9, "missing_share[age]": 0.1}, 9)
    assert [c.key for c in result.resolved] == ["accuracy < 0.8"]
    assert [c.key for c in result.still_firing] == ["missing_share[age] > 0.05"]


def test_wildcard_columns_fire_and_resolve_independently() -> None:
    rules = load_rules([{"rule": "missing_share[*] > 0.05", "name": "missing values"}])
    store = Store()
    first = store.window(rules, {"missing_share[age]": 0.1, "missing_share[city]": 0.0}, 0)
    second = store.window(rules, {"missing_share[age]": 0.1, "missing_share[city]": 0.2}, 1)
    third = store.window(rules, {"missing_share[age]": 0.0, "missing_share[city]": 0.3}, 2)
    assert [(c.column, c.rule_name) for c in first.fired] == [("age", "missing values")]
    assert [c.column for c in second.fired] == ["city"]
    assert [c.column for c in second.still_firing] == ["age"]
    assert [c.column for c in third.resolved] == ["age"]
    assert sorted(store.open) == ["missing_share[city] > 0.05"]


def test_for_windows_needs_consecutive_windows_with_data() -> None:
    rules = load_rules([{"rule": "accuracy < 0.8", "for_windows": 3}])
    store = Store()
    values: list[float] = [0.7, 0.7, 0.9, 0.7, math.nan, 0.7, 0.7, 0.7]
    fired_at = []
    streaks = []
    for end, value in enumerate(values):
        result = store.window(rules, {"accuracy": value}, end)
        fired_at += [end for _ in result.fired]
        streaks.append(result.streaks.get("accuracy < 0.8", 0))
    # 0.9 breaks the streak; the NaN window neither breaks nor extends it.
    assert streaks == [1, 2, 0, 1, 1, 2, 0, 0]
    assert fired_at == [6]
    assert len(store.events) == 1


def test_streak_of_an_absent_wildcard_column_is_kept() -> None:
    rule = Rule.parse("missing_share[*] > 0.05", for_windows=2)
    outcomes = evaluate_rules([rule], {"missing_share[city]": 0.0})
    result = transition(
        {}, outcomes, 10, 10, streaks={"missing_share[age] > 0.05": 1, "gone > 1": 4}
    )
    assert result.streaks == {"missing_share[age] > 0.05": 1}


def test_alert_of_a_removed_rule_is_resolved() -> None:
    old = OpenAlert("missing_share[age] > 0.05", "missing values", "critical", 100, 0.2, alert_id=7)
    rules = load_rules(["missing_share[*] > 0.1"])
    outcomes = evaluate_rules(rules, {"missing_share[age]": 0.2})
    result = transition({old.key: old}, outcomes, 500, 400)
    assert [c.key for c in result.fired] == ["missing_share[age] > 0.1"]
    (gone,) = result.resolved
    assert (gone.key, gone.alert_id, gone.reason, gone.severity) == (
        old.key,
        7,
        "rule removed",
        "critical",
    )
    assert (gone.metric, gone.column, gone.op, gone.threshold) == (
        "missing_share",
        "age",
        ">",
        0.05,
    )
    assert (gone.fired_ms, gone.resolved_ms, gone.value) == (100, 500, None)
    kept = transition({old.key: old}, outcomes, 500, 400, resolve_orphans=False)
    assert kept.resolved == []


def test_resolution_keeps_the_severity_it_fired_with() -> None:
    alert = OpenAlert("accuracy < 0.8", "acc", "info", 1, 0.7, alert_id="a")
    rule = Rule.parse("accuracy < 0.8", severity="critical", name="accuracy low")
    still = transition({alert.key: alert}, evaluate_rules([rule], {"accuracy": 0.5}), 2, 2)
    assert [(c.rule_name, c.severity, c.alert_id) for c in still.still_firing] == [
        ("accuracy low", "critical", "a")
    ]
    done = transition({alert.key: alert}, evaluate_rules([rule], {"accuracy": 0.95}), 3, 3)
    assert [(c.rule_name, c.severity, c.value) for c in done.resolved] == [("acc", "info", 0.95)]


def test_transition_refuses_inconsistent_input() -> None:
    alert = OpenAlert("accuracy < 0.8", "acc", "info", 1)
    outcomes = evaluate_rules([Rule.parse("accuracy < 0.8")], {"accuracy": 0.5})
    with pytest.raises(InvalidArgument, match="OpenAlert with that key"):
        transition({"other": alert}, outcomes, 1, 1)
    with pytest.raises(InvalidArgument, match="two outcomes"):
        transition({}, outcomes + outcomes, 1, 1)
    with pytest.raises(InvalidArgument, match="now_ms"):
        transition({}, outcomes, 1.5, 1)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="streak"):
        transition({}, outcomes, 1, 1, streaks={"accuracy < 0.8": -1})
    with pytest.raises(InvalidArgument, match="not a rule expression"):
        transition({"weird": OpenAlert("weird", "w", "info", 1)}, [], 1, 1)
    with pytest.raises(InvalidArgument, match="RuleOutcome"):
        transition({}, ["accuracy < 0.8"], 1, 1)  # type: ignore[list-item]


# -- event payloads ----------------------------------------------------------------


def test_event_payload_is_json_with_iso_times() -> None:
    rule = Rule.parse("missing_share[age] > 0.05", severity="critical", name="missing")
    outcome = RuleOutcome(rule, rule.expression, "age", 0.125, True)
    (fired,) = transition({}, [outcome], 1_700_000_000_123, 1_700_000_000_000).fired
    payload = event_payload(
        fired,
        monitor="churn",
        deployment="churn-prod",
        alert_id=42,
        window=(1_699_999_000_000, 1_700_000_000_000),
    )
    assert json.loads(json.dumps(payload, allow_nan=False)) == payload
    assert payload["id"] == 42
    assert payload["state"] == "firing"
    assert (payload["rule"], payload["severity"], payload["expression"]) == (
        "missing",
        "critical",
        "missing_share[age] > 0.05",
    )
    assert (payload["metric"], payload["column"], payload["value"], payload["threshold"]) == (
        "missing_share",
        "age",
        0.125,
        0.05,
    )
    assert payload["fired_at"] == "2023-11-14T22:13:20.123+00:00"
    assert payload["window_start"] == "2023-11-14T21:56:40.000+00:00"
    assert payload["window_end_ms"] == 1_700_000_000_000
    assert payload["resolved_at"] is None
    assert payload["summary"] == event_message(payload)
    assert payload["summary"] == (
        "FIRING critical alert 'missing' on monitor churn (deployment churn-prod): "
        "missing_share[age] = 0.125 > 0.05 [alert 42]"
    )


def test_resolved_payload_and_one_line_message() -> None:
    rule = Rule.parse("missing_share[*] > 0.05")
    open_alert = OpenAlert("missing_share[a\nb] > 0.05", rule.name, "warning", 1000, 0.2, "x9")
    outcomes = evaluate_rules([rule], {"missing_share[a\nb]": 0.01})
    (resolved,) = transition({open_alert.key: open_alert}, outcomes, 5000, 4000).resolved
    payload = event_payload(resolved, monitor="m")
    assert payload["id"] == "x9"
    assert payload["state"] == "resolved"
    assert payload["resolved_at"] == "1970-01-01T00:00:05.000+00:00"
    assert payload["window_start_ms"] is None and payload["deployment"] is None
    assert "\n" not in payload["summary"]
    assert "no longer > 0.05" in payload["summary"]
    assert payload["summary"].startswith("RESOLVED warning alert")


def test_infinite_value_is_null_in_json_and_bad_arguments_are_refused() -> None:
    rule = Rule.parse("rows > 10")
    (fired,) = transition(
        {}, [RuleOutcome(rule, rule.key_for(None), None, math.inf, True)], 1, 1
    ).fired
    payload = event_payload(fired, monitor="m")
    assert payload["value"] is None
    json.dumps(payload, allow_nan=False)
    with pytest.raises(InvalidArgument, match="monitor"):
        event_payload(fired, monitor="")
    with pytest.raises(InvalidArgument, match="window"):
        event_payload(fired, monitor="m", window=(5, 1))


def test_open_alert_severity_from_storage_is_checked() -> None:
    assert OpenAlert("accuracy < 0.8", "acc", "Critical", 1).severity == "critical"
    with pytest.raises(InvalidArgument, match="unknown severity 'urgent'"):
        OpenAlert("accuracy < 0.8", "acc", "urgent", 1)


def test_the_same_rule_twice_is_refused() -> None:
    rule = Rule.parse("accuracy < 0.8")
    with pytest.raises(InvalidArgument, match=r"both test 'accuracy < 0\.8'"):
        evaluate_rules([rule, rule], {"accuracy": 0.5})


def test_event_message_of_a_partial_payload() -> None:
    message = event_message({"state": "firing", "rule": "r", "monitor": "m", "metric": "x"})
    assert message.startswith("FIRING None alert 'r' on monitor m: x = no value")
