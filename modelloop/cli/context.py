"""Shared CLI plumbing: the client from ``--tracking-uri``, typed errors as messages."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from modelloop.errors import ModelloopError
from modelloop.settings import Settings, load_settings
from modelloop.tracking.client import Client

T = TypeVar("T")

console = Console()
err_console = Console(stderr=True)


@dataclasses.dataclass
class CliState:
    """What the root callback parsed, handed to each command through ``ctx.obj``."""

    tracking_uri: str | None = None
    clients: list[Client] = dataclasses.field(default_factory=list)

    def settings(self) -> Settings:
        """Settings with the command-line override applied."""
        return load_settings(tracking_uri=self.tracking_uri)

    def client(self) -> Client:
        """A client for the chosen tracking URI (closed when the command ends)."""
        client = Client(settings=self.settings())
        self.clients.append(client)
        return client

    def close(self) -> None:
        """Flush and close every client this invocation opened."""
        while self.clients:
            self.clients.pop().close()


def state(ctx: typer.Context) -> CliState:
    """The CLI state of this invocation."""
    obj = ctx.find_root().obj
    if not isinstance(obj, CliState):
        obj = CliState()
        ctx.find_root().obj = obj
    return obj


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Print a typed error as one red line and exit 1 (no traceback)."""
    try:
        yield
    except ModelloopError as exc:
        # Messages quote user input, which may contain Rich markup such as "[x]"; soft
        # wrap keeps the line whole at any terminal width.
        err_console.print(
            f"[red]error[/red] ({exc.code}): {escape(exc.message)}",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1) from None


def uvicorn_options(host: str, port: int, access_log: bool) -> dict[str, object]:
    """What ``modelloop server`` and ``modelloop serve`` hand to ``uvicorn.run``.

    One access-log line per request costs more than a small request itself; the audit
    log (server) and the prediction log (serve) keep what matters, so it is off unless
    asked for (``--access-log``)."""
    return {"host": host, "port": port, "ws": "none", "log_level": "info", "access_log": access_log}


def run_command(fn: Callable[[], T]) -> T:
    """Call ``fn`` with friendly errors."""
    with friendly_errors():
        return fn()
