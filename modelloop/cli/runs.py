"""``modelloop runs``: list, show and compare runs."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from modelloop.cli.context import console, run_command, state
from modelloop.cli.format import fmt_duration, fmt_time, fmt_value
from modelloop.entities import Run
from modelloop.tracking.compare import compare_runs

app = typer.Typer(help="List, show and compare runs.", no_args_is_help=True)


@app.command("list")
def list_(
    ctx: typer.Context,
    experiment: Annotated[
        list[str] | None, typer.Option("--experiment", "-e", help="Experiment id or name.")
    ] = None,
    filter_string: Annotated[
        str | None, typer.Option("--filter", "-f", help='e.g. "metrics.acc > 0.9"')
    ] = None,
    order_by: Annotated[
        list[str] | None, typer.Option("--order-by", "-o", help='e.g. "metrics.acc DESC"')
    ] = None,
    max_results: Annotated[
        int, typer.Option("--max", "-n", help="Show at most this many runs.")
    ] = 50,
) -> None:
    """List runs matching a filter."""

    def go() -> None:
        page = state(ctx).client().search_runs(experiment, filter_string, order_by, max_results)
        metric_keys = sorted({k for r in page for k in r.metrics})[:6]
        table = Table("run id", "name", "status", "started", "duration", *metric_keys)
        for r in page:
            table.add_row(
                r.run_id,
                r.name,
                r.status.value,
                fmt_time(r.start_time),
                fmt_duration(r.start_time, r.end_time),
                *(fmt_value(r.metrics.get(k)) for k in metric_keys),
            )
        console.print(table, markup=False)
        if page.next_page_token:
            console.print(f"[dim]more runs: raise --max (next page token {page.next_page_token})")

    run_command(go)


@app.command("show")
def show(ctx: typer.Context, run_id: str) -> None:
    """Show one run: attributes, params, metrics, tags, inputs and artifacts."""

    def go() -> None:
        client = state(ctx).client()
        run = client.get_run(run_id)
        _print_run(run)
        arts = client.list_artifacts(run_id)
        if arts:
            table = Table("artifact", "size", title="artifacts")
            for a in arts:
                table.add_row(a.path + ("/" if a.is_dir else ""), "" if a.is_dir else str(a.size))
            console.print(table, markup=False)

    run_command(go)


def _print_run(run: Run) -> None:
    head = Table(show_header=False, title=f"run {run.run_id}")
    for label, value in (
        ("name", run.name),
        ("experiment", run.experiment_id),
        ("status", run.status.value),
        ("message", run.status_message or ""),
        ("started", fmt_time(run.start_time)),
        ("duration", fmt_duration(run.start_time, run.end_time)),
        ("user", run.user),
        ("parent", run.parent_run_id or ""),
    ):
        if value:
            head.add_row(label, value)
    console.print(head, markup=False)
    for title, items in (("params", run.params), ("metrics", run.metrics), ("tags", run.tags)):
        if items:
            table = Table("key", "value", title=title)
            for k in sorted(items):
                table.add_row(k, fmt_value(items[k]))
            console.print(table, markup=False)
    if run.inputs:
        table = Table("dataset", "context", "rows", "digest", title="inputs")
        for i in run.inputs:
            table.add_row(
                i.dataset.name, i.context, str(i.dataset.num_rows or ""), i.dataset.digest[:12]
            )
        console.print(table, markup=False)


@app.command("compare")
def compare(
    ctx: typer.Context,
    run_ids: Annotated[list[str], typer.Argument(help="Two or more run ids.")],
    diff_only: Annotated[
        bool, typer.Option("--diff-only", help="Hide params and metrics that are equal.")
    ] = False,
) -> None:
    """Params and metrics of runs side by side, differences first."""

    def go() -> None:
        client = state(ctx).client()
        runs = [client.get_run(r) for r in run_ids]
        rows = compare_runs(runs)
        table = Table("", *(f"{r.name}\n{r.run_id[:8]}" for r in runs))
        for row in rows:
            if diff_only and not row.differs:
                continue
            style = "bold" if row.differs else "dim"
            table.add_row(row.label, *(fmt_value(x) for x in row.values), style=style)
        console.print(table, markup=False)

    run_command(go)
