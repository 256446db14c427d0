"""Hot reload: a served alias that moves is followed without failing a request."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest

from modelloop.server.background import BackgroundServer
from modelloop.serving.app import create_serving_app
from modelloop.serving.batching import BatchSettings
from modelloop.serving.slots import load_served_model
from modelloop.tracking.client import Client


class Constant:
    """Predicts ``value`` for every row: each version answers differently."""

    def __init__(self, value: int) -> None:
        self.value = value

    def predict(self, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
        return np.full(len(frame), self.value, dtype=np.int64)


class Broken:
    """Loads fine but fails on its own input example: must never be swapped in."""

    def predict(self, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
        raise RuntimeError("broken version")


@pytest.fixture
def store(folder_client: Client) -> Client:
    """A client on a fresh folder store."""
    return folder_client


EXAMPLE = pd.DataFrame({"x": [1.0, 2.0]})
BODY = orjson.dumps({"dataframe_records": [{"x": 1.0}, {"x": 2.0}, {"x": 3.0}]})


def _register(store: Client, model: Any) -> int:
    run = store.create_run()
    info = store.log_model(
        run.run_id,
        model,
        "model",
        flavor="python",
        input_example=EXAMPLE,
        registered_model_name="m",
    )
    assert info.version is not None
    return info.version.version


def _wait_for_version(url: str, version: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.post(url + "/invocations", content=BODY).headers["x-model-version"] == version:
            return
        time.sleep(0.02)
    raise AssertionError(f"version {version} was not served within {timeout} s")


def test_alias_moves_are_followed_without_failures(store: Client) -> None:
    v1 = _register(store, Constant(1))
    v2 = _register(store, Constant(2))
    store.set_model_alias("m", "champion", v1)
    served = load_served_model(
        store,
        "models:/m@champion",
        trusted=True,
        batching=BatchSettings(8, 1.0),
        poll_interval=0.05,
    )
    app = create_serving_app([served])
    results: list[tuple[int, str, Any]] = []
    stop = threading.Event()

    def load(url: str) -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            while not stop.is_set():
                try:
                    r = client.post("/invocations", content=BODY)
                    results.append((r.status_code, r.headers.get("x-model-version", ""), r.json()))
                except httpx.HTTPError as exc:  # a transport failure is a failed request too
                    results.append((0, "", repr(exc)))

    with BackgroundServer(app, lifespan="on") as server:
        threads = [threading.Thread(target=load, args=(server.url,)) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            for move in range(10):
                target = v2 if move % 2 == 0 else v1
                store.set_model_alias("m", "champion", target)
                _wait_for_version(server.url, str(target))
                meta = httpx.get(server.url + "/v2/models/m").json()
                assert meta["versions"] == [str(target)]
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert app.state.server.slots["m"].reloads == 10
    assert len(results) > 50
    failures = [r for r in results if r[0] != 200]
    assert failures == []
    # Every answer came whole from the version its header names.
    for _, version, body in results:
        value = {str(v1): 1, str(v2): 2}[version]
        assert body == {"predictions": [value] * 3}


def test_a_version_that_fails_warm_up_is_not_swapped_in(store: Client) -> None:
    v1 = _register(store, Constant(1))
    broken = _register(store, Broken())  # logging tolerates the failing example
    store.set_model_alias("m", "champion", v1)
    served = load_served_model(store, "models:/m@champion", trusted=True, poll_interval=0.05)
    app = create_serving_app([served])
    with BackgroundServer(app, lifespan="on") as server:
        store.set_model_alias("m", "champion", broken)
        deadline = time.monotonic() + 0.6  # a dozen polls, each retrying the broken version
        while time.monotonic() < deadline:
            r = httpx.post(server.url + "/invocations", content=BODY)
            assert r.headers["x-model-version"] == str(v1)
            assert r.json() == {"predictions": [1, 1, 1]}
        assert app.state.server.slots["m"].reloads == 0
        good = _register(store, Constant(3))
        store.set_model_alias("m", "champion", good)
        _wait_for_version(server.url, str(good))
        assert httpx.post(server.url + "/invocations", content=BODY).json() == {
            "predictions": [3, 3, 3]
        }
