"""``modelloop users`` and ``modelloop tokens``: who may use the tracking server.

These commands manage the server's metadata database directly (the store named by
``--db`` or ``--tracking-uri``), not through a running server: run them where the
database is reachable. The logic lives in :mod:`modelloop.accounts`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, TypeVar

import typer
from rich.markup import escape
from rich.table import Table

from modelloop import accounts
from modelloop.backends.factory import resolve_stores
from modelloop.cli.context import console, err_console, run_command, state
from modelloop.errors import InvalidArgument
from modelloop.store import Database

__all__ = ["DbOption", "open_database", "tokens_app", "users_app"]

T = TypeVar("T")

users_app = typer.Typer(
    help="Manage the users of the tracking server (in its database).", no_args_is_help=True
)
tokens_app = typer.Typer(
    help="Manage API tokens of the tracking server's users (in its database).",
    no_args_is_help=True,
)

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="The server's metadata store (a folder, sqlite:///PATH or postgresql://...; "
        "default: --tracking-uri).",
    ),
]


@contextmanager
def open_database(ctx: typer.Context, db: str | None) -> Iterator[Database]:
    """The metadata database named by ``--db`` or the tracking URI (never a server)."""
    settings = state(ctx).settings()
    uri = db or settings.tracking_uri
    if uri.startswith(("http://", "https://")):
        raise InvalidArgument(
            f"users, tokens and the audit log are managed in the server's database, not "
            f"through {uri!r}: pass --db with the server's --db"
        )
    db_url, _ = resolve_stores(uri, settings.artifacts_uri)
    database = Database(db_url, busy_timeout=settings.sqlite_busy_timeout)
    try:
        yield database
    finally:
        database.dispose()


def _with_db(ctx: typer.Context, db: str | None, fn: Callable[[Database], T]) -> T:
    def go() -> T:
        with open_database(ctx, db) as database:
            return fn(database)

    return run_command(go)


def format_ms(ms: int | None) -> str:
    """A timestamp for tables (local time, seconds), or "-"."""
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def _read_password(password_stdin: bool, no_password: bool) -> str | None:
    if no_password:
        return None
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    value: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


@users_app.command("create")
def users_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The user name (the HTTP Basic user).")],
    role: Annotated[str, typer.Option(help="viewer (read), editor (write) or admin.")] = "editor",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    no_password: Annotated[
        bool, typer.Option("--no-password", help="No password: the user signs in with tokens.")
    ] = False,
    db: DbOption = None,
) -> None:
    """Add a user (asks for the password unless --password-stdin or --no-password).

    Once a user exists, the server requires authentication on every request.
    """
    password = _read_password(password_stdin, no_password)
    user = _with_db(ctx, db, lambda d: accounts.create_user(d, name, role, password))
    console.print(f"created user {escape(user.name)} ({user.role})", highlight=False)


@users_app.command("list")
def users_list(ctx: typer.Context, db: DbOption = None) -> None:
    """List users and their roles."""
    users = _with_db(ctx, db, accounts.list_users)
    table = Table("name", "role", "password", "created")
    for u in users:
        table.add_row(
            escape(u.name), u.role, "yes" if u.password_hash else "no", format_ms(u.created_time)
        )
    console.print(table)


@users_app.command("delete")
def users_delete(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The user to remove (with their tokens).")],
    db: DbOption = None,
) -> None:
    """Remove a user and their API tokens."""
    _with_db(ctx, db, lambda d: accounts.delete_user(d, name))
    console.print(f"deleted user {escape(name)}", highlight=False)


@tokens_app.command("create")
def tokens_create(
    ctx: typer.Context,
    user: Annotated[str, typer.Option("--user", help="The user the token acts as.")],
    name: Annotated[str, typer.Option("--name", help="A label for the token.")] = "",
    db: DbOption = None,
) -> None:
    """Create an API token and print it: it is shown only this once.

    Send it as Authorization: Bearer TOKEN (MLFLOW_TRACKING_TOKEN, MODELLOOP_HTTP_TOKEN)
    or as the HTTP Basic password.
    """
    token_id, token = _with_db(ctx, db, lambda d: accounts.create_token(d, user, name))
    err_console.print(
        f"token {token_id} for {escape(user)}; store it now, it cannot be shown again:",
        highlight=False,
    )
    print(token)


@tokens_app.command("list")
def tokens_list(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option("--user", help="Only this user's tokens.")] = None,
    db: DbOption = None,
) -> None:
    """List API tokens (never their values)."""
    tokens = _with_db(ctx, db, lambda d: accounts.list_tokens(d, user))
    table = Table("id", "user", "name", "created", "last used", "revoked")
    for t in tokens:
        table.add_row(
            str(t.id),
            escape(t.user),
            escape(t.name),
            format_ms(t.created_time),
            format_ms(t.last_used_time),
            format_ms(t.revoked_time),
        )
    console.print(table)


@tokens_app.command("revoke")
def tokens_revoke(
    ctx: typer.Context,
    token_id: Annotated[int, typer.Argument(metavar="ID", help="The token id (tokens list).")],
    db: DbOption = None,
) -> None:
    """Revoke an API token: it stops working on the next request."""
    token = _with_db(ctx, db, lambda d: accounts.revoke_token(d, token_id))
    console.print(f"revoked token {token.id} of {escape(token.user)}", highlight=False)
