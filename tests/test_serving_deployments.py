"""Serving a deployment on a real uvicorn: canary weights within statistical tolerance,
shadow answers logged but never returned, sticky routing, and the server following new
revisions and rollbacks without a restart."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier

from modelloop import Client
from modelloop.backends.factory import resolve_stores
from modelloop.server.background import BackgroundServer
from modelloop.serving.app import ServeConfig, build_serving_app
from modelloop.serving.prediction_log import predictions_root, read_predictions
from modelloop.settings import Settings

ROW = {"dataframe_split": {"columns": ["x"], "data": [[0.5]]}}


@pytest.fixture
def store(tmp_path: Path) -> Settings:
    """Model 'm': version 1 always answers 0 (champion), version 2 always 1 (challenger)."""
    settings = Settings(
        tracking_uri=str(tmp_path / "store"), capture_git=False, capture_environment=False
    )
    client = Client(settings=settings)
    frame = pd.DataFrame({"x": [0.0, 1.0]})
    run = client.create_run(client.create_experiment("e"))
    for constant in (0, 1):
        model = DummyClassifier(strategy="constant", constant=constant).fit(frame, [0, 1])
        info = client.log_model(run.run_id, model, f"m{constant}", input_example=frame)
        client.register_model(info.model_uri, "m")
    client.set_model_alias("m", "champion", 1)
    client.set_model_alias("m", "challenger", 2)
    client.close()
    return settings


@pytest.fixture
def serve(store: Settings) -> Iterator[Client]:
    """A client on the store; the test deploys, then calls ``start``."""
    client = Client(settings=store)
    yield client
    client.close()


def _start(settings: Settings, name: str) -> BackgroundServer:
    config = ServeConfig(models=(), deployment=name, poll_interval=0.1, max_batch_size=0)
    server = BackgroundServer(build_serving_app(settings, config), lifespan="on")
    server.start()
    return server


def _post(http: httpx.Client, headers: dict[str, str] | None = None) -> tuple[int, str]:
    r = http.post("/invocations", json=ROW, headers=headers or {})
    assert r.status_code == 200, r.text
    return int(r.json()["predictions"][0]), r.headers["x-route"]


def test_canary_split_and_shadow_logging(store: Settings, serve: Client) -> None:
    serve.deploy(
        "churn", "models:/m@champion", canaries=[("models:/m@challenger", 20)],
        shadows=["models:/m/2"],
    )  # fmt: skip
    server = _start(store, "churn")
    n = 600
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            answers = [_post(http) for _ in range(n)]
            oip = http.post(
                "/v2/models/churn/infer",
                json={"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [0.5]}]},
            )
            assert oip.status_code == 200
            assert oip.headers["x-route"] in ("main", "canary")
            # The route slots are addressable on their own too.
            alone = http.post("/models/churn.canary/invocations", json=ROW)
            assert alone.json()["predictions"] == [1]
            time.sleep(0.5)  # let the last shadow copies finish
    finally:
        server.stop()
    # The answer always comes from the chosen route, never from the shadow.
    for value, route in answers:
        assert value == (0 if route == "main" else 1), route
    canary = sum(route == "canary" for _, route in answers)
    assert abs(canary - 0.2 * n) < 4 * math.sqrt(n * 0.2 * 0.8)
    logs = read_predictions(predictions_root(resolve_stores(store.tracking_uri)[1]), "churn")
    assert len(logs) == 2 * (n + 1) + 1  # logged: every request served, every shadow copy
    served = logs[logs["route"].isin(["main", "canary"])]
    shadow = logs[logs["route"] == "shadow:shadow"]
    assert len(served) == n + 1  # the deployment's requests (600 + the OIP one)
    assert len(shadow) == n + 1  # each copied to the shadow, whose answers are only logged
    assert set(shadow["output"]) == {1}
    assert set(served.loc[served["route"] == "main", "output"]) == {0}
    assert set(served["model_name"]) == {"m"}
    assert set(shadow["request_id"]) == set(served["request_id"])
    direct = logs[logs["model_name"] == "churn.canary"]
    assert list(direct["route"]) == ["invocations"]


def test_sticky_routing_by_header(store: Settings, serve: Client) -> None:
    serve.deploy(
        "churn", "models:/m@champion", canaries=[("models:/m@challenger", 50)],
        sticky_key="header:X-User",
    )  # fmt: skip
    server = _start(store, "churn")
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            routes = {
                user: {_post(http, {"X-User": user})[1] for _ in range(5)}
                for user in (f"user-{i}" for i in range(40))
            }
    finally:
        server.stop()
    assert all(len(seen) == 1 for seen in routes.values())  # each user keeps its route
    assert {next(iter(seen)) for seen in routes.values()} == {"main", "canary"}


def test_server_follows_new_revisions_and_rollback(store: Settings, serve: Client) -> None:
    serve.deploy("churn", "models:/m@champion", canaries=[("models:/m@challenger", 50)])
    server = _start(store, "churn")

    def wait_for(predicate: str, http: httpx.Client) -> set[int]:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            seen = {_post(http)[0] for _ in range(30)}
            if (predicate == "only-v2" and seen == {1}) or (
                predicate == "mixed" and seen == {0, 1}
            ):
                return seen
            time.sleep(0.1)
        raise AssertionError(f"the server did not switch ({predicate})")

    failures = 0
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            wait_for("mixed", http)
            serve.deploy("churn", "models:/m/2", reason="challenger wins")
            wait_for("only-v2", http)
            serve.rollback_deployment("churn", reason="too soon")
            wait_for("mixed", http)
            for _ in range(50):  # no request fails around the switches
                failures += http.post("/invocations", json=ROW).status_code != 200
    finally:
        server.stop()
    assert failures == 0
    assert [r.revision for r in serve.deployment_history("churn")] == [1, 2, 3]


def test_serve_command_needs_models_or_a_deployment(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from modelloop.cli.app import app

    result = CliRunner().invoke(app, ["--tracking-uri", str(tmp_path), "serve"])
    assert result.exit_code == 1
    assert "--deployment" in result.output
