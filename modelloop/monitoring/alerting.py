"""Alert state transitions: given what is firing now and a window's rule outcomes,
what fires, what resolves and what keeps firing. Pure functions, no I/O: the
caller loads the open alerts and streaks of a monitor, calls :func:`transition`,
stores the result and delivers :func:`event_payload` for each fired/resolved
change.

What the caller must store per monitor:

* every open (firing) alert as an :class:`OpenAlert` (its key is unique among a
  monitor's open alerts; ``alert_id`` is the caller's stored-event id);
* :attr:`Transitions.streaks`, a small ``{alert key: count}`` mapping, only needed
  when a rule has ``for_windows > 1``: how many consecutive windows with data the
  condition has held without the alert firing yet. It replaces the stored one
  after each window (keys absent from it have a streak of 0).

Semantics per alert key, for one window:

=============  =================  ===========================================
outcome        alert open         result
=============  =================  ===========================================
holds          no                 streak + 1; fired when it reaches for_windows
holds          yes                still firing (deduplicated: no new event)
does not hold  yes                resolved (and the streak is reset)
does not hold  no                 streak reset
no data        either             nothing changes, the streak is kept
=============  =================  ===========================================

An open alert no rule produces any more (the rule was deleted or its threshold
changed) is resolved with reason ``"rule removed"`` unless ``resolve_orphans`` is
off; one whose rule remains but whose column is absent from the window is a
no-data case and stays open.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from modelloop.errors import InvalidArgument
from modelloop.monitoring.rules import Operator, Rule, RuleOutcome, Severity, check_severity

__all__ = [
    "AlertChange",
    "AlertState",
    "OpenAlert",
    "Transitions",
    "event_message",
    "event_payload",
    "transition",
]

AlertState = Literal["firing", "resolved"]

REASON_HOLDS = "condition holds"
REASON_CLEARED = "condition cleared"
REASON_RULE_REMOVED = "rule removed"


@dataclass(frozen=True, slots=True)
class OpenAlert:
    """An alert the caller has stored as firing for one monitor.

    ``value`` is the last value seen while firing; ``alert_id`` is the caller's id
    for the stored alert event (carried into the changes for it).
    """

    key: str
    rule_name: str
    severity: str
    fired_ms: int
    value: float | None = None
    alert_id: str | int | None = None

    def __post_init__(self) -> None:
        # Severity comes back from the database as a plain string: check it once here.
        object.__setattr__(self, "severity", check_severity(self.severity, f"alert {self.key!r}"))


@dataclass(frozen=True, slots=True)
class AlertChange:
    """What happened to one alert key in one window.

    For a newly fired or still firing alert, ``rule_name`` and ``severity`` come from
    the current rule (a still-firing change lets the caller update a renamed rule);
    for a resolved one they are those the alert fired with, so the resolution reads
    like the notification it closes. ``value`` is the metric in this window
    (``None`` for a rule removed).
    """

    key: str
    state: AlertState
    rule_name: str
    severity: Severity
    metric: str
    column: str | None
    op: Operator
    threshold: float
    value: float | None
    fired_ms: int
    resolved_ms: int | None
    window_end_ms: int
    reason: str
    alert_id: str | int | None = None


@dataclass(frozen=True, slots=True)
class Transitions:
    """The result of one window: new events (``fired``, ``resolved``), alerts that
    stay open (``still_firing``, no event) and the streaks to store."""

    fired: list[AlertChange] = field(default_factory=list)
    resolved: list[AlertChange] = field(default_factory=list)
    still_firing: list[AlertChange] = field(default_factory=list)
    streaks: dict[str, int] = field(default_factory=dict)

    @property
    def events(self) -> list[AlertChange]:
        """The changes to store and deliver: fired then resolved."""
        return [*self.fired, *self.resolved]


def _check_ms(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{name} must be an integer (milliseconds), got {value!r}")
    return value


def _change(
    outcome: RuleOutcome,
    state: AlertState,
    *,
    fired_ms: int,
    resolved_ms: int | None,
    window_end_ms: int,
    reason: str,
    open_alert: OpenAlert | None,
) -> AlertChange:
    rule = outcome.rule
    rule_name, severity = rule.name, rule.severity
    if state == "resolved" and open_alert is not None:
        rule_name, severity = open_alert.rule_name, check_severity(open_alert.severity)
    return AlertChange(
        key=outcome.key,
        state=state,
        rule_name=rule_name,
        severity=severity,
        metric=rule.metric,
        column=outcome.column,
        op=rule.op,
        threshold=rule.threshold,
        value=outcome.value,
        fired_ms=fired_ms,
        resolved_ms=resolved_ms,
        window_end_ms=window_end_ms,
        reason=reason,
        alert_id=None if open_alert is None else open_alert.alert_id,
    )


def _orphan_change(alert: OpenAlert, now_ms: int, window_end_ms: int) -> AlertChange:
    try:
        # Keys are rule expressions with the column filled in, so the removed
        # rule's metric, column and threshold can be read back from the key.
        rule = Rule.parse(alert.key, severity=alert.severity, name=alert.rule_name)
    except InvalidArgument:
        raise InvalidArgument(
            f"open alert key {alert.key!r} is not a rule expression like 'metric[column] > 1'"
        ) from None
    return AlertChange(
        key=alert.key,
        state="resolved",
        rule_name=alert.rule_name,
        severity=rule.severity,
        metric=rule.metric,
        column=rule.column,
        op=rule.op,
        threshold=rule.threshold,
        value=None,
        fired_ms=alert.fired_ms,
        resolved_ms=now_ms,
        window_end_ms=window_end_ms,
        reason=REASON_RULE_REMOVED,
        alert_id=alert.alert_id,
    )


def transition(
    open_alerts: Mapping[str, OpenAlert],
    outcomes: Sequence[RuleOutcome],
    now_ms: int,
    window_end_ms: int,
    *,
    streaks: Mapping[str, int] | None = None,
    resolve_orphans: bool = True,
) -> Transitions:
    """Apply one window's ``outcomes`` (from ``evaluate_rules`` over the monitor's
    whole rule set) to the monitor's ``open_alerts`` (keyed by alert key).

    ``now_ms`` stamps fired/resolved times; ``window_end_ms`` says which window
    caused the change. ``streaks`` is the mapping the previous call returned (only
    matters for rules with ``for_windows > 1``). See the module docstring for the
    rules of the game.
    """
    now_ms = _check_ms(now_ms, "now_ms")
    window_end_ms = _check_ms(window_end_ms, "window_end_ms")
    for key, given in open_alerts.items():
        if not isinstance(given, OpenAlert) or given.key != key:
            raise InvalidArgument(f"open_alerts[{key!r}] must be an OpenAlert with that key")
    previous: dict[str, int] = {}
    for key, count in (streaks or {}).items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise InvalidArgument(f"streak of {key!r} must be an integer >= 0, got {count!r}")
        previous[key] = count

    result = Transitions()
    seen: set[str] = set()
    for outcome in outcomes:
        if not isinstance(outcome, RuleOutcome):
            raise InvalidArgument(f"expected a RuleOutcome, got {outcome!r}")
        if outcome.key in seen:
            raise InvalidArgument(f"two outcomes for the alert key {outcome.key!r}")
        seen.add(outcome.key)
        alert = open_alerts.get(outcome.key)
        if outcome.holds is None:
            if alert is None and previous.get(outcome.key):
                result.streaks[outcome.key] = previous[outcome.key]
        elif outcome.holds and alert is not None:
            result.still_firing.append(
                _change(
                    outcome,
                    "firing",
                    fired_ms=alert.fired_ms,
                    resolved_ms=None,
                    window_end_ms=window_end_ms,
                    reason=REASON_HOLDS,
                    open_alert=alert,
                )
            )
        elif outcome.holds:
            count = previous.get(outcome.key, 0) + 1
            if count >= outcome.rule.for_windows:
                result.fired.append(
                    _change(
                        outcome,
                        "firing",
                        fired_ms=now_ms,
                        resolved_ms=None,
                        window_end_ms=window_end_ms,
                        reason=REASON_HOLDS,
                        open_alert=None,
                    )
                )
            else:
                result.streaks[outcome.key] = count
        elif alert is not None:
            result.resolved.append(
                _change(
                    outcome,
                    "resolved",
                    fired_ms=alert.fired_ms,
                    resolved_ms=now_ms,
                    window_end_ms=window_end_ms,
                    reason=REASON_CLEARED,
                    open_alert=alert,
                )
            )

    rules = {id(o.rule): o.rule for o in outcomes}.values()
    for key, open_alert in open_alerts.items():
        if key in seen or any(rule.owns_key(key) for rule in rules):
            continue
        if resolve_orphans:
            result.resolved.append(_orphan_change(open_alert, now_ms, window_end_ms))
    for key, count in previous.items():
        # A wildcard column absent from this window is "no data": keep its streak.
        if count and key not in seen and any(rule.owns_key(key) for rule in rules):
            result.streaks[key] = count
    return result


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def _json_number(value: float | None) -> float | None:
    # JSON has no NaN/Infinity; an infinite metric still fired, the expression says why.
    return value if value is not None and math.isfinite(value) else None


def _oneline(text: str) -> str:
    # Column and monitor names are user data: keep log lines one line each.
    return text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text


def _number(value: Any, precision: int = 6) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:.{precision}g}"
    return "no value" if value is None else _oneline(str(value))


def event_message(payload: Mapping[str, Any]) -> str:
    """The one-line summary of an event payload (as built by :func:`event_payload`)."""
    state = str(payload.get("state", "")).upper()
    target = (
        f"'{_oneline(str(payload.get('rule')))}' on monitor {_oneline(str(payload.get('monitor')))}"
    )
    if payload.get("deployment") is not None:
        target += f" (deployment {_oneline(str(payload['deployment']))})"
    metric = str(payload.get("metric"))
    if payload.get("column") is not None:
        metric += f"[{payload['column']}]"
    metric = _oneline(metric)
    comparison = f"{payload.get('op')} {_number(payload.get('threshold'), 15)}"
    if payload.get("reason") == REASON_RULE_REMOVED:
        detail = f"{metric} {comparison}: rule removed"
    elif payload.get("state") == "resolved":
        detail = f"{metric} = {_number(payload.get('value'))}, no longer {comparison}"
    else:
        detail = f"{metric} = {_number(payload.get('value'))} {comparison}"
    ident = "" if payload.get("id") is None else f" [alert {_oneline(str(payload['id']))}]"
    return f"{state} {payload.get('severity')} alert {target}: {detail}{ident}"


def event_payload(
    change: AlertChange,
    *,
    monitor: str,
    deployment: str | None = None,
    alert_id: str | int | None = None,
    window: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """The JSON-able body of an alert event, for the webhook, the log and storage.

    ``alert_id`` defaults to the change's; ``window`` is ``(start_ms, end_ms)`` of
    the window that caused the change (only its end is known otherwise). Times
    come both as epoch milliseconds and as ISO-8601 UTC strings; ``summary`` is
    the one-line message of :func:`event_message`.
    """
    if not isinstance(change, AlertChange):
        raise InvalidArgument(f"expected an AlertChange, got {change!r}")
    if not isinstance(monitor, str) or not monitor:
        raise InvalidArgument(f"monitor must be a non-empty string, got {monitor!r}")
    start_ms: int | None = None
    end_ms = change.window_end_ms
    if window is not None:
        if (
            not isinstance(window, tuple)
            or len(window) != 2
            or not all(isinstance(t, int) and not isinstance(t, bool) for t in window)
            or window[0] > window[1]
        ):
            raise InvalidArgument(
                f"window must be (start_ms, end_ms) with start <= end: {window!r}"
            )
        start_ms, end_ms = window
    payload: dict[str, Any] = {
        "id": change.alert_id if alert_id is None else alert_id,
        "state": change.state,
        "rule": change.rule_name,
        "expression": change.key,
        "severity": change.severity,
        "metric": change.metric,
        "column": change.column,
        "op": change.op,
        "threshold": change.threshold,
        "value": _json_number(change.value),
        "reason": change.reason,
        "monitor": monitor,
        "deployment": deployment,
        "window_start_ms": start_ms,
        "window_end_ms": end_ms,
        "window_start": _iso(start_ms),
        "window_end": _iso(end_ms),
        "fired_ms": change.fired_ms,
        "fired_at": _iso(change.fired_ms),
        "resolved_ms": change.resolved_ms,
        "resolved_at": _iso(change.resolved_ms),
    }
    payload["summary"] = event_message(payload)
    return payload
