"""``modelloop monitor`` (create, run, report and inspect monitors) and
``modelloop alerts`` (what fired, when, and whether it was delivered)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from modelloop.cli.context import console, run_command, state
from modelloop.cli.format import fmt_time, fmt_value
from modelloop.entities import Monitor

__all__ = ["alerts_app", "app"]

app = typer.Typer(
    help="Monitors: data drift, prediction drift, data quality and performance per window.",
    no_args_is_help=True,
)
alerts_app = typer.Typer(help="Alerts raised by monitor rules.", no_args_is_help=True)

MonitorName = Annotated[str, typer.Argument(help="The monitor's name.")]


def _window_text(config: dict[str, Any]) -> str:
    from modelloop.monitoring.config import parse_window

    return str(parse_window(config["window"]))


def _describe(m: Monitor) -> None:
    from modelloop.monitoring.webhook import redacted_url

    config = m.config
    console.print(
        f"monitor {m.name}: deployment {m.deployment}, reference dataset {m.reference}, "
        f"windows of {_window_text(config)}, {m.windows} scored",
        markup=False,
    )
    if config.get("target"):
        delay = config.get("label_delay_seconds") or 0
        console.print(
            f"performance on target column {config['target']!r}"
            + (f", {delay} s after each window ends" if delay else ""),
            markup=False,
        )
    if config.get("webhook"):
        hook = config["webhook"]
        shown = hook if hook.startswith("env:") else redacted_url(hook)
        console.print(f"webhook {shown}", markup=False)
    if config.get("rules"):
        from modelloop.monitoring.rules import Rule

        table = Table("rule", "severity", "expression")
        for stored in config["rules"]:
            rule = Rule.from_dict(stored)
            table.add_row(rule.name, rule.severity, rule.expression)
        console.print(table, markup=False)


@app.command("create")
def create(
    ctx: typer.Context,
    name: MonitorName,
    deployment: Annotated[str, typer.Option(help="The deployment whose logs are watched.")],
    reference: Annotated[str, typer.Option(help="A registered dataset (modelloop datasets).")],
    window: Annotated[
        str, typer.Option(help="Window: a duration (15m, 1h, 1d) or a row count ('1000 rows').")
    ] = "1h",
    rules: Annotated[
        Path | None, typer.Option(help="A YAML file of alert rules.", exists=True, dir_okay=False)
    ] = None,
    rule: Annotated[
        list[str] | None,
        typer.Option(help="An alert rule, e.g. 'dataset_drift_share > 0.3' (repeatable)."),
    ] = None,
    webhook: Annotated[str | None, typer.Option(help="POST alert events to this URL.")] = None,
    target: Annotated[
        str | None, typer.Option(help="The reference's ground-truth column (for performance).")
    ] = None,
    column: Annotated[
        list[str] | None, typer.Option(help="Compare only these columns (repeatable).")
    ] = None,
    drift_share: Annotated[
        float, typer.Option(help="Dataset drift when this share of columns drifts.")
    ] = 0.5,
    learned_thresholds: Annotated[
        bool, typer.Option(help="Learn thresholds from the reference's own variability.")
    ] = False,
    grace: Annotated[
        int, typer.Option(help="Seconds late log files may still arrive after a window ends.")
    ] = 60,
    label_delay: Annotated[
        int,
        typer.Option(
            help="Seconds after a window's end before its performance is computed "
            "(so labels that come late count; 0: with the window)."
        ),
    ] = 0,
    description: Annotated[str, typer.Option(help="What the monitor is for.")] = "",
) -> None:
    """Create a monitor of a deployment's prediction logs against a reference dataset."""

    def go() -> None:
        from modelloop.monitoring.rules import load_rules

        all_rules: list[Any] = [] if rules is None else [r.to_dict() for r in load_rules(rules)]
        all_rules += [r.to_dict() for r in load_rules(list(rule or []))] if rule else []
        created = (
            state(ctx)
            .client()
            .create_monitor(
                name,
                deployment,
                reference,
                window=window,
                columns=column or None,
                thresholds="learned" if learned_thresholds else None,
                drift_share=drift_share,
                target=target,
                rules=all_rules,
                webhook=webhook,
                grace_seconds=grace,
                label_delay_seconds=label_delay,
                description=description,
            )
        )
        _describe(created)

    run_command(go)


@app.command("update")
def update(
    ctx: typer.Context,
    name: MonitorName,
    rules: Annotated[
        Path | None,
        typer.Option(help="Replace the rules with this YAML file's.", exists=True, dir_okay=False),
    ] = None,
    rule: Annotated[
        list[str] | None, typer.Option(help="Replace the rules with these (repeatable).")
    ] = None,
    no_rules: Annotated[bool, typer.Option("--no-rules", help="Remove every rule.")] = False,
    webhook: Annotated[str | None, typer.Option(help="POST alert events to this URL.")] = None,
    no_webhook: Annotated[bool, typer.Option("--no-webhook", help="Stop posting.")] = False,
    drift_share: Annotated[
        float | None, typer.Option(help="Dataset drift when this share of columns drifts.")
    ] = None,
    grace: Annotated[int | None, typer.Option(help="Seconds late log files may arrive.")] = None,
    description: Annotated[str | None, typer.Option(help="What the monitor is for.")] = None,
) -> None:
    """Change a monitor's rules, webhook or thresholds (scored windows keep their
    results; the next run uses the new settings)."""

    def go() -> None:
        from modelloop.monitoring.rules import load_rules

        changes: dict[str, Any] = {}
        if no_rules:
            changes["rules"] = []
        elif rules is not None or rule:
            found = [] if rules is None else load_rules(rules)
            changes["rules"] = [*found, *(load_rules(list(rule)) if rule else [])]
        if no_webhook:
            changes["webhook"] = None
        elif webhook is not None:
            changes["webhook"] = webhook
        if drift_share is not None:
            changes["drift_share"] = drift_share
        if grace is not None:
            changes["grace_seconds"] = grace
        _describe(state(ctx).client().update_monitor(name, changes, description=description))

    run_command(go)


@app.command("list")
def list_(
    ctx: typer.Context,
    deployment: Annotated[str | None, typer.Option(help="Only this deployment's.")] = None,
) -> None:
    """Every monitor."""

    def go() -> None:
        table = Table("monitor", "deployment", "reference", "window", "windows", "updated")
        for m in state(ctx).client().list_monitors(deployment):
            table.add_row(m.name, m.deployment, m.reference, _window_text(m.config),
                          str(m.windows), fmt_time(m.updated_time))  # fmt: skip
        console.print(table, markup=False)

    run_command(go)


@app.command("show")
def show(ctx: typer.Context, name: MonitorName) -> None:
    """A monitor's settings and its newest windows."""

    def go() -> None:
        client = state(ctx).client()
        m = client.get_monitor(name)
        _describe(m)
        windows = client.monitor_windows(name, since_seq=max(m.windows - 10, 0))
        table = Table("window", "start", "end", "rows", "drift share", "drifted")
        for w in windows:
            table.add_row(str(w.seq), fmt_time(w.start_time), fmt_time(w.end_time), str(w.rows),
                          fmt_value(w.metrics.get("dataset_drift_share")),
                          "yes" if w.metrics.get("dataset_drift") else "no")  # fmt: skip
        console.print(table, markup=False)

    run_command(go)


@app.command("run")
def run(
    ctx: typer.Context,
    name: MonitorName,
    max_windows: Annotated[
        int | None, typer.Option(help="Score at most this many windows now.")
    ] = None,
) -> None:
    """Score the windows logged since the last run (each window once), raise and
    resolve alerts, deliver them."""

    def go() -> None:
        from modelloop.monitoring.monitor import WindowResult

        table = Table("window", "start", "rows", "drift share", "drifted columns", "alerts")

        def row(r: WindowResult) -> None:
            alerts = [f"fired {k}" for k in r.fired] + [f"resolved {k}" for k in r.resolved]
            drifted = ", ".join(r.drifted_columns[:6]) + (
                f" (+{len(r.drifted_columns) - 6})" if len(r.drifted_columns) > 6 else ""
            )
            table.add_row(str(r.seq), fmt_time(r.start_ms), str(r.rows),
                          f"{r.share_drifted:.2f}" + (" DRIFT" if r.dataset_drift else ""),
                          drifted, "; ".join(alerts))  # fmt: skip

        result = state(ctx).client().run_monitor(name, max_windows=max_windows, progress=row)
        if result.windows:
            console.print(table, markup=False)
        console.print(
            f"{len(result.windows)} new window(s) scored"
            + (f"; {result.delivered} alert event(s) delivered" if result.delivered else "")
            + (f"; {result.failed} delivery failure(s)" if result.failed else ""),
            markup=False,
        )
        for label in result.labelled:
            fired = "; ".join(f"fired {k}" for k in label.fired)
            console.print(
                f"window {label.seq}: performance from {label.labelled_share:.0%} labelled rows"
                + (f"; {fired}" if fired else ""),
                markup=False,
            )
        for note in result.notes:
            console.print(f"note: {note}", markup=False)

    run_command(go)


@app.command("report")
def report(
    ctx: typer.Context,
    name: MonitorName,
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the report.")],
    as_json: Annotated[bool, typer.Option("--json", help="Write JSON instead of HTML.")] = False,
    last: Annotated[
        int | None, typer.Option(help="Merge histograms over the last N windows (default: all).")
    ] = None,
) -> None:
    """Write the monitor's report: drift table, reference-versus-current histograms,
    metric histories and alerts (a self-contained HTML page, or JSON)."""

    def go() -> None:
        state(ctx).client().monitor_report(
            name, path=output, output_format="json" if as_json else "html", last=last
        )
        console.print(f"wrote {output}", markup=False)

    run_command(go)


@app.command("history")
def history(
    ctx: typer.Context,
    name: MonitorName,
    metric: Annotated[
        list[str] | None, typer.Option(help="Metric names, e.g. 'drift_score[age]' (repeatable).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """A monitor's metrics over time, one row per window."""

    def go() -> None:
        frame = state(ctx).client().monitor_history(name, metric or None)
        if as_json:
            frame = frame.assign(window_end=frame["window_end"].astype(str))
            console.print_json(json.dumps(frame.to_dict(orient="records"), default=str))
            return
        columns = [c for c in frame.columns if c not in ("seq",)][:12]
        table = Table(*columns)
        for record in frame[columns].itertuples(index=False):
            table.add_row(*(fmt_value(v) for v in record))
        console.print(table, markup=False)

    run_command(go)


@app.command("delete")
def delete(ctx: typer.Context, name: MonitorName) -> None:
    """Delete a monitor with its windows, metrics and alerts."""

    def go() -> None:
        state(ctx).client().delete_monitor(name)
        console.print(f"deleted monitor {name}", markup=False)

    run_command(go)


@alerts_app.command("list")
def alerts_list(
    ctx: typer.Context,
    monitor: Annotated[str | None, typer.Option(help="Only this monitor's alerts.")] = None,
    firing: Annotated[bool, typer.Option(help="Only alerts firing now.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Alerts, newest first: rule, severity, state, value, when fired and resolved."""

    def go() -> None:
        found = (
            state(ctx)
            .client()
            .list_alerts(monitor=monitor, state="firing" if firing else None, limit=limit)
        )
        if as_json:
            console.print_json(json.dumps([dataclasses.asdict(a) for a in found]))
            return
        table = Table("id", "monitor", "severity", "state", "alert", "value", "fired", "resolved")
        for a in found:
            table.add_row(a.id[:12], a.monitor, a.severity, a.state, a.key, fmt_value(a.value),
                          fmt_time(a.fired_time), fmt_time(a.resolved_time))  # fmt: skip
        console.print(table, markup=False)

    run_command(go)
