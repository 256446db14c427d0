"""The inference server app: Open Inference Protocol v2 and MLflow's ``/invocations``.

Plain Starlette routes with orjson bodies (no pydantic on the hot path). Parsing
happens on the event loop; predictions run in the batcher's worker thread (or
the loop's thread pool when batching is off), so the loop keeps accepting.

Routes: ``/v2/health/{live,ready}``, ``GET /v2``, ``GET /v2/models/{m}[/versions/{v}]``
(metadata), ``.../ready``, ``POST .../infer``; ``POST /invocations`` (the first
served model), ``POST /models/{m}/invocations``, ``GET /ping``, ``GET /health``;
``POST /feedback`` with a prediction logger; ``GET /metrics`` with metrics.
Every prediction response carries ``X-Request-Id`` and ``X-Model-Version``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gzip
import logging
import os
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelloop import __version__
from modelloop.errors import InvalidArgument, InvalidState
from modelloop.gc_tuning import tune_gc_for_server
from modelloop.serving import oip
from modelloop.serving.batching import BatchSettings, Prediction
from modelloop.serving.errors import (
    BadRequest,
    ModelFailed,
    ServingError,
    json_response,
    mlflow_error_response,
    oip_error_response,
    route_error,
)
from modelloop.serving.invocations import InvocationError, parse_invocation, predictions_body
from modelloop.serving.slots import ModelServer, ServedModel, SlotState

if TYPE_CHECKING:
    from modelloop.serving.metrics import ServingMetrics
    from modelloop.serving.prediction_log import PredictionLogger
    from modelloop.serving.routing import DeploymentFollower, DeploymentRouting, RouteChoice
    from modelloop.settings import Settings

__all__ = [
    "SERVE_CONFIG_ENV",
    "ServeConfig",
    "build_serving_app",
    "create_serving_app",
    "create_serving_app_from_environment",
]

#: The environment variable carrying a :class:`ServeConfig` (JSON) to worker processes.
SERVE_CONFIG_ENV = "MODELLOOP_SERVE_CONFIG"

_log = logging.getLogger(__name__)
T = TypeVar("T")
_OUTPUTS = ("predict", "predict_proba")
_UNKNOWN = "-"  # the metrics label of a request for a model that is not served


def _decompress(body: bytes, encoding: str | None) -> bytes:
    # tritonclient compresses request bodies when asked (gzip or zlib "deflate").
    if not encoding or encoding == "identity":
        return body
    try:
        if encoding == "gzip":
            return gzip.decompress(body)
        if encoding == "deflate":
            return zlib.decompress(body)
    except (OSError, zlib.error, EOFError) as exc:
        raise BadRequest(f"the body is not valid {encoding} data: {exc}") from None
    raise BadRequest(f"unsupported Content-Encoding {encoding!r}")


#: Bodies above this many bytes are parsed in a thread: parsing megabytes of JSON or
#: CSV on the event loop would stall every other request meanwhile.
LARGE_BODY = 256 * 1024


async def _off_loop_if_large(size: int, fn: Callable[..., T], *args: Any) -> T:
    if size > LARGE_BODY:
        return await asyncio.to_thread(fn, *args)
    return fn(*args)


def _internal(exc: Exception) -> ServingError:
    """A bug of ours, not the client's or the model's: logged, answered as a JSON 500."""
    _log.error("inference request failed", exc_info=exc)
    return ServingError(f"internal error: {type(exc).__name__}: {exc}")


async def _predict(state: SlotState, name: str, data: Any, want_proba: bool) -> Prediction:
    """Run the prediction; input problems become 400, the model's own failures 500."""
    try:
        return await state.batcher.predict(data, want_proba=want_proba)
    except (InvalidArgument, InvalidState) as exc:  # signature mismatch, no predict_proba
        raise BadRequest(str(exc)) from None
    except Exception as exc:
        _log.exception("model %r version %s failed", name, state.version)
        raise ModelFailed(
            f"model '{name}' version {state.version} failed: {type(exc).__name__}: {exc}"
        ) from None


class _Handlers:
    """The route handlers of one app, sharing its server, logger and metrics."""

    def __init__(
        self,
        server: ModelServer,
        logger: PredictionLogger | None,
        metrics: ServingMetrics | None,
        deployment: str,
    ) -> None:
        self.server = server
        self.logger = logger
        self.metrics = metrics
        self.deployment = deployment
        # Set when serving a deployment: replaced whole when its spec changes.
        self.routing: DeploymentRouting | None = None
        self._shadows: set[asyncio.Task[None]] = set()  # keeps running shadow copies alive

    # -- bookkeeping ----------------------------------------------------------------------

    def _observe(self, model: str, version: str, route: str, status: int, started: float) -> None:
        if self.metrics is not None:
            self.metrics.request(model, version, route, status, time.perf_counter() - started)

    def _log_prediction(
        self,
        request_id: str,
        route: str,
        name: str,
        state: SlotState,
        data: Any,
        out: Any,
        started: float,
    ) -> None:
        if self.logger is None:
            return
        self.logger.log(
            request_id=request_id,
            route=route,
            model_name=name,
            model_version=state.version,
            inputs=data,
            outputs=out,
            latency_ms=(time.perf_counter() - started) * 1000.0,
            time_ms=int(time.time() * 1000),
        )

    # -- health and metadata --------------------------------------------------------------

    async def live(self, request: Request) -> Response:
        return json_response({"live": True})

    async def ready(self, request: Request) -> Response:
        self.server.start()
        return json_response({"ready": True})

    async def server_metadata(self, request: Request) -> Response:
        return json_response(
            {"name": "modelloop", "version": __version__, "extensions": ["binary_tensor_data"]}
        )

    async def model_metadata(self, request: Request) -> Response:
        self.server.start()
        try:
            state = self._state(request)
        except ServingError as exc:
            return oip_error_response(exc.status, exc.message)
        body = self.server.slots[state.metadata["name"]].describe(state)
        return json_response(body, headers={"x-model-version": state.version})

    async def model_ready(self, request: Request) -> Response:
        self.server.start()
        try:
            state = self._state(request)
        except ServingError as exc:
            return oip_error_response(exc.status, exc.message)
        return json_response({"name": state.metadata["name"], "ready": True})

    def _state(self, request: Request) -> SlotState:
        params = request.path_params
        return self._lookup(params["model"], params.get("version"))

    def _lookup(self, name: str, version: str | None = None) -> SlotState:
        routing = self.routing
        if routing is not None and name == routing.name:
            # Requests for the deployment decode with its main route's signature.
            return self.server.get(routing.main_slot)
        return self.server.get(name, version)

    def _route(
        self, request: Request, name: str, state: SlotState, data: Any
    ) -> tuple[SlotState, str | None, str]:
        """The state a request is answered by, its deployment route (None outside a
        deployment) and the model name to log."""
        routing = self.routing
        if routing is None or name != routing.name:
            return state, None, name
        choice = routing.choose(request, data)
        return self.server.get(choice.slot), choice.route, choice.model_name

    def _shadow(self, name: str, request_id: str, data: Any) -> None:
        """Send a copy of the request to each shadow route, off the response path;
        their answers are logged, never returned."""
        routing = self.routing
        if routing is None or name != routing.name or not routing.shadows:
            return
        for choice in routing.shadows:
            task = asyncio.get_running_loop().create_task(
                self._run_shadow(choice, request_id, data)
            )
            self._shadows.add(task)
            task.add_done_callback(self._shadows.discard)

    async def _run_shadow(self, choice: RouteChoice, request_id: str, data: Any) -> None:
        started = time.perf_counter()
        try:
            state = self.server.get(choice.slot)
            result = await state.batcher.predict(data, want_proba=False)
        except Exception as exc:  # a shadow must never affect the live traffic
            _log.warning("shadow %r failed: %s", choice.route, exc)
            self._observe(choice.slot, "-", f"shadow:{choice.route}", 500, started)
            return
        self._log_prediction(
            request_id, f"shadow:{choice.route}", choice.model_name, state, data,
            result.predict, started,
        )  # fmt: skip
        self._observe(choice.slot, state.version, f"shadow:{choice.route}", 200, started)

    # -- OIP infer ------------------------------------------------------------------------

    async def infer(self, request: Request) -> Response:
        started = time.perf_counter()
        self.server.start()
        name = request.path_params["model"]
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        state: SlotState | None = None
        try:
            state = self._state(request)
            body = _decompress(await request.body(), request.headers.get("content-encoding"))
            length = request.headers.get("inference-header-content-length")
            req = await _off_loop_if_large(len(body), oip.decode_infer_request, body, length)
            request_id = req.id or request_id
            wanted = req.outputs or [oip.RequestedOutput("predict", req.binary_output)]
            for out in wanted:
                if out.name not in _OUTPUTS:
                    raise BadRequest(
                        f"unknown output '{out.name}'; the model's outputs are "
                        + ", ".join(_OUTPUTS if state.has_proba else _OUTPUTS[:1])
                    )
            want_proba = any(o.name == "predict_proba" for o in wanted)
            if want_proba and not state.has_proba:
                raise BadRequest(f"model '{name}' has no predict_proba output")
            data = oip.to_model_input(req.inputs, state.model.signature)
            state, route, logged_name = self._route(request, name, state, data)
            result = await _predict(state, name, data, want_proba)
            outputs = []
            for out in wanted:
                array = result.predict if out.name == "predict" else result.proba
                assert array is not None  # predict_proba was computed: it was asked for
                outputs.append((out.name, array, out.binary))
            content, header_length = oip.encode_infer_response(
                model_name=name, model_version=state.version, request_id=request_id, outputs=outputs
            )
        except Exception as exc:
            err = exc if isinstance(exc, ServingError) else _internal(exc)
            version = state.version if state is not None else _UNKNOWN
            self._observe(name if state else _UNKNOWN, version, "infer", err.status, started)
            return oip_error_response(err.status, err.message, self._headers(request_id, state))
        headers = self._headers(request_id, state)
        media = "application/json"
        if header_length is not None:
            headers["inference-header-content-length"] = str(header_length)
            media = "application/octet-stream"
        if route is not None:
            headers["x-route"] = route
        self._log_prediction(
            request_id, route or "infer", logged_name, state, data, result.predict, started
        )
        self._observe(name, state.version, "infer", 200, started)
        self._shadow(name, request_id, data)
        return Response(content, headers=headers, media_type=media)

    @staticmethod
    def _headers(request_id: str, state: SlotState | None) -> dict[str, str]:
        headers = {"x-request-id": request_id}
        if state is not None:
            headers["x-model-version"] = state.version
        return headers

    # -- MLflow scoring protocol ----------------------------------------------------------

    async def ping(self, request: Request) -> Response:
        # MLflow's /ping and /health answer a newline with a JSON media type.
        return Response("\n", media_type="application/json")

    async def invocations(self, request: Request) -> Response:
        default = self.routing.name if self.routing is not None else self.server.first.name
        name = request.path_params.get("model", default)
        return await self._invoke(request, name)

    async def _invoke(self, request: Request, name: str) -> Response:
        started = time.perf_counter()
        self.server.start()
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        state: SlotState | None = None
        try:
            try:
                state = self._lookup(name)
            except ServingError as exc:
                raise InvocationError(
                    exc.message, status=404, error_code="RESOURCE_DOES_NOT_EXIST"
                ) from None
            body = await request.body()
            parsed = await _off_loop_if_large(
                len(body), parse_invocation, body, request.headers.get("content-type")
            )
            data = oip.fit_matrix(parsed, state.model.signature)
            state, route, logged_name = self._route(request, name, state, data)
            result = await self._mlflow_predict(state, name, data)
        except Exception as exc:
            err = exc if isinstance(exc, InvocationError) else _internal(exc)
            code = getattr(err, "error_code", "INTERNAL_ERROR")
            version = state.version if state is not None else _UNKNOWN
            self._observe(name if state else _UNKNOWN, version, "invocations", err.status, started)
            headers = self._headers(request_id, state)
            return mlflow_error_response(err.status, code, err.message, headers)
        self._log_prediction(
            request_id, route or "invocations", logged_name, state, data, result, started
        )
        self._observe(name, state.version, "invocations", 200, started)
        self._shadow(name, request_id, data)
        headers = self._headers(request_id, state)
        if route is not None:
            headers["x-route"] = route
        return Response(predictions_body(result), headers=headers, media_type="application/json")

    async def _mlflow_predict(self, state: SlotState, name: str, data: Any) -> Any:
        try:
            return (await _predict(state, name, data, False)).predict
        except BadRequest as exc:  # MLflow's schema enforcement failure
            raise InvocationError(
                f"Failed to enforce schema of data: {exc.message}",
                error_code="INVALID_PARAMETER_VALUE",
            ) from None
        except ModelFailed as exc:
            # MLflow answers a model that raises with 400 BAD_REQUEST and this wording.
            raise InvocationError(
                "Encountered an unexpected error while evaluating the model. Verify that the "
                "serialized input Dataframe is compatible with the model for inference. "
                f"Error: {exc.message}"
            ) from None

    # -- feedback and metrics -------------------------------------------------------------

    async def feedback(self, request: Request) -> Response:
        assert self.logger is not None
        try:
            payload = orjson.loads(await request.body())
        except orjson.JSONDecodeError as exc:
            return oip_error_response(400, f"the request body is not valid JSON: {exc}")
        if not isinstance(payload, dict):
            return oip_error_response(400, "feedback must be a JSON object")
        request_id = payload.get("request_id")
        if not isinstance(request_id, str) or not request_id:
            return oip_error_response(400, "feedback needs 'request_id': a non-empty string")
        if "ground_truth" not in payload:
            return oip_error_response(400, "feedback needs 'ground_truth'")
        self.logger.log_feedback(request_id, payload["ground_truth"], int(time.time() * 1000))
        return json_response({"request_id": request_id})

    async def render_metrics(self, request: Request) -> Response:
        assert self.metrics is not None
        # With several workers rendering reads every worker's files: keep it off the loop.
        body, content_type = await asyncio.to_thread(self.metrics.render)
        return Response(body, headers={"content-type": content_type})


def create_serving_app(
    models: Sequence[ServedModel],
    *,
    logger: PredictionLogger | None = None,
    metrics: ServingMetrics | None = None,
    deployment: str = "default",
    on_shutdown: Callable[[], None] | None = None,
    routing: DeploymentRouting | None = None,
    follower: Callable[[ModelServer, Any], DeploymentFollower] | None = None,
) -> Starlette:
    """An ASGI app serving ``models`` (several allowed; ``/invocations`` serves the first).

    With ``routing`` the app serves a deployment: requests for its name (and plain
    ``/invocations``) take a route chosen per request, shadows get a copy, and
    ``follower`` (called with the server and the handlers) keeps ``routing`` on the
    deployment's live revision.

    ``logger`` gets every successful prediction and enables ``POST /feedback``;
    ``metrics`` counts requests and batches and enables ``GET /metrics``. Alias
    following starts with the app's lifespan (or on the first request when the
    host runs no lifespan); shutdown stops it, closes ``logger`` and calls
    ``on_shutdown``. The
    :class:`~modelloop.serving.slots.ModelServer` is ``app.state.server``.
    """
    server = ModelServer(models, on_batch=None if metrics is None else metrics.batch)
    h = _Handlers(server, logger, metrics, deployment)
    h.routing = routing
    routes = [
        Route("/v2/health/live", h.live, methods=["GET"]),
        Route("/v2/health/ready", h.ready, methods=["GET"]),
        Route("/v2", h.server_metadata, methods=["GET"]),
        Route("/ping", h.ping, methods=["GET"]),
        Route("/health", h.ping, methods=["GET"]),
        Route("/invocations", h.invocations, methods=["POST"]),
        Route("/models/{model}/invocations", h.invocations, methods=["POST"]),
    ]
    for prefix in ("/v2/models/{model}", "/v2/models/{model}/versions/{version}"):
        routes += [
            Route(prefix, h.model_metadata, methods=["GET"]),
            Route(prefix + "/ready", h.model_ready, methods=["GET"]),
            Route(prefix + "/infer", h.infer, methods=["POST"]),
        ]
    if logger is not None:
        routes.append(Route("/feedback", h.feedback, methods=["POST"]))
    if metrics is not None:
        routes.append(Route("/metrics", h.render_metrics, methods=["GET"]))

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        server.start()
        following = (
            asyncio.get_running_loop().create_task(follower(server, h).run())
            if follower is not None
            else None
        )
        try:
            yield
        finally:
            if following is not None:
                following.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await following
            await server.stop()
            if logger is not None:
                await asyncio.to_thread(logger.close)
            if on_shutdown is not None:
                on_shutdown()

    app = Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={404: route_error, 405: route_error}
    )
    app.state.server = server
    app.state.deployment = deployment
    return app


@dataclasses.dataclass(frozen=True)
class ServeConfig:
    """What ``modelloop serve`` serves and how (settings aside): model specs
    (``URI`` or ``NAME=URI``), batching, alias polling and prediction logging."""

    models: tuple[str, ...]
    trusted: bool | None = None
    max_batch_size: int = 0
    max_wait_ms: float = 0.0
    poll_interval: float = 2.0
    log_predictions: bool = True
    sample_rate: float = 1.0
    deployment: str | None = None
    inference_threads: int = 1

    def to_json(self) -> str:
        """The config as JSON (for :data:`SERVE_CONFIG_ENV`)."""
        return orjson.dumps(dataclasses.asdict(self)).decode()

    @classmethod
    def from_json(cls, text: str) -> ServeConfig:
        """Inverse of :meth:`to_json`."""
        data = orjson.loads(text)
        return cls(**{**data, "models": tuple(data["models"])})


def build_serving_app(settings: Settings, config: ServeConfig) -> Starlette:
    """Load every model of ``config`` from the store ``settings`` names and build the app.

    The first model's name names the deployment (for prediction logs). The client
    stays open while the app runs (alias polling uses it) and closes at shutdown.
    """
    from modelloop.serving.metrics import ServingMetrics
    from modelloop.serving.prediction_log import PredictionLogger, predictions_root_for
    from modelloop.serving.slots import load_served_model
    from modelloop.tracking.client import Client

    threads = max(config.inference_threads, 0)
    batching = BatchSettings(config.max_batch_size, config.max_wait_ms, threads)
    client = Client(settings=settings)
    logger = None
    try:
        routing = None
        log_predictions, sample_rate = config.log_predictions, config.sample_rate
        if config.deployment is not None:
            from modelloop.serving.routing import load_deployment

            # The deployment's spec is the source of truth for batching and logging.
            revision = client.get_deployment(config.deployment)
            spec = revision.spec
            batching = BatchSettings(
                spec["batching"]["max_batch_size"], spec["batching"]["max_wait_ms"], threads
            )
            log_predictions = config.log_predictions and spec["logging"]["enabled"]
            sample_rate = spec["logging"]["sample_rate"]
            routing, models = load_deployment(
                client, revision, trusted=config.trusted, batching=batching,
                poll_interval=config.poll_interval,
            )  # fmt: skip
            deployment = config.deployment
        else:
            models = [
                load_served_model(
                    client,
                    spec_text,
                    trusted=config.trusted,
                    batching=batching,
                    poll_interval=config.poll_interval,
                )
                for spec_text in config.models
            ]
            deployment = models[0].name if models else "default"
        if config.inference_threads > 0:
            # Per-request inference gains nothing from OpenMP/BLAS thread pools, whose
            # spinning threads fight the event loop for the cores (measured: a
            # HistGradientBoosting p50 at concurrency 1 went from 4.6 to 1.5 ms).
            # Applied once the models' native libraries are loaded: BLAS pools are
            # per process; OpenMP's count is per thread, so the threads that call the
            # models apply it themselves (BatchSettings.native_threads).
            from threadpoolctl import threadpool_limits

            threadpool_limits(limits=config.inference_threads)
        if log_predictions:
            root = predictions_root_for(settings, ", or pass --no-log-predictions")
            logger = PredictionLogger(root, deployment=deployment, sample_rate=sample_rate)
        follower = None
        if routing is not None:
            from modelloop.serving.routing import DeploymentFollower

            def follower(server: ModelServer, holder: Any) -> DeploymentFollower:
                return DeploymentFollower(
                    client, server, holder, trusted=config.trusted, batching=batching,
                    poll_interval=config.poll_interval,
                )  # fmt: skip

        return create_serving_app(
            models,
            logger=logger,
            metrics=ServingMetrics(),
            deployment=deployment,
            on_shutdown=lambda: _shutdown(client),
            routing=routing,
            follower=follower,
        )
    except BaseException:
        if logger is not None:
            logger.close()
        client.close()
        raise


def _shutdown(client: Any) -> None:
    client.close()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from modelloop.serving.metrics import mark_process_dead

        # This worker's live gauges must not be summed after it is gone.
        mark_process_dead(os.getpid())


def create_serving_app_from_environment() -> Starlette:
    """The factory uvicorn's worker processes import by name (``modelloop serve
    --workers N``): settings from ``MODELLOOP_*`` variables, the rest from
    :data:`SERVE_CONFIG_ENV`."""
    from modelloop.settings import load_settings

    text = os.environ.get(SERVE_CONFIG_ENV)
    if not text:
        raise InvalidArgument(f"{SERVE_CONFIG_ENV} is not set: start workers with modelloop serve")
    app = build_serving_app(load_settings(), ServeConfig.from_json(text))
    tune_gc_for_server()
    return app
