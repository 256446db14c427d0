"""``modelloop gc``, ``modelloop demo`` and ``modelloop version``."""

from __future__ import annotations

from typing import Annotated

import typer

from modelloop.cli.context import console, run_command, state


def gc(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run/--delete", help="Only report (default) or really delete.")
    ] = True,
    grace: Annotated[
        int | None,
        typer.Option(help="Keep blobs younger than this many seconds (default: setting)."),
    ] = None,
) -> None:
    """Remove artifact blobs that no live record refers to."""

    def go() -> None:
        report = state(ctx).client().gc(dry_run=dry_run, grace_seconds=grace)
        verb = "removed" if report.removed else "would remove"
        console.print(
            f"{verb} {len(report.unreferenced)} unreferenced blobs ({report.bytes:,} bytes); "
            f"kept {report.kept_young} younger than the grace period"
        )
        if not report.removed and report.unreferenced:
            console.print("run with --delete to remove them")

    run_command(go)


def demo(
    ctx: typer.Context,
    runs: Annotated[int, typer.Option(help="How many models to train.")] = 6,
    server: Annotated[
        bool,
        typer.Option(
            "--server/--no-server",
            help="Track through a tracking server started on a free loopback port.",
        ),
    ] = True,
) -> None:
    """Train a few scikit-learn models on a bundled data set, track them, compare them."""
    from modelloop.demo import run_demo

    run_command(
        lambda: run_demo(
            state(ctx).settings(), n_models=runs, console=console, through_server=server
        )
    )


def version() -> None:
    """Print the modelloop version."""
    from modelloop import __version__

    console.print(__version__)
