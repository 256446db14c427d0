"""``modelloop db``: the metadata database."""

from __future__ import annotations

import typer

from modelloop.backends.factory import resolve_stores
from modelloop.cli.context import console, run_command, state
from modelloop.store import Database

app = typer.Typer(help="Manage the metadata database.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(ctx: typer.Context) -> None:
    """Migrate the metadata database to this modelloop's schema."""

    def go() -> None:
        settings = state(ctx).settings()
        db_url, _ = resolve_stores(settings.tracking_uri, settings.artifacts_uri)
        db = Database(db_url, busy_timeout=settings.sqlite_busy_timeout, check_schema=False)
        try:
            before, after = db.upgrade()
        finally:
            db.dispose()
        if before == after:
            console.print(f"already at schema {after}")
        else:
            console.print(f"upgraded schema {before or '(empty)'} -> {after}")

    run_command(go)


@app.command("check")
def check(ctx: typer.Context) -> None:
    """Open the database (refusing an outdated schema) and run an integrity check."""

    def go() -> None:
        settings = state(ctx).settings()
        db_url, _ = resolve_stores(settings.tracking_uri, settings.artifacts_uri)
        db = Database(db_url, busy_timeout=settings.sqlite_busy_timeout)
        try:
            problems = db.integrity_check()
        finally:
            db.dispose()
        if problems:
            for p in problems:
                console.print(f"[red]{p}[/red]")
            raise typer.Exit(1)
        console.print("ok")

    run_command(go)
