"""MLflow's scoring protocol (/invocations) on the inference server, plus the
prediction log, feedback and metrics routes."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from modelloop.models.signature import ColSpec, Signature
from modelloop.server.background import BackgroundServer
from modelloop.serving.app import create_serving_app
from modelloop.serving.metrics import ServingMetrics
from modelloop.serving.prediction_log import PredictionLogger, read_feedback, read_predictions
from modelloop.serving.slots import load_served_model
from modelloop.tracking.client import Client

with warnings.catch_warnings():
    # mlflow.pyfunc warns about its own type hints at import time; not ours to fix.
    warnings.simplefilter("ignore")
    import mlflow.pyfunc
    import mlflow.sklearn


class Exploding:
    """Fails on negative ages: a bug in the model, not bad input."""

    def predict(self, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
        if (frame["age"] < 0).any():
            raise RuntimeError("negative age makes this model explode")
        return frame["age"].to_numpy() * 2


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"age": rng.integers(18, 80, 120), "income": rng.normal(5e4, 1e4, 120)})
    return frame, (frame["income"] > 5e4).astype(int)


@pytest.fixture
def store(folder_client: Client) -> Client:
    """A client on a fresh folder store."""
    return folder_client


@pytest.fixture
def served(
    store: Client, data: tuple[pd.DataFrame, pd.Series], tmp_path: Path
) -> Iterator[dict[str, Any]]:
    frame, target = data
    run = store.create_run()
    model = LogisticRegression(max_iter=500).fit(frame, target)
    store.log_model(run.run_id, model, "churn", input_example=frame.iloc[:3])
    store.log_model(
        run.run_id,
        Exploding(),
        "boom",
        flavor="python",
        signature=Signature(inputs=[ColSpec("long", "age"), ColSpec("double", "income")]),
    )
    churn = load_served_model(store, f"runs:/{run.run_id}/churn")
    boom = load_served_model(store, f"exploder=runs:/{run.run_id}/boom", trusted=True)
    logger = PredictionLogger(str(tmp_path / "predictions"), deployment="churn")
    metrics = ServingMetrics()
    app = create_serving_app([churn, boom], logger=logger, metrics=metrics, deployment="churn")
    with BackgroundServer(app, lifespan="on") as server:
        yield {
            "run_id": run.run_id,
            "url": server.url,
            "model": churn.model,
            "frame": frame,
            "logger": logger,
            "root": str(tmp_path / "predictions"),
        }


def _json(url: str, payload: Any, path: str = "/invocations") -> httpx.Response:
    return httpx.post(
        url + path,
        content=orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY),
        headers={"content-type": "application/json"},
    )


def test_every_request_format(served: dict[str, Any]) -> None:
    frame = served["frame"].iloc[:11]
    url = served["url"]
    expected = served["model"].predict(frame).tolist()
    split = orjson.loads(frame.to_json(orient="split", index=False))
    records = frame.to_dict(orient="records")
    columns = {c: frame[c].tolist() for c in frame.columns}
    bodies = [
        {"dataframe_split": split},
        {"dataframe_split": {**split, "index": list(range(11))}},
        {"dataframe_records": records},
        {"instances": records},
        {"inputs": columns},
        {"inputs": frame.to_numpy().tolist()},
        {"instances": frame.to_numpy().tolist()},
        {"dataframe_split": split, "params": {"ignored": 1}},
    ]
    for body in bodies:
        r = _json(url, body)
        assert r.status_code == 200, (body, r.text)
        assert r.json() == {"predictions": expected}
        assert r.headers["x-model-version"] == served["run_id"]
    csv = httpx.post(
        url + "/invocations",
        content=frame.to_csv(index=False),
        headers={"content-type": "text/csv; charset=utf-8"},
    )
    assert csv.status_code == 200, csv.text
    assert csv.json() == {"predictions": expected}
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    parquet = httpx.post(
        url + "/invocations",
        content=buffer.getvalue(),
        headers={"content-type": "application/vnd.apache.parquet"},
    )
    assert parquet.json() == {"predictions": expected}
    # No Content-Type at all is read as JSON (MLflow would fail with a 500).
    bare = httpx.post(url + "/invocations", content=orjson.dumps({"dataframe_records": records}))
    assert bare.json() == {"predictions": expected}


def test_named_model_route_and_health(served: dict[str, Any]) -> None:
    url = served["url"]
    body = {"dataframe_records": [{"age": 3, "income": 1.0}, {"age": 5, "income": 2.0}]}
    r = _json(url, body, "/models/exploder/invocations")
    assert r.json() == {"predictions": [6, 10]}
    r = _json(url, body, "/models/nope/invocations")
    assert r.status_code == 404
    assert r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    for path in ("/ping", "/health"):
        assert httpx.get(url + path).status_code == 200


@pytest.mark.parametrize(
    ("content", "content_type", "status", "code", "message"),
    [
        (b"{bad json", "application/json", 400, "BAD_REQUEST", "valid JSON formatted string"),
        (b"[1, 2]", "application/json", 400, "BAD_REQUEST", "Received a list"),
        (b'"text"', "application/json", 400, "BAD_REQUEST", "unexpected input type"),
        (b"{}", "application/json", 400, "BAD_REQUEST", "exactly one of the input fields"),
        (
            b'{"inputs": [1], "instances": [1]}',
            "application/json",
            400,
            "BAD_REQUEST",
            "exactly one of the input fields",
        ),
        (b'{"dataframe_split": [1]}', None, 400, "BAD_REQUEST", "must be a dictionary"),
        (b'{"dataframe_split": {"columns": ["age"]}}', None, 400, "BAD_REQUEST", "'data' field"),
        (
            b'{"dataframe_split": {"columns": ["a", "b"], "data": [[1]]}}',
            None,
            400,
            "BAD_REQUEST",
            "not a valid representation",
        ),
        (b'{"dataframe_records": {"age": 1}}', None, 400, "BAD_REQUEST", "list of records"),
        (b'{"instances": [[1, 2], [3]]}', None, 400, "BAD_REQUEST", "ragged"),
        (b'{"inputs": 5}', None, 400, "BAD_REQUEST", "list or a dictionary"),
        (
            b'{"dataframe_records": [{"age": "old", "income": 1.0}]}',
            None,
            400,
            "INVALID_PARAMETER_VALUE",
            "column 'age'",
        ),
        (
            b'{"dataframe_records": [{"age": 1}]}',
            None,
            400,
            "INVALID_PARAMETER_VALUE",
            "missing column 'income'",
        ),
        (b"age,income\n1,2\n", "text/plain", 415, "BAD_REQUEST", "only supports"),
        (b"age,income\n1,2\n", "text/csv; charset=latin-1", 415, "BAD_REQUEST", "UTF-8"),
        (b"age,wrong\n1,2\n", "text/csv", 400, "INVALID_PARAMETER_VALUE", "missing column"),
        (b"\x00\x01garbage", "application/vnd.apache.parquet", 400, "BAD_REQUEST", "Parquet"),
    ],
)
def test_malformed_bodies_are_4xx_json(
    served: dict[str, Any],
    content: bytes,
    content_type: str | None,
    status: int,
    code: str,
    message: str,
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    r = httpx.post(served["url"] + "/invocations", content=content, headers=headers)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error_code"] == code
    assert message in body["message"]


def test_model_failure_is_mlflow_bad_request_and_server_keeps_serving(
    served: dict[str, Any],
) -> None:
    url = served["url"]
    r = _json(
        url, {"dataframe_records": [{"age": -1, "income": 1.0}]}, "/models/exploder/invocations"
    )
    assert r.status_code == 400  # what MLflow's scoring server answers when the model raises
    assert r.json()["error_code"] == "BAD_REQUEST"
    assert "negative age makes this model explode" in r.json()["message"]
    ok = _json(url, {"dataframe_records": served["frame"].iloc[:2].to_dict(orient="records")})
    assert ok.status_code == 200


def test_predictions_feedback_and_metrics(served: dict[str, Any]) -> None:
    url = served["url"]
    frame = served["frame"].iloc[:4]
    r = httpx.post(
        url + "/invocations",
        headers={"x-request-id": "rq-1"},
        content=orjson.dumps({"dataframe_records": frame.to_dict(orient="records")}),
    )
    assert r.headers["x-request-id"] == "rq-1"
    infer = {
        "id": "rq-2",
        "inputs": [
            {"name": "age", "datatype": "INT64", "shape": [1], "data": [30]},
            {"name": "income", "datatype": "FP64", "shape": [1], "data": [1.0]},
        ],
    }
    assert (
        httpx.post(url + "/v2/models/churn/infer", content=orjson.dumps(infer)).status_code == 200
    )
    fb = httpx.post(
        url + "/feedback",
        content=orjson.dumps({"request_id": "rq-1", "ground_truth": [1, 0, 1, 1]}),
    )
    assert fb.status_code == 200, fb.text
    for bad in (b"nope", b"[]", b'{"ground_truth": 1}', b'{"request_id": "x"}'):
        assert httpx.post(url + "/feedback", content=bad).status_code == 400
    served["logger"].flush()
    logged = read_predictions(served["root"], "churn")
    assert set(logged["request_id"]) == {"rq-1", "rq-2"}
    assert sorted(logged["route"].unique()) == ["infer", "invocations"]
    assert len(logged[logged["request_id"] == "rq-1"]) == 4
    assert set(read_feedback(served["root"], "churn")["request_id"]) == {"rq-1"}
    text = httpx.get(url + "/metrics").text
    assert 'route="invocations"' in text
    assert 'route="infer"' in text
    assert "modelloop_batch_size" in text


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _Cli:
    """``modelloop serve ...`` in a subprocess on a free port, until the context ends."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "MODELLOOP_TRACKING_URI": str(tmp_path / "store")}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        command = "from modelloop.cli.app import main; main()"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", command, "serve", *args, "--port", str(self.port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

    def __enter__(self) -> _Cli:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(self.url + "/ping").status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                output = self.proc.stdout.read() if self.proc.stdout else b""
                raise AssertionError(f"modelloop serve did not start: {output!r}")
            time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        if self.proc.stdout:
            self.proc.stdout.close()


def _save_mlflow_model(data: tuple[pd.DataFrame, pd.Series], folder: Path) -> Any:
    frame, target = data
    model = LogisticRegression(max_iter=500).fit(frame, target)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mlflow's own deprecation chatter
        mlflow.sklearn.save_model(
            model, str(folder), input_example=frame.head(3), pip_requirements=["scikit-learn"]
        )
        return mlflow.pyfunc.load_model(str(folder))


def test_cli_serves_an_mlflow_folder_like_mlflow(
    data: tuple[pd.DataFrame, pd.Series], tmp_path: Path
) -> None:
    frame = data[0].iloc[:20]
    folder = tmp_path / "mlflow-model"
    expected = _save_mlflow_model(data, folder).predict(frame)
    with _Cli(tmp_path, str(folder), "--trusted", "--no-log-predictions") as cli:
        r = httpx.post(
            cli.url + "/invocations",
            content=frame.to_csv(index=False),
            headers={"content-type": "text/csv"},
        )
        assert r.status_code == 200, r.text
        np.testing.assert_array_equal(np.asarray(r.json()["predictions"]), expected)
        meta = httpx.get(cli.url + "/v2/models/mlflow-model").json()
        assert meta["platform"] == "modelloop-sklearn"


@pytest.mark.slow
def test_cli_workers_share_metrics_and_log_predictions(
    data: tuple[pd.DataFrame, pd.Series], tmp_path: Path
) -> None:
    frame = data[0].iloc[:5]
    folder = tmp_path / "churn"
    expected = _save_mlflow_model(data, folder).predict(frame).tolist()
    args = (f"m={folder}", "--trusted", "--workers", "2", "--max-batch-size", "32")
    with _Cli(tmp_path, *args) as cli:
        body = orjson.dumps({"dataframe_records": frame.to_dict(orient="records")})
        for _ in range(40):  # new connections: spread over both workers
            r = httpx.post(cli.url + "/models/m/invocations", content=body)
            assert r.json() == {"predictions": expected}
        text = httpx.get(cli.url + "/metrics").text
        assert 'modelloop_requests_total{model="m",route="invocations",status="200"' in text
        line = next(x for x in text.splitlines() if x.startswith("modelloop_requests_total{"))
        assert float(line.rsplit(" ", 1)[1]) == 40.0  # every worker's requests, summed
    logged = read_predictions(str(tmp_path / "store" / "artifacts" / "predictions"), "m")
    assert len(logged) == 40 * len(frame)


def test_cli_refuses_public_hosts_and_bad_uris(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from modelloop.cli.app import app

    store = ["--tracking-uri", str(tmp_path / "store")]
    result = CliRunner().invoke(app, [*store, "serve", "models:/m@x", "--host", "0.0.0.0"])
    assert result.exit_code == 1
    assert "refusing to listen on 0.0.0.0" in result.output
    result = CliRunner().invoke(app, [*store, "serve", "models:/nope@champion"])
    assert result.exit_code == 1
    assert "nope" in result.output
    result = CliRunner().invoke(app, [*store, "serve", str(tmp_path / "missing")])
    assert result.exit_code == 1
    assert "does not exist" in result.output


@pytest.mark.parametrize(
    "split",
    [
        {"columns": ["a", "b"], "data": [[1.5, 2.0], [3.25, -4.0]]},
        {"columns": ["a", "b"], "data": [[1, 2], [3, -4]]},
        {"columns": ["a", "b"], "data": [[1, 2.5], [3, 4.0]]},  # int and float columns
        {"columns": ["a", "b"], "data": [[True, 1.0]]},
        {"columns": ["a", "b"], "data": [["x", 1.0]]},
        {"columns": ["a", "b"], "data": [[None, 1.0], [2.0, 3.0]]},
        {"data": [[1.0, 2.0]]},
        {"columns": ["a", "b"], "data": [[1.0, 2.0]], "index": [7]},
        {"columns": ["a"], "data": [[2**63 + 1]]},
        {"columns": [1, 2], "data": [[1.0, 2.0]]},
    ],
)
def test_dataframe_split_frames_equal_pandas_own_construction(split: dict[str, Any]) -> None:
    import orjson

    from modelloop.serving.invocations import parse_invocation

    body = orjson.dumps({"dataframe_split": split})
    parsed = parse_invocation(body, "application/json")
    expected = pd.DataFrame(
        data=split["data"], columns=split.get("columns"), index=split.get("index")
    )
    pd.testing.assert_frame_equal(parsed, expected)


def test_ragged_dataframe_split_is_still_a_named_400() -> None:
    from modelloop.serving.invocations import InvocationError, parse_invocation

    with pytest.raises(InvocationError, match="dataframe_split"):
        parse_invocation(
            b'{"dataframe_split": {"columns": ["a", "b"], "data": [[1.0], [2.0, 3.0]]}}', None
        )
