"""``modelloop serve``: the inference server (Open Inference Protocol v2 and MLflow's
``/invocations``) on uvicorn."""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Annotated

import typer

from modelloop.cli.context import run_command, state, uvicorn_options
from modelloop.cli.server import _as_environment, _is_loopback
from modelloop.errors import InvalidArgument
from modelloop.serving.app import SERVE_CONFIG_ENV, ServeConfig
from modelloop.settings import Settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

__all__ = ["serve"]


def serve(
    ctx: typer.Context,
    models: Annotated[
        list[str] | None,
        typer.Argument(
            help="Models to serve: models:/NAME@ALIAS (followed when the alias moves), "
            "models:/NAME/VERSION, runs:/RUN_ID/PATH or a folder (modelloop or MLflow "
            "format); NAME=URI chooses the served name. /invocations serves the first.",
            show_default=False,
            metavar="MODEL_URI...",
        ),
    ] = None,
    deployment: Annotated[
        str | None,
        typer.Option(
            help="Serve this deployment (modelloop deploy): its routes, canaries and shadows, "
            "following new revisions without a restart. Replaces MODEL_URI.",
        ),
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address to listen on (loopback only unless --insecure).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=0, max=65535)] = 8080,
    workers: Annotated[
        int, typer.Option(help="Worker processes (each loads every model).", min=1)
    ] = 1,
    access_log: Annotated[
        bool, typer.Option(help="Log one line per request (predictions are logged anyway).")
    ] = False,
    max_batch_size: Annotated[
        int,
        typer.Option(
            help="Adaptive batching: most rows merged into one predict call "
            "(0 or 1 turns batching off).",
            min=0,
        ),
    ] = 0,
    max_wait_ms: Annotated[
        float,
        typer.Option(
            help="Adaptive batching: how long a request waits for others to join its batch; "
            "0 merges only requests already queued (batches still form under load).",
            min=0.0,
        ),
    ] = 0.0,
    poll_interval: Annotated[
        float,
        typer.Option(help="Seconds between registry checks of a served alias.", min=0.05),
    ] = 2.0,
    log_predictions: Annotated[
        bool,
        typer.Option(
            "--log-predictions/--no-log-predictions",
            help="Log every prediction (Parquet under the artifact store's predictions/) "
            "and accept ground truth on POST /feedback.",
        ),
    ] = True,
    sample_rate: Annotated[
        float,
        typer.Option(help="Share of requests whose predictions are logged.", min=0.0, max=1.0),
    ] = 1.0,
    inference_threads: Annotated[
        int,
        typer.Option(
            help="Threads the models' native code (OpenMP, BLAS) may use per predict call "
            "in each worker; 0 leaves the libraries' defaults. 1 avoids thread-pool spinning "
            "that slows a busy server down.",
            min=0,
        ),
    ] = 1,
    trusted: Annotated[
        bool,
        typer.Option(
            "--trusted",
            help="Allow model formats whose loading runs code from the files (pickles).",
        ),
    ] = False,
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure",
            help="Allow a non-loopback --host (the inference server has no authentication).",
        ),
    ] = False,
) -> None:
    """Serve models over the Open Inference Protocol (/v2/...) and MLflow's scoring
    protocol (/invocations, /models/NAME/invocations), with Prometheus metrics at
    /metrics.

    GET /v2/health/ready and GET /ping answer when the server is up.
    """

    def go() -> None:
        if not insecure and not _is_loopback(host):
            raise InvalidArgument(
                f"refusing to listen on {host}: the inference server has no authentication, "
                "so anyone who can reach it could use the models. Listen on 127.0.0.1 "
                "behind a proxy, or pass --insecure on a trusted network."
            )
        if (not models) == (deployment is None):
            raise InvalidArgument("give MODEL_URI... or --deployment NAME (one of the two)")
        config = ServeConfig(
            models=tuple(models or ()),
            deployment=deployment,
            inference_threads=inference_threads,
            trusted=True if trusted else None,
            max_batch_size=max_batch_size,
            max_wait_ms=max_wait_ms,
            poll_interval=poll_interval,
            log_predictions=log_predictions,
            sample_rate=sample_rate,
        )
        _run(state(ctx).settings(), config, host, port, workers, access_log)

    run_command(go)


def _run(
    settings: Settings,
    config: ServeConfig,
    host: str,
    port: int,
    workers: int,
    access_log: bool = False,
) -> None:
    import uvicorn

    from modelloop.gc_tuning import tune_gc_for_server
    from modelloop.serving.app import build_serving_app

    options = uvicorn_options(host, port, access_log)
    if workers == 1:
        # Models load here, so a bad URI is a clean error before anything listens.
        app = build_serving_app(settings, config)
        tune_gc_for_server()
        uvicorn.run(app, **options)  # type: ignore[arg-type]
        return
    # Workers import a factory by name, so everything they need travels in the
    # environment: settings as MODELLOOP_* variables, the rest as JSON. Loading the
    # models once here reports a bad model URI before any worker starts.
    _check_models(settings, config)
    os.environ.update(_as_environment(settings))
    os.environ[SERVE_CONFIG_ENV] = config.to_json()
    # Every worker writes its metrics into one folder, so /metrics reports all of them.
    created = None
    if not os.environ.get(MULTIPROC_ENV):
        created = tempfile.mkdtemp(prefix="modelloop-metrics-")
        os.environ[MULTIPROC_ENV] = created
    try:
        uvicorn.run(
            "modelloop.serving.app:create_serving_app_from_environment",
            factory=True,
            workers=workers,
            **options,  # type: ignore[arg-type]
        )
    finally:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)


def _check_models(settings: Settings, config: ServeConfig) -> None:
    """Load every model once in this process: a bad URI fails before workers start."""
    from modelloop.serving.slots import load_served_model
    from modelloop.tracking.client import Client

    client = Client(settings=settings)
    try:
        for spec in config.models:
            load_served_model(client, spec, trusted=config.trusted)
    finally:
        client.close()
