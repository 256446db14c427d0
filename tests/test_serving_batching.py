"""Adaptive batching: concurrent requests merged into one predict call, each caller
getting exactly its own rows back."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest

from modelloop.models.signature import ColSpec, Signature
from modelloop.server.background import BackgroundServer
from modelloop.serving.app import create_serving_app
from modelloop.serving.batching import BatchSettings
from modelloop.serving.metrics import ServingMetrics
from modelloop.serving.slots import ServedModel, load_served_model
from modelloop.tracking.client import Client


class Echo:
    """Predicts ``rid * 10 + 1``: every prediction names its row, so a mix-up shows."""

    def predict(self, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
        if (frame["rid"] < 0).any():
            raise RuntimeError("negative ids crash the model")
        return frame["rid"].to_numpy() * 10 + 1


@pytest.fixture
def store(folder_client: Client) -> Client:
    """A client on a fresh folder store."""
    return folder_client


def _serve(store: Client, batching: BatchSettings) -> tuple[ServedModel, ServingMetrics, Any]:
    run = store.create_run()
    store.log_model(
        run.run_id,
        Echo(),
        "echo",
        flavor="python",
        signature=Signature(inputs=[ColSpec("long", "rid"), ColSpec("double", "x")]),
    )
    model = load_served_model(store, f"runs:/{run.run_id}/echo", trusted=True, batching=batching)
    metrics = ServingMetrics()
    return model, metrics, create_serving_app([model], metrics=metrics)


def _infer_body(ids: list[int]) -> bytes:
    return orjson.dumps(
        {
            "inputs": [
                {"name": "rid", "datatype": "INT64", "shape": [len(ids)], "data": ids},
                {"name": "x", "datatype": "FP64", "shape": [len(ids)], "data": [0.5] * len(ids)},
            ]
        }
    )


async def _fire(url: str, requests: list[list[int]], bad: set[int]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def one(i: int, ids: list[int]) -> httpx.Response:
            if i in bad and i % 2 == 0:  # fails the signature: a string id
                body = orjson.dumps({"dataframe_records": [{"rid": "x", "x": 1.0}]})
                return await client.post("/invocations", content=body)
            if i in bad:  # crashes the model itself
                return await client.post("/v2/models/echo/infer", content=_infer_body([-1]))
            if i % 2:
                return await client.post("/v2/models/echo/infer", content=_infer_body(ids))
            records = [{"rid": r, "x": 0.5} for r in ids]
            return await client.post(
                "/invocations", content=orjson.dumps({"dataframe_records": records})
            )

        return await asyncio.gather(*(one(i, ids) for i, ids in enumerate(requests)))


def _requests(count: int) -> list[list[int]]:
    rng = np.random.default_rng(11)
    out, next_id = [], 0
    for _ in range(count):
        size = int(rng.integers(1, 21))
        out.append(list(range(next_id, next_id + size)))
        next_id += size
    return out


def test_concurrent_requests_are_merged_and_split_back(store: Client) -> None:
    _model, metrics, app = _serve(store, BatchSettings(max_batch_size=64, max_wait_ms=5.0))
    requests = _requests(200)
    bad = {17, 40, 41, 120, 133}
    with BackgroundServer(app, lifespan="on") as server:
        responses = asyncio.run(_fire(server.url, requests, bad))
        meta = httpx.get(server.url + "/v2/models/echo").json()["parameters"]
    for i, (ids, response) in enumerate(zip(requests, responses, strict=True)):
        expected = [r * 10 + 1 for r in ids]
        if i in bad:
            assert response.status_code == (400 if i % 2 == 0 else 500), response.text
            continue
        assert response.status_code == 200, response.text
        if i % 2:
            assert response.json()["outputs"][0]["data"] == expected
        else:
            assert response.json() == {"predictions": expected}
    batcher = app.state.server.slots["echo"].state.batcher
    assert batcher.requests == 200 - 2  # the signature failures never reach predict
    assert batcher.largest_batch > 1
    assert batcher.batches < batcher.requests
    assert meta["batching"] is True
    assert meta["max_batch_size"] == 64
    assert meta["largest_batch"] == batcher.largest_batch
    text = metrics.render()[0].decode()
    assert 'modelloop_batch_size_count{model="echo"' in text


def test_batches_never_exceed_max_rows(store: Client) -> None:
    seen: list[int] = []
    _model, _, app = _serve(store, BatchSettings(max_batch_size=25, max_wait_ms=20.0))
    batcher = app.state.server.slots["echo"].state.batcher
    batcher.on_batch = seen.append
    with BackgroundServer(app, lifespan="on") as server:
        responses = asyncio.run(_fire(server.url, _requests(60), set()))
    assert all(r.status_code == 200 for r in responses)
    assert max(seen) <= 25
    assert sum(seen) == sum(len(ids) for ids in _requests(60))
    assert batcher.largest_batch > 1


def test_batching_off_predicts_each_request_alone(store: Client) -> None:
    _model, _, app = _serve(store, BatchSettings(max_batch_size=1))
    with BackgroundServer(app, lifespan="on") as server:
        responses = asyncio.run(_fire(server.url, _requests(40), {3}))
        meta = httpx.get(server.url + "/v2/models/echo").json()["parameters"]
    assert [r.status_code for r in responses].count(200) == 39
    batcher = app.state.server.slots["echo"].state.batcher
    assert batcher.largest_batch == 1
    assert batcher.batches == 40
    assert meta["batching"] is False


def test_the_threads_that_call_the_model_cap_their_own_openmp_pool() -> None:
    # OpenMP's thread count is per thread: a cap set in the main thread does not
    # reach the batcher thread that calls predict.
    from threadpoolctl import threadpool_info

    from modelloop.serving.batching import limit_native_threads

    seen: dict[str, list[int]] = {}

    def probe(name: str, limit: int) -> None:
        limit_native_threads(limit)
        seen[name] = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "openmp"]

    import threading

    import sklearn.ensemble  # noqa: F401  (loads the OpenMP runtime)

    for name, limit in (("capped", 1), ("default", 0)):
        worker = threading.Thread(target=probe, args=(name, limit))
        worker.start()
        worker.join()
    if not seen["default"]:
        pytest.skip("no OpenMP runtime loaded")
    assert set(seen["capped"]) == {1}
