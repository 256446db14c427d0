"""Running a monitor: score each new window of a deployment's prediction logs once,
store its metrics and summary, and raise, keep or resolve alerts.

Per window: data drift of the model inputs against the reference (the reference is
fitted once per run and reused for every window), prediction drift of the outputs
against the model's own predictions on the reference, data quality (missing values,
unseen categories, out-of-range values, signature violations), performance on the
rows whose ground truth has arrived, and a mergeable column summary for reports.
The window, its metrics, the reader's new position and the alert changes are
stored in one transaction; the alert events are then delivered to the webhook.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from modelloop.entities import AlertEvent, AlertUpdate, Monitor, NewAlert, WindowRecord
from modelloop.errors import InvalidArgument
from modelloop.monitoring.alerting import OpenAlert, event_payload, transition
from modelloop.monitoring.config import MonitorConfig, resolve_webhook
from modelloop.monitoring.drift import dataset_drift
from modelloop.monitoring.performance import realised_performance
from modelloop.monitoring.profile import ReferenceProfile
from modelloop.monitoring.quality import data_quality
from modelloop.monitoring.rules import Rule, evaluate_rules
from modelloop.monitoring.served import ServedModels
from modelloop.monitoring.summary import SummarySpec
from modelloop.monitoring.webhook import WebhookNotifier, log_alert_event
from modelloop.monitoring.windows import LogWindow, WindowReader, split_log_frame
from modelloop.serving.prediction_log import read_feedback

if TYPE_CHECKING:
    from modelloop.tracking.client import Client

__all__ = [
    "LabelResult",
    "MonitorRun",
    "WindowResult",
    "deliver_pending",
    "predictions_uri",
    "run_monitor",
    "monitored_columns",
    "summary_spec",
]

_log = logging.getLogger(__name__)
# A webhook that keeps failing is given up on after this many attempts in total.
MAX_DELIVERY_ATTEMPTS = 20


@dataclasses.dataclass(frozen=True)
class WindowResult:
    """One window scored by a run."""

    seq: int
    start_ms: int
    end_ms: int
    rows: int
    dataset_drift: bool
    share_drifted: float
    drifted_columns: list[str]
    fired: list[str]
    resolved: list[str]


@dataclasses.dataclass(frozen=True)
class LabelResult:
    """Realised performance added to an earlier window once its labels were due."""

    seq: int
    labelled_share: float
    metrics: dict[str, float]
    fired: list[str]
    resolved: list[str]


@dataclasses.dataclass(frozen=True)
class MonitorRun:
    """What one run of a monitor did."""

    monitor: str
    windows: list[WindowResult]
    delivered: int
    failed: int
    notes: list[str]
    labelled: list[LabelResult] = dataclasses.field(default_factory=list)


def predictions_uri(client: Client) -> str:
    """Where the client's store keeps prediction logs (as ``modelloop serve`` writes them)."""
    from modelloop.serving.prediction_log import predictions_root_for

    return predictions_root_for(client.settings, "")


class _Scorer:
    """Everything fitted once per run from the reference: drift profile, summary
    spec, and (lazily, per served model version) the reference predictions."""

    def __init__(self, client: Client, monitor: Monitor, config: MonitorConfig) -> None:
        self.client = client
        self.config = config
        self.reference = client.load_dataset(monitor.reference)
        target = config.target
        if target is not None and target not in self.reference.columns:
            raise InvalidArgument(
                f"target column {target!r} is not in reference dataset {monitor.reference!r}"
            )
        self.columns = monitored_columns(self.reference, config)
        self.profile = ReferenceProfile.fit(
            self.reference,
            columns=self.columns,
            column_types=config.column_types or None,
            stattests=config.stattests or None,
            thresholds=config.thresholds or None,
            drift_share=config.drift_share,
        )
        self.summary_spec = summary_spec(self.reference[self.columns], self.profile.column_types)
        self.served = ServedModels(client, self.reference, self.columns, target)

    @property
    def notes(self) -> list[str]:
        """What could not be computed this run, and why."""
        return self.served.notes


def _json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities as None and NumPy scalars as Python ones, so
    a window's details always store as JSON."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def monitored_columns(reference: pd.DataFrame, config: MonitorConfig) -> list[str]:
    """The columns a monitor compares, in its order: the configured ones, else the
    reference's except the target (report summaries depend on this order)."""
    return config.columns or [str(c) for c in reference.columns if c != config.target]


def summary_spec(features: pd.DataFrame, column_types: Mapping[str, str]) -> SummarySpec:
    """The column summary spec a monitor uses for ``features`` of its reference (a
    report refits it from the same reference to read stored window summaries)."""
    return SummarySpec.fit(features, column_types=column_types)


def _is_regression(values: pd.Series) -> bool:
    if not pd.api.types.is_float_dtype(values):
        return False
    finite = values.dropna().to_numpy(dtype=float)
    return bool(len(finite)) and not np.all(np.equal(np.mod(finite, 1), 0))


def _score(
    scorer: _Scorer, window: LogWindow, feedback: pd.DataFrame
) -> tuple[dict[str, float], dict[str, Any], pd.DataFrame]:
    """A window's flat metrics, full details and its input frame."""
    raw, outputs = split_log_frame(window.frame)
    rows = len(raw)
    metrics: dict[str, float] = {"rows": float(rows), "late_rows": float(window.late_rows)}
    details: dict[str, Any] = {"late_rows": window.late_rows}
    # A column the window lacks is compared as all-missing ("not enough data"),
    # and reported by data quality as a missing column.
    inputs = raw.copy()
    for column, share in _coerce_types(inputs, scorer.profile.column_types).items():
        metrics[f"type_mismatch_share[{column}]"] = share
    current = inputs.reindex(columns=scorer.columns)
    drift = scorer.profile.drift(current)
    metrics["dataset_drift_share"] = drift.share_drifted
    metrics["dataset_drift"] = float(drift.dataset_drift)
    metrics["drifted_columns"] = float(drift.n_drifted)
    for name, col in drift.columns.items():
        if col.value is not None:
            metrics[f"drift_score[{name}]"] = col.value
            metrics[f"drifted[{name}]"] = float(col.drifted)
    details["drift"] = drift.to_dict()
    key = _served_key(window.frame) if rows else None
    model = scorer.served.model(key) if key is not None else None
    quality = data_quality(
        scorer.reference[scorer.columns],
        inputs,
        columns=scorer.columns,
        column_types={c: t for c, t in scorer.profile.column_types.items() if c in inputs},
        signature=model.signature if model is not None else None,
        signature_frame=raw,
    )
    metrics.update(quality.metrics())
    details["quality"] = quality.to_dict()
    details["prediction_drift"] = None
    if key is not None and len(outputs.columns):
        ref_out = scorer.served.reference_outputs(key)
        common = [] if ref_out is None else [c for c in outputs.columns if c in ref_out.columns]
        if ref_out is not None and common:
            pdrift = dataset_drift(ref_out[common], outputs[common])
            details["prediction_drift"] = pdrift.to_dict()
            metrics["prediction_drift_share"] = pdrift.share_drifted
            for cname, col in pdrift.columns.items():
                if col.value is not None:
                    metrics[f"prediction_drift_score[{cname}]"] = col.value
                    metrics[f"prediction_drifted[{cname}]"] = float(col.drifted)
        estimated = scorer.served.estimate(key, inputs)
        if estimated is not None:
            metrics.update({f"estimated_{k}": v for k, v in estimated.items()})
            details["estimated_performance"] = estimated
    if not scorer.config.label_delay_seconds:  # else a later run adds it (_label_pass)
        details["performance"] = _performance(
            scorer.config, window.frame, outputs, feedback, metrics
        )
    return metrics, details, inputs


def _coerce_types(frame: pd.DataFrame, types: Mapping[str, str]) -> dict[str, float]:
    """Make values that do not fit a numeric or datetime column missing, in place, and
    return each such column's share of them: one bad upstream field shows up as a
    quality metric (and a missing-value share) instead of stopping the monitor."""
    shares: dict[str, float] = {}
    for column, kind in types.items():
        if kind not in ("numeric", "datetime") or column not in frame:
            continue
        values = frame[column]
        if kind == "numeric" and pd.api.types.is_numeric_dtype(values):
            continue
        if kind == "datetime" and pd.api.types.is_datetime64_any_dtype(values):
            continue
        if kind == "numeric" and not pd.api.types.is_bool_dtype(values):
            coerced = pd.to_numeric(values, errors="coerce")
        else:
            coerced = pd.to_datetime(values, errors="coerce", utc=True)
        bad = int((values.notna() & coerced.isna()).sum())
        if bad or kind == "numeric":
            frame[column] = coerced
        shares[column] = bad / len(values) if len(values) else 0.0
    return shares


def _served_key(frame: pd.DataFrame) -> tuple[str, str] | None:
    """The model name and version that answered most of a window's rows."""
    if "model_name" not in frame or "model_version" not in frame:
        return None
    name = frame["model_name"].astype(str).mode()
    version = frame["model_version"].astype(str).mode()
    return (str(name.iloc[0]), str(version.iloc[0])) if len(name) and len(version) else None


def _performance(
    config: MonitorConfig,
    frame: pd.DataFrame,
    outputs: pd.DataFrame,
    feedback: pd.DataFrame,
    metrics: dict[str, float],
) -> dict[str, float] | None:
    if config.target is None or "prediction" not in outputs.columns or not len(frame):
        return None
    keyed = pd.DataFrame(
        {
            "request_id": frame["request_id"].to_numpy(),
            "row": frame["row"].to_numpy(),
            "prediction": outputs["prediction"].to_numpy(),
        }
    )
    truth = feedback.drop_duplicates(["request_id", "row"], keep="last")
    joined = keyed.merge(truth[["request_id", "row", "ground_truth"]], how="left")
    labelled = int(joined["ground_truth"].notna().sum())
    metrics["labelled_share"] = labelled / len(joined)
    if labelled == 0:
        return {"labelled_rows": 0.0}
    model_type = config.model_type or (
        "regressor" if _is_regression(joined["prediction"]) else "classifier"
    )
    if model_type == "classifier":
        joined["ground_truth"], joined["prediction"] = _comparable_labels(
            joined["ground_truth"], joined["prediction"]
        )
    table = realised_performance(
        joined, target="ground_truth", prediction="prediction", model_type=model_type
    )
    found: dict[str, float] = {
        str(k): float(v)
        for k, v in table.iloc[0].items()
        if k not in ("window_start", "window_end", "rows", "unlabelled")
        and isinstance(v, int | float | np.number)
        and np.isfinite(v)
    }
    metrics.update(found)
    return {"labelled_rows": float(labelled), **found}


def _comparable_labels(truth: pd.Series, predicted: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Labels in one type: numbers when both sides are numeric (``1`` equals ``1.0``,
    which a join with missing labels produces), else text (``"1"`` equals ``1``)."""
    truth_n = pd.to_numeric(truth, errors="coerce")
    pred_n = pd.to_numeric(predicted, errors="coerce")
    if truth_n.notna().sum() == truth.notna().sum() and pred_n.notna().all():
        return truth_n.astype(float), pred_n.astype(float)
    text = truth.astype(object).map(lambda v: v if v is None or pd.isna(v) else str(v))
    return text, predicted.astype(str)


def _alert_changes(
    monitor: Monitor,
    rules: list[Rule],
    open_alerts: dict[str, OpenAlert],
    metrics: Mapping[str, float],
    span: tuple[int, int],
    streaks: Mapping[str, int],
) -> tuple[list[NewAlert], list[AlertUpdate], dict[str, int]]:
    now = int(time.time() * 1000)
    outcomes = evaluate_rules(rules, metrics)
    changes = transition(open_alerts, outcomes, now, span[1], streaks=streaks)
    by_key = {o.key: o.rule for o in outcomes}
    fired = []
    for change in changes.fired:
        alert_id = uuid.uuid4().hex
        rule = by_key[change.key]
        fired.append(
            NewAlert(
                alert_id=alert_id,
                key=change.key,
                rule=rule.to_dict(),
                severity=change.severity,
                metric=change.metric,
                column=change.column,
                value=change.value,
                threshold=change.threshold,
                payload=event_payload(
                    change,
                    monitor=monitor.name,
                    deployment=monitor.deployment,
                    alert_id=alert_id,
                    window=span,
                ),
            )
        )
    updates = [AlertUpdate(alert_id=str(c.alert_id), value=c.value) for c in changes.still_firing]
    updates += [
        AlertUpdate(
            alert_id=str(c.alert_id),
            value=c.value,
            payload=event_payload(
                c,
                monitor=monitor.name,
                deployment=monitor.deployment,
                window=span,
            ),
        )
        for c in changes.resolved
    ]
    return fired, updates, dict(changes.streaks)


def run_monitor(
    client: Client,
    name: str,
    *,
    now_ms: int | None = None,
    max_windows: int | None = None,
    log_root: str | None = None,
    progress: Callable[[WindowResult], None] | None = None,
    notifier: WebhookNotifier | None = None,
) -> MonitorRun:
    """Score every closed window of ``name``'s deployment logged since its last run.

    ``now_ms`` decides which time windows are closed (default: now); ``log_root``
    overrides where prediction logs are read from (default: the store's
    ``predictions/``); ``max_windows`` stops early (the rest waits for the next run).
    """
    backend = client.backend
    monitor = backend.get_monitor(name)
    config = MonitorConfig.parse(monitor.config)
    rules = [Rule.from_dict(r) for r in config.rules]
    root = log_root or predictions_uri(client)
    now = int(time.time() * 1000) if now_ms is None else now_ms
    reader = WindowReader(
        root,
        monitor.deployment,
        config.window,
        grace_ms=config.grace_seconds * 1000,
        start_ms=config.start_time,
    )
    scorer: _Scorer | None = None
    state = dict(monitor.state)
    seq = monitor.windows
    results: list[WindowResult] = []
    feedback: pd.DataFrame | None = None
    for window in reader.windows(state, now):
        if max_windows is not None and len(results) >= max_windows:
            break
        if scorer is None:
            scorer = _Scorer(client, monitor, config)
        if feedback is None and config.target is not None and not config.label_delay_seconds:
            feedback = read_feedback(root, monitor.deployment, since_ms=window.start_ms)
        metrics, details, inputs = _score(
            scorer, window, feedback if feedback is not None else pd.DataFrame()
        )
        details["files_until_ms"] = now - reader.grace_ms
        # The spec (bin edges) is refitted from the reference when needed; each window
        # keeps only its counts and the spec's fingerprint.
        summary = scorer.summary_spec.summarise(
            inputs, start_ms=window.start_ms, end_ms=window.end_ms
        ).to_dict(include_spec=False)
        fired, updates, streaks = _alert_changes(
            monitor,
            rules,
            _open_alerts(client, name),
            metrics,
            (window.start_ms, window.end_ms),
            state.get("streaks", {}),
        )
        seq += 1
        state = {**window.state, "streaks": streaks}
        events = backend.record_monitor_window(
            name,
            WindowRecord(
                seq=seq,
                start_time=window.start_ms,
                end_time=window.end_ms,
                rows=len(window.frame),
                metrics=metrics,
                details=_json_safe(details),
                summary=summary,
            ),
            state,
            fired,
            updates,
            deliver=config.webhook is not None,
        )
        for event in events:
            log_alert_event(event.payload)
        drift = details["drift"]
        result = WindowResult(
            seq=seq,
            start_ms=window.start_ms,
            end_ms=window.end_ms,
            rows=len(window.frame),
            dataset_drift=bool(drift["dataset_drift"]),
            share_drifted=float(drift["share_drifted"]),
            drifted_columns=[c for c, d in drift["columns"].items() if d["drifted"]],
            fired=[a.key for a in fired],
            resolved=[u.alert_id for u in updates if u.payload is not None],
        )
        results.append(result)
        if progress is not None:
            progress(result)
    labelled = _label_pass(client, monitor, config, rules, reader, root, now)
    notes = [] if scorer is None else scorer.notes
    try:
        delivered, failed = deliver_pending(client, name, config, notifier)
    except InvalidArgument as exc:  # e.g. the webhook's environment variable is unset
        delivered, failed = 0, 0
        notes.append(f"alert events not delivered (they stay pending): {exc.message}")
    return MonitorRun(name, results, delivered, failed, notes, labelled)


def _open_alerts(client: Client, name: str) -> dict[str, OpenAlert]:
    return {
        a.key: OpenAlert(
            a.key, str(a.rule.get("name", a.key)), a.severity, a.fired_time, a.value, a.id
        )
        for a in client.backend.list_alerts(monitor=name, state="firing")
    }


def _label_pass(
    client: Client,
    monitor: Monitor,
    config: MonitorConfig,
    rules: list[Rule],
    reader: WindowReader,
    root: str,
    now: int,
) -> list[LabelResult]:
    """With ``label_delay_seconds``: realised performance of every scored window whose
    end is that long past and that has none yet, from the rows it was scored with and
    the feedback logged since; stored with the alerts it raises (rules on drift
    metrics see no data here, so only performance rules can change)."""
    if not config.label_delay_seconds or config.target is None:
        return []
    backend = client.backend
    done = backend.monitor_metric_history(monitor.name, ["labelled_share"])
    since = max((seq for seq, _, _ in done.get("labelled_share", [])), default=0)
    due = [
        w
        for w in backend.list_monitor_windows(monitor.name, since, details=True)
        if w.end_time + config.label_delay_seconds * 1000 <= now
    ]
    if not due:
        return []
    feedback = read_feedback(root, monitor.deployment, since_ms=due[0].start_time)
    streaks: dict[str, int] = dict(monitor.state.get("label_streaks", {}))
    results = []
    for w in due:
        until = (w.details or {}).get("files_until_ms", w.created_time)
        frame = reader.read_span(w.start_time, w.end_time, int(until))
        metrics: dict[str, float] = {"labelled_share": 0.0}
        if len(frame):
            _, outputs = split_log_frame(frame)
            _performance(config, frame, outputs, feedback, metrics)
        fired, updates, streaks = _alert_changes(
            monitor, rules, _open_alerts(client, monitor.name), metrics,
            (w.start_time, w.end_time), streaks,
        )  # fmt: skip
        events = backend.record_monitor_metrics(
            monitor.name,
            w.seq,
            metrics,
            {"label_streaks": streaks},
            fired,
            updates,
            deliver=config.webhook is not None,
        )
        for event in events:
            log_alert_event(event.payload)
        results.append(
            LabelResult(
                seq=w.seq,
                labelled_share=metrics["labelled_share"],
                metrics=metrics,
                fired=[a.key for a in fired],
                resolved=[u.alert_id for u in updates if u.payload is not None],
            )
        )
    return results


def deliver_pending(
    client: Client,
    name: str,
    config: MonitorConfig | None = None,
    notifier: WebhookNotifier | None = None,
) -> tuple[int, int]:
    """Send the monitor's undelivered alert events to its webhook, oldest first.

    An event that cannot be delivered now stays pending for the next run, until it
    has been tried :data:`MAX_DELIVERY_ATTEMPTS` times. Returns (delivered, failed)."""
    backend = client.backend
    if config is None:
        config = MonitorConfig.parse(backend.get_monitor(name).config)
    if config.webhook is None:
        return 0, 0
    pending: list[AlertEvent] = backend.list_alert_events(monitor=name, delivery="pending")
    if not pending:
        return 0, 0
    # The process that delivers is the edge that owns its environment.
    sender = notifier or WebhookNotifier(resolve_webhook(config.webhook, os.environ))
    delivered = failed = 0
    for event in pending:
        outcome = sender.deliver(event.payload)
        if outcome.ok:
            backend.set_alert_delivery(event.id, "delivered", outcome.attempts)
            delivered += 1
            continue
        failed += 1
        total = event.attempts + outcome.attempts
        status = "failed" if total >= MAX_DELIVERY_ATTEMPTS else "pending"
        backend.set_alert_delivery(event.id, status, outcome.attempts, outcome.error or "")
        if status == "pending":
            break  # keep events in order: the rest waits until the receiver is back
    return delivered, failed
