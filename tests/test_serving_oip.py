"""The Open Inference Protocol v2 server, driven by tritonclient (a client we did not write)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import tritonclient.http as httpclient
from sklearn.linear_model import LogisticRegression
from tritonclient.utils import InferenceServerException

from modelloop.models.signature import ColSpec, Signature
from modelloop.server.background import BackgroundServer
from modelloop.serving.app import create_serving_app
from modelloop.serving.batching import BatchSettings
from modelloop.serving.slots import load_served_model
from modelloop.tracking.client import Client


class Exploding:
    """A plain Python model that fails on negative ages (a model bug, not bad input)."""

    def predict(self, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
        if (frame["age"] < 0).any():
            raise RuntimeError("negative age makes this model explode")
        return frame["age"].to_numpy() * 2


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"age": rng.integers(18, 80, 150), "income": rng.normal(5e4, 1.2e4, 150)})
    return frame, (frame["income"] > 5e4).astype(int)


@pytest.fixture
def store(folder_client: Client) -> Client:
    """A client on a fresh folder store."""
    return folder_client


@pytest.fixture
def served(store: Client, data: tuple[pd.DataFrame, pd.Series]) -> Iterator[dict[str, Any]]:
    frame, target = data
    model = LogisticRegression(max_iter=500).fit(frame, target)
    run = store.create_run()
    store.log_model(
        run.run_id, model, "model", input_example=frame.iloc[:5], registered_model_name="churn"
    )
    store.set_model_alias("churn", "champion", 1)
    store.log_model(
        run.run_id,
        Exploding(),
        "exploding",
        flavor="python",
        signature=Signature(inputs=[ColSpec("long", "age"), ColSpec("double", "income")]),
        registered_model_name="boom",
    )
    churn = load_served_model(store, "models:/churn@champion", batching=BatchSettings(16, 1.0))
    boom = load_served_model(store, "models:/boom/1", trusted=True)
    app = create_serving_app([churn, boom])
    with BackgroundServer(app, lifespan="on") as server:
        triton = httpclient.InferenceServerClient(url=server.url.removeprefix("http://"))
        yield {"url": server.url, "triton": triton, "model": churn.model, "frame": frame}
        triton.close()


def _columns(frame: pd.DataFrame, binary: bool) -> list[httpclient.InferInput]:
    age = httpclient.InferInput("age", [len(frame)], "INT64")
    age.set_data_from_numpy(frame["age"].to_numpy(np.int64), binary_data=binary)
    income = httpclient.InferInput("income", [len(frame)], "FP64")
    income.set_data_from_numpy(frame["income"].to_numpy(np.float64), binary_data=binary)
    return [age, income]


def _matrix(frame: pd.DataFrame, binary: bool) -> list[httpclient.InferInput]:
    values = frame[["age", "income"]].to_numpy(np.float64)
    tensor = httpclient.InferInput("input-0", list(values.shape), "FP64")
    tensor.set_data_from_numpy(values, binary_data=binary)
    return [tensor]


def test_health_and_metadata(served: dict[str, Any]) -> None:
    triton = served["triton"]
    assert triton.is_server_live()
    assert triton.is_server_ready()
    assert triton.is_model_ready("churn")
    assert triton.is_model_ready("churn", "1")
    assert not triton.is_model_ready("churn", "7")
    assert not triton.is_model_ready("nope")
    assert "binary_tensor_data" in triton.get_server_metadata()["extensions"]
    meta = triton.get_model_metadata("churn")
    assert meta["name"] == "churn"
    assert meta["versions"] == ["1"]
    assert meta["platform"] == "modelloop-sklearn"
    assert meta["inputs"] == [
        {"name": "age", "datatype": "INT64", "shape": [-1]},
        {"name": "income", "datatype": "FP64", "shape": [-1]},
    ]
    assert [o["name"] for o in meta["outputs"]] == ["predict", "predict_proba"]
    assert meta["outputs"][0]["datatype"] == "INT64"
    params = meta["parameters"]
    assert params["batching"] is True
    assert params["max_batch_size"] == 16
    assert params["max_wait_ms"] == 1.0
    assert params["follows_alias"] is True
    assert triton.get_model_metadata("churn", "1")["name"] == "churn"
    assert triton.get_model_metadata("boom")["platform"] == "modelloop-python"


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize("layout", ["columns", "matrix"])
def test_infer_matches_in_process_predict(
    served: dict[str, Any], binary: bool, layout: str
) -> None:
    frame = served["frame"].iloc[:37]
    inputs = _columns(frame, binary) if layout == "columns" else _matrix(frame, binary)
    outputs = [httpclient.InferRequestedOutput("predict", binary_data=binary)]
    result = served["triton"].infer("churn", inputs, outputs=outputs, request_id="req-42")
    np.testing.assert_array_equal(result.as_numpy("predict"), served["model"].predict(frame))
    response = result.get_response()
    assert response["id"] == "req-42"
    assert response["model_name"] == "churn"
    assert response["model_version"] == "1"
    assert ("data" in response["outputs"][0]) is not binary


def test_infer_with_client_defaults(served: dict[str, Any]) -> None:
    # tritonclient's defaults: binary inputs, no requested outputs, binary_data_output.
    frame = served["frame"].iloc[:5]
    result = served["triton"].infer("churn", _columns(frame, True))
    np.testing.assert_array_equal(result.as_numpy("predict"), served["model"].predict(frame))


@pytest.mark.parametrize("binary", [False, True])
def test_predict_proba_output(served: dict[str, Any], binary: bool) -> None:
    frame = served["frame"].iloc[:9]
    outputs = [
        httpclient.InferRequestedOutput("predict", binary_data=binary),
        httpclient.InferRequestedOutput("predict_proba", binary_data=binary),
    ]
    result = served["triton"].infer("churn", _columns(frame, binary), outputs=outputs)
    np.testing.assert_array_equal(result.as_numpy("predict"), served["model"].predict(frame))
    np.testing.assert_array_equal(
        result.as_numpy("predict_proba"), served["model"].predict_proba(frame)
    )


def test_json_without_content_type_and_request_ids(served: dict[str, Any]) -> None:
    frame = served["frame"].iloc[:3]
    body = {
        "inputs": [
            {"name": "age", "shape": [3], "datatype": "INT64", "data": frame["age"].tolist()},
            {
                "name": "income",
                "shape": [3, 1],
                "datatype": "FP64",
                "data": [[v] for v in frame["income"]],
            },
        ]
    }
    import orjson

    raw = orjson.dumps(body)
    r = httpx.post(served["url"] + "/v2/models/churn/versions/1/infer", content=raw)
    assert r.status_code == 200, r.text
    assert "content-type" not in r.request.headers
    assert r.json()["outputs"][0]["data"] == served["model"].predict(frame).tolist()
    assert r.headers["x-model-version"] == "1"
    generated = r.headers["x-request-id"]
    assert len(generated) == 32
    assert r.json()["id"] == generated
    r = httpx.post(
        served["url"] + "/v2/models/churn/infer", content=raw, headers={"x-request-id": "abc"}
    )
    assert r.headers["x-request-id"] == "abc"
    assert r.json()["id"] == "abc"


def test_unknown_model_and_version_are_404(served: dict[str, Any]) -> None:
    frame = served["frame"].iloc[:2]
    with pytest.raises(InferenceServerException) as err:
        served["triton"].infer("nope", _columns(frame, False))
    assert "model 'nope' is not served" in str(err.value)
    assert err.value.status() == "404"
    r = httpx.get(served["url"] + "/v2/models/churn/versions/2")
    assert r.status_code == 404
    assert "serving version '1'" in r.json()["error"]
    assert httpx.get(served["url"] + "/v2/models/nope").status_code == 404


def _post(url: str, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(url + "/v2/models/churn/infer", content=body, headers=headers)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"inputs": []}', "non-empty list"),
        (
            b'{"inputs": [{"name": "age", "shape": [2], "datatype": "INT64", "data": [1, 2]}]}',
            "missing input 'income'",
        ),
        (
            b'{"inputs": [{"name": "age", "shape": [3], "datatype": "INT64", "data": [1, 2]}]}',
            "shape [3] needs 3",
        ),
        (
            b'{"inputs": [{"name": "age", "shape": [2], "datatype": "INT64", "data": [1.5, 2]}]}',
            "INT64 but its data holds fractional",
        ),
        (
            b'{"inputs": [{"name": "age", "shape": [1], "datatype": "FP64", "data": ["x"]}]}',
            "FP64 but its data holds strings",
        ),
        (
            b'{"inputs": [{"name": "age", "shape": [1], "datatype": "COMPLEX", "data": [1]}]}',
            "datatype 'COMPLEX'",
        ),
        (
            b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1]},'
            b'{"name": "age", "shape": [1], "datatype": "INT64", "data": [1]}]}',
            "unknown input 'x'",
        ),
        (
            b'{"inputs": [{"name": "input-0", "shape": [1, 3], "datatype": "FP64",'
            b' "data": [1, 2, 3]}]}',
            "[N, 2] tensor",
        ),
        (
            b'{"inputs": [{"name": "age", "shape": [1], "datatype": "INT64", "data": [1]},'
            b'{"name": "income", "shape": [1], "datatype": "FP64", "data": [1]}],'
            b' "outputs": [{"name": "scores"}]}',
            "unknown output 'scores'",
        ),
        (
            b'{"inputs": [{"name": "age", "shape": [1], "datatype": "BYTES", "data": ["a"]},'
            b'{"name": "income", "shape": [1], "datatype": "FP64", "data": [1]}]}',
            "column 'age'",
        ),
    ],
)
def test_malformed_requests_are_400(served: dict[str, Any], body: bytes, message: str) -> None:
    r = _post(served["url"], body)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]


def test_bad_binary_sizes_are_400(served: dict[str, Any]) -> None:
    header = (
        b'{"inputs": [{"name": "age", "shape": [2], "datatype": "INT64",'
        b' "parameters": {"binary_data_size": 16}}]}'
    )
    cases = [
        (header + b"\0" * 8, str(len(header)), "only 8 binary bytes remain"),
        (header + b"\0" * 20, str(len(header)), "4 binary bytes that no input"),
        (header + b"\0" * 16, "9999", "Inference-Header-Content-Length is 9999"),
        (header + b"\0" * 16, "abc", "must be an integer"),
    ]
    for body, length, message in cases:
        r = _post(served["url"], body, {"inference-header-content-length": length})
        assert r.status_code == 400, r.text
        assert message in r.json()["error"]
    wrong = header.replace(b"16", b"12") + b"\0" * 12
    r = _post(served["url"], wrong, {"inference-header-content-length": str(len(header))})
    assert r.status_code == 400
    assert "needs 16 bytes" in r.json()["error"]


def test_signature_mismatch_surfaces_in_tritonclient(served: dict[str, Any]) -> None:
    tensor = httpclient.InferInput("input-0", [2, 3], "FP64")
    tensor.set_data_from_numpy(np.zeros((2, 3)))
    with pytest.raises(InferenceServerException) as err:
        served["triton"].infer("churn", [tensor])
    assert err.value.status() == "400"
    assert "[N, 2] tensor" in str(err.value)


def test_model_failure_is_500_and_server_keeps_serving(served: dict[str, Any]) -> None:
    good = pd.DataFrame({"age": [3, 4], "income": [1.0, 2.0]})
    result = served["triton"].infer("boom", _columns(good, False))
    np.testing.assert_array_equal(result.as_numpy("predict"), [6, 8])
    bad = pd.DataFrame({"age": [3, -4], "income": [1.0, 2.0]})
    with pytest.raises(InferenceServerException) as err:
        served["triton"].infer("boom", _columns(bad, False))
    assert err.value.status() == "500"
    assert "negative age makes this model explode" in str(err.value)
    frame = served["frame"].iloc[:4]
    result = served["triton"].infer("churn", _columns(frame, True))
    np.testing.assert_array_equal(result.as_numpy("predict"), served["model"].predict(frame))
    assert served["triton"].is_server_ready()


def test_unknown_routes_answer_json(served: dict[str, Any]) -> None:
    r = httpx.get(served["url"] + "/v2/nothing/here")
    assert r.status_code == 404
    assert "/v2/nothing/here" in r.json()["error"]
    r = httpx.get(served["url"] + "/v2/models/churn/infer")
    assert r.status_code == 405
    assert "error" in r.json()


@pytest.mark.parametrize("binary", [False, True])
def test_string_columns_and_labels_travel_as_bytes(store: Client, binary: bool) -> None:
    from sklearn.compose import make_column_transformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    frame = pd.DataFrame(
        {"age": [20, 30, 40, 50, 60, 70] * 5, "city": ["paris", "lyon", "nice"] * 10}
    )
    labels = np.where(frame["city"] == "nice", "yes", "no")
    model = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["city"]), remainder="passthrough"),
        LogisticRegression(),
    ).fit(frame, labels)
    run = store.create_run()
    store.log_model(run.run_id, model, "cities", input_example=frame.iloc[:3])
    served = load_served_model(store, f"runs:/{run.run_id}/cities", trusted=True)
    with BackgroundServer(create_serving_app([served]), lifespan="on") as server:
        triton = httpclient.InferenceServerClient(url=server.url.removeprefix("http://"))
        meta = triton.get_model_metadata("cities")
        assert {"name": "city", "datatype": "BYTES", "shape": [-1]} in meta["inputs"]
        assert meta["outputs"][0]["datatype"] == "BYTES"
        rows = frame.iloc[:6]
        age = httpclient.InferInput("age", [6], "INT64")
        age.set_data_from_numpy(rows["age"].to_numpy(np.int64), binary_data=binary)
        city = httpclient.InferInput("city", [6], "BYTES")
        city.set_data_from_numpy(rows["city"].to_numpy(object), binary_data=binary)
        out = [httpclient.InferRequestedOutput("predict", binary_data=binary)]
        result = triton.infer("cities", [age, city], outputs=out)
        got = [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("predict")]
        assert got == served.model.predict(rows).tolist()
        triton.close()


def test_a_server_bug_is_a_json_500(
    served: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import modelloop.serving.oip as codec

    def broken(**kwargs: Any) -> tuple[bytes, int | None]:
        raise KeyError("encoder bug")

    monkeypatch.setattr(codec, "encode_infer_response", broken)
    frame = served["frame"].iloc[:2]
    with pytest.raises(InferenceServerException) as err:
        served["triton"].infer("churn", _columns(frame, False))
    assert err.value.status() == "500"
    assert "internal error: KeyError" in str(err.value)
    monkeypatch.undo()
    result = served["triton"].infer("churn", _columns(frame, False))
    np.testing.assert_array_equal(result.as_numpy("predict"), served["model"].predict(frame))


@pytest.mark.parametrize(
    "columns",
    [
        {"a": np.array([1.5, 2.0]), "b": np.array([3.0, -4.0])},
        {"a": np.array([1, 2]), "b": np.array([3, 4])},
        {"a": np.array([1, 2]), "b": np.array([3.0, 4.5])},  # two dtypes: per column
        {"a": np.array(["x", "y"], dtype=object), "b": np.array([1.0, 2.0])},
    ],
)
def test_named_column_tensors_make_the_frame_pandas_makes(
    columns: dict[str, np.ndarray],
) -> None:
    from modelloop.serving.oip import InputTensor, to_model_input

    tensors = [
        InputTensor(name=name, datatype="FP64", array=values) for name, values in columns.items()
    ]
    pd.testing.assert_frame_equal(to_model_input(tensors, None), pd.DataFrame(columns))
