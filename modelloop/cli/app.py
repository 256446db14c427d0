"""The root ``modelloop`` command."""

from __future__ import annotations

from typing import Annotated

import typer

from modelloop.cli import (
    audit,
    db,
    deploy,
    experiments,
    maintenance,
    models,
    monitor,
    predict,
    runs,
    serve,
    server,
    users,
)
from modelloop.cli.context import CliState

app = typer.Typer(
    name="modelloop",
    help="modelloop: track, register, gate, deploy, serve, monitor and retrain models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            "--tracking-uri",
            envvar="MODELLOOP_TRACKING_URI",
            help="Folder, sqlite:///PATH or postgresql://... URL (default ./.modelloop).",
        ),
    ] = None,
) -> None:
    ctx.obj = CliState(tracking_uri=tracking_uri)
    ctx.call_on_close(ctx.obj.close)


app.add_typer(experiments.app, name="experiments")
app.add_typer(runs.app, name="runs")
app.add_typer(models.app, name="models")
app.add_typer(models.datasets_app, name="datasets")
app.add_typer(db.app, name="db")
app.add_typer(deploy.app, name="deploy")
app.add_typer(monitor.app, name="monitor")
app.add_typer(monitor.alerts_app, name="alerts")
app.add_typer(users.users_app, name="users")
app.add_typer(users.tokens_app, name="tokens")
app.command("audit")(audit.audit)
app.command("gc")(maintenance.gc)
app.command("demo")(maintenance.demo)
app.command("version")(maintenance.version)
app.command("server")(server.server)
app.command("serve")(serve.serve)
app.command("predict")(predict.predict)


def main() -> None:
    """Console-script entry point."""
    app()
