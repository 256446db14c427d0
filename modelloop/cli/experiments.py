"""``modelloop experiments``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from modelloop.cli.context import console, run_command, state
from modelloop.cli.format import fmt_time
from modelloop.entities import ViewType

app = typer.Typer(help="List and manage experiments.", no_args_is_help=True)


@app.command("list")
def list_(
    ctx: typer.Context,
    view: Annotated[ViewType, typer.Option(help="Which experiments to show.")] = (
        ViewType.ACTIVE_ONLY
    ),
) -> None:
    """List experiments."""

    def go() -> None:
        exps = state(ctx).client().list_experiments(view)
        table = Table("id", "name", "stage", "created", "tags")
        for e in exps:
            tags = ", ".join(f"{k}={val}" for k, val in sorted(e.tags.items()))
            table.add_row(
                e.experiment_id, e.name, e.lifecycle_stage.value, fmt_time(e.creation_time), tags
            )
        console.print(table, markup=False)

    run_command(go)


@app.command("create")
def create(ctx: typer.Context, name: str) -> None:
    """Create an experiment and print its id."""
    run_command(lambda: console.print(state(ctx).client().create_experiment(name)))


@app.command("rename")
def rename(ctx: typer.Context, experiment_id: str, new_name: str) -> None:
    """Rename an experiment."""
    run_command(lambda: state(ctx).client().rename_experiment(experiment_id, new_name))


@app.command("delete")
def delete(ctx: typer.Context, experiment_id: str) -> None:
    """Soft-delete an experiment (restore undoes it)."""
    run_command(lambda: state(ctx).client().delete_experiment(experiment_id))


@app.command("restore")
def restore(ctx: typer.Context, experiment_id: str) -> None:
    """Restore a deleted experiment."""
    run_command(lambda: state(ctx).client().restore_experiment(experiment_id))
