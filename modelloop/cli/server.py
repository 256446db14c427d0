"""``modelloop server``: the tracking server on uvicorn."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from typing import Annotated

import typer

from modelloop.backends.factory import open_backend, resolve_stores
from modelloop.cli.context import run_command, state, uvicorn_options
from modelloop.errors import InvalidArgument
from modelloop.settings import ENV_PREFIX, Settings
from modelloop.store import Database

__all__ = ["server"]


def server(
    ctx: typer.Context,
    host: Annotated[
        str,
        typer.Option(
            help="Address to listen on (loopback only until a user exists, or with --insecure)."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=0, max=65535)] = 5000,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="Metadata store: a folder, sqlite:///PATH or postgresql://... "
            "(default: the tracking URI setting).",
        ),
    ] = None,
    artifacts: Annotated[
        str | None,
        typer.Option(
            "--artifacts",
            help="Artifact store: a folder or an fsspec URI such as s3://bucket/prefix "
            "(default: the artifacts_uri setting).",
        ),
    ] = None,
    workers: Annotated[int, typer.Option(help="Worker processes.", min=1)] = 1,
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure",
            help="Allow a non-loopback --host although no user exists (no authentication).",
        ),
    ] = False,
    access_log: Annotated[
        bool, typer.Option(help="Log one line per request (writes are always audited).")
    ] = False,
) -> None:
    """Run the tracking server: the REST API under /api/v1.

    The API is described at /openapi.json; GET /health answers when the server is up.
    Clients use it with --tracking-uri http://HOST:PORT. Once a user exists (modelloop
    users create) every request must authenticate; until then the server listens on
    loopback only.
    """

    def go() -> None:
        base = state(ctx).settings()
        settings = base.replace(
            tracking_uri=db or base.tracking_uri, artifacts_uri=artifacts or base.artifacts_uri
        )
        if settings.tracking_uri.startswith(("http://", "https://")):
            raise InvalidArgument(
                f"the server needs a local store, not {settings.tracking_uri!r}: pass --db"
            )
        if not insecure and not _is_loopback(host) and not _has_users(settings):
            raise InvalidArgument(
                f"refusing to listen on {host}: the store has no users, so authentication "
                "is off and anyone who can reach the server could read and change every "
                "run. Create a user first (modelloop users create NAME --role admin), "
                "listen on 127.0.0.1, or pass --insecure on a trusted network."
            )
        _serve(settings, host, port, workers, access_log)

    run_command(go)


def _serve(
    settings: Settings, host: str, port: int, workers: int, access_log: bool = False
) -> None:
    import uvicorn

    from modelloop.gc_tuning import tune_gc_for_server
    from modelloop.server.app import create_app

    options = uvicorn_options(host, port, access_log)
    if workers == 1:
        # The store is opened here, so a missing or outdated database is a clean error.
        app = create_app(settings)
        tune_gc_for_server()
        uvicorn.run(app, **options)  # type: ignore[arg-type]
        return
    # uvicorn starts worker processes from an import string naming a factory that takes
    # no arguments, so the settings cannot be handed over as an object: they go through
    # the environment, as MODELLOOP_* variables, which the factory reads with
    # load_settings() (they outrank any config file). Opening the store once here
    # reports a bad --db before any worker starts.
    open_backend(settings).close()
    os.environ.update(_as_environment(settings))
    uvicorn.run(
        "modelloop.server.app:create_app_from_environment",
        factory=True,
        workers=workers,
        **options,  # type: ignore[arg-type]
    )


def _as_environment(settings: Settings) -> dict[str, str]:
    out = {}
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        text = str(value).lower() if isinstance(value, bool) else str(value)
        out[ENV_PREFIX + f.name.upper()] = text
    return out


def _has_users(settings: Settings) -> bool:
    from modelloop.accounts import has_users

    db_url, _ = resolve_stores(settings.tracking_uri, settings.artifacts_uri)
    db = Database(db_url, busy_timeout=settings.sqlite_busy_timeout)
    try:
        return has_users(db)
    finally:
        db.dispose()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
