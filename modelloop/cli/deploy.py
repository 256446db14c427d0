"""``modelloop deploy``: versioned deployment specs (routes, canaries, shadows) and
rollback. ``modelloop deploy NAME --model URI`` is short for ``modelloop deploy set``."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table
from typer.core import TyperGroup

from modelloop.cli.context import console, run_command, state
from modelloop.cli.format import fmt_time
from modelloop.entities import DeploymentRevision

__all__ = ["app"]


class _DefaultToSet(TyperGroup):
    """Treat ``deploy NAME ...`` as ``deploy set NAME ...`` when NAME is no subcommand."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["set", *args]
        return super().resolve_command(ctx, args)


app = typer.Typer(
    cls=_DefaultToSet,
    help="Deployments: weighted routes (A/B, canary), shadows, sticky routing, rollback.",
    no_args_is_help=True,
)


def _describe(rev: DeploymentRevision) -> None:
    spec = rev.spec
    table = Table(
        "route", "model", "traffic", title=f"deployment {rev.name} revision {rev.revision}"
    )
    for route in spec["routes"]:
        table.add_row(route["name"], route["model"], f"{route['weight']:g}%")
    for shadow in spec.get("shadows", []):
        table.add_row(shadow["name"], shadow["model"], "shadow (logged, never returned)")
    console.print(table, markup=False)
    extras = []
    if spec.get("sticky_key"):
        extras.append(f"sticky by {spec['sticky_key']}")
    batching = spec.get("batching", {})
    extras.append(
        f"batching max {batching.get('max_batch_size')} rows / {batching.get('max_wait_ms')} ms"
    )
    logging = spec.get("logging", {})
    extras.append(
        "logging "
        + (
            f"{logging.get('sample_rate', 1) * 100:g}% of requests"
            if logging.get("enabled")
            else "off"
        )
    )
    console.print("; ".join(extras), markup=False)
    console.print(
        f"by {rev.actor} at {fmt_time(rev.created_time)}"
        + (f": {rev.reason}" if rev.reason else ""),
        markup=False,
    )


@app.command("set")
def set_(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The deployment's name.")],
    model: Annotated[str, typer.Option(help="The main model URI, e.g. models:/churn@champion.")],
    canary: Annotated[
        list[str] | None,
        typer.Option(help="URI=PERCENT of the traffic, e.g. models:/churn@challenger=10%."),
    ] = None,
    shadow: Annotated[
        list[str] | None, typer.Option(help="A model URI that gets a logged copy of the traffic.")
    ] = None,
    sticky: Annotated[
        str | None,
        typer.Option(help="Route by a request key: header:<name> or input:<column>."),
    ] = None,
    reason: Annotated[str, typer.Option(help="Why (recorded with the revision).")] = "",
) -> None:
    """Store a new revision of deployment NAME (servers following it switch without a
    restart)."""

    def go() -> None:
        from modelloop.serving.deployment import parse_share

        canaries = [parse_share(c) for c in canary or []]
        rev = (
            state(ctx)
            .client()
            .deploy(
                name,
                model,
                canaries=canaries,
                shadows=shadow or [],
                sticky_key=sticky,
                reason=reason,
            )
        )
        _describe(rev)

    run_command(go)


@app.command("rollback")
def rollback(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The deployment's name.")],
    to: Annotated[
        int | None, typer.Option(help="The revision to restore (default: the previous one).")
    ] = None,
    reason: Annotated[str, typer.Option(help="Why (recorded with the revision).")] = "",
) -> None:
    """Make the previous (or --to) revision live again, as a new revision."""

    def go() -> None:
        _describe(state(ctx).client().rollback_deployment(name, to, reason))

    run_command(go)


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """Every deployment with its live revision."""

    def go() -> None:
        table = Table("deployment", "revision", "routes", "shadows", "updated", "by")
        for rev in state(ctx).client().list_deployments():
            routes = ", ".join(f"{r['model']} {r['weight']:g}%" for r in rev.spec["routes"])
            shadows = ", ".join(s["model"] for s in rev.spec.get("shadows", []))
            table.add_row(rev.name, str(rev.revision), routes, shadows,
                          fmt_time(rev.created_time), rev.actor)  # fmt: skip
        console.print(table, markup=False)

    run_command(go)


@app.command("show")
def show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The deployment's name.")],
    revision: Annotated[int | None, typer.Option(help="A revision (default: live).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the spec as JSON.")] = False,
) -> None:
    """Show a deployment's live (or a given) revision."""

    def go() -> None:
        rev = state(ctx).client().get_deployment(name, revision)
        if as_json:
            payload: dict[str, Any] = {"name": rev.name, "revision": rev.revision, "spec": rev.spec}
            console.print_json(json.dumps(payload))
        else:
            _describe(rev)

    run_command(go)


@app.command("history")
def history(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="The deployment's name.")]
) -> None:
    """Every revision of a deployment: when, who, why, what it served."""

    def go() -> None:
        table = Table("revision", "time", "by", "routes", "reason")
        for rev in state(ctx).client().deployment_history(name):
            routes = ", ".join(f"{r['model']} {r['weight']:g}%" for r in rev.spec["routes"])
            table.add_row(str(rev.revision), fmt_time(rev.created_time), rev.actor, routes,
                          rev.reason)  # fmt: skip
        console.print(table, markup=False)

    run_command(go)
