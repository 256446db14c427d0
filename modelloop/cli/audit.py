"""``modelloop audit``: the audit log of the store (who did what, when)."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from modelloop import accounts
from modelloop.cli.context import console, run_command
from modelloop.cli.users import DbOption, format_ms, open_database
from modelloop.errors import InvalidArgument

__all__ = ["audit", "parse_since"]

_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def parse_since(text: str, now_ms: int) -> int:
    """Milliseconds since the epoch for ``30m``/``2h``/``7d`` ago or an ISO date/time."""
    match = _DURATION.match(text.strip())
    if match:
        return now_ms - int(match.group(1)) * _UNIT_MS[match.group(2)]
    try:
        return int(datetime.fromisoformat(text.strip()).timestamp() * 1000)
    except ValueError:
        raise InvalidArgument(
            f"invalid --since {text!r}: give a duration such as 30m, 2h, 7d or a date "
            "such as 2026-01-31 or 2026-01-31T12:00"
        ) from None


def audit(
    ctx: typer.Context,
    actor: Annotated[str | None, typer.Option(help="Only this actor (user name).")] = None,
    action: Annotated[
        str | None, typer.Option(help="Only this action, e.g. run.create, user.create.")
    ] = None,
    object_: Annotated[
        str | None,
        typer.Option("--object", help="Only this object: TYPE (run) or TYPE:ID (run:abc...)."),
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Only since a duration ago (30m, 2h, 7d) or a date.")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many rows, newest first.", min=1)] = 50,
    db: DbOption = None,
) -> None:
    """Show the audit log: every change, with who made it, when, on which object.

    Reads the server's database directly (--db or --tracking-uri).
    """

    def go() -> None:
        object_type, _, object_id = (object_ or "").partition(":")
        start = None if since is None else parse_since(since, int(time.time() * 1000))
        with open_database(ctx, db) as database:
            rows = accounts.audit_log(
                database,
                actor=actor,
                action=action,
                object_type=object_type or None,
                object_id=object_id or None,
                since=start,
                limit=limit,
            )
        table = Table("time", "actor", "action", "object", "details")
        for r in rows:
            details = json.dumps(r.details, sort_keys=True) if r.details else ""
            table.add_row(
                format_ms(r.time),
                escape(r.actor),
                r.action,
                escape(f"{r.object_type}:{r.object_id}"),
                escape(details),
            )
        console.print(table)

    run_command(go)
