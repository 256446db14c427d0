"""The tracking server itself: error shapes, streaming, the schema, the CLI command.

The tracking behaviour is tested through ``Client`` in test_tracking.py and
test_client_extras.py, over both transports; these tests are about HTTP. They
use the session's real uvicorn (``live_server`` in conftest.py) with a fresh
store per test, raw HTTP where the client would tidy up a request, and
``httpx.MockTransport`` where the server would have to misbehave.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import random
import signal
import socket
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import pytest
from typer.testing import CliRunner

from modelloop.backends import Backend, LocalBackend, open_backend
from modelloop.backends.http import HttpBackend
from modelloop.cli.app import app as cli_app
from modelloop.entities import Metric, RunStatus
from modelloop.errors import (
    DataCorrupted,
    InvalidArgument,
    InvalidState,
    NotFound,
    StoreUnavailable,
)
from modelloop.server import create_app
from modelloop.server.routes.artifacts import SMALL_FILE
from modelloop.settings import Settings

if TYPE_CHECKING:
    from conftest import LiveServer

MISSING_RUN = "0123456789abcdef0123456789abcdef"
MB = 1024 * 1024


@pytest.fixture
def api(server_url: str) -> Iterator[httpx.Client]:
    """A plain HTTP client of the test server's API."""
    with httpx.Client(base_url=f"{server_url}/api/v1") as c:
        yield c


@pytest.fixture
def remote(server_url: str) -> Iterator[HttpBackend]:
    backend = HttpBackend(server_url)
    yield backend
    backend.close()


@pytest.fixture
def run_id(remote: HttpBackend) -> str:
    return remote.create_run("0").run_id


def _error(response: httpx.Response | http.client.HTTPResponse, status: int) -> dict[str, Any]:
    """The JSON error body of a response, after checking its status and content type."""
    if isinstance(response, http.client.HTTPResponse):
        code = response.status
    else:
        code = response.status_code
    raw = response.read()
    assert code == status, raw
    assert response.headers["content-type"] == "application/json"
    body = json.loads(raw)
    assert set(body) <= {"error_code", "message", "details"}
    return body


# error responses -------------------------------------------------------------------


def test_malformed_json_is_a_400_json_error(api: httpx.Client) -> None:
    r = api.post("/experiments", content=b'{"name": ', headers={"content-type": "application/json"})
    body = _error(r, 400)
    assert body["error_code"] == "INVALID_ARGUMENT"
    assert "not JSON" in body["message"]


def test_a_body_without_json_content_type_says_so(api: httpx.Client) -> None:
    r = api.post("/experiments", content=b'{"name": "x"}', headers={"content-type": "text/plain"})
    assert "Content-Type: application/json" in _error(r, 400)["message"]


@pytest.mark.parametrize(
    ("method", "path", "payload", "field", "words"),
    [
        ("POST", "/experiments", {"name": 5}, "body.name", "valid string"),
        ("POST", "/experiments", {"name": "x", "colour": "red"}, "body.colour", "not permitted"),
        ("POST", "/runs", {}, "body.experiment_id", "Field required"),
        ("POST", "/runs/search", {"experiment_ids": "0"}, "body.experiment_ids", "valid list"),
        (
            "POST",
            "/runs/{run}/batch",
            {"metrics": [{"key": "m", "value": "high", "timestamp": 1}]},
            "body.metrics[0].value",
            "valid number",
        ),
        (
            "POST",
            "/runs/{run}/batch",
            {"metrics": [{"key": "m", "value": 1, "timestamp": 1.5}]},
            "body.metrics[0].timestamp",
            "valid integer",
        ),
        (
            "POST",
            "/runs/{run}/batch",
            {"params": [{"key": "p", "value": 1}]},
            "body.params[0].value",
            "valid string",
        ),
        ("PATCH", "/runs/{run}", {"status": "DONE"}, "body.status", "RUNNING"),
        ("GET", "/experiments?view_type=some", None, "query.view_type", "active_only"),
    ],
)
def test_wrong_types_and_missing_fields_name_the_field(
    api: httpx.Client,
    run_id: str,
    method: str,
    path: str,
    payload: dict[str, Any] | None,
    field: str,
    words: str,
) -> None:
    r = api.request(method, path.format(run=run_id), json=payload)
    body = _error(r, 400)
    assert body["error_code"] == "INVALID_ARGUMENT"
    assert field in body["message"] and words in body["message"], body["message"]
    assert body["details"]["errors"][0]["field"] == field


def test_unknown_route_and_wrong_method_are_json(api: httpx.Client, server_url: str) -> None:
    body = _error(api.get("/no/such/thing"), 404)
    assert body == {"error_code": "NOT_FOUND", "message": body["message"]}
    assert "/api/v1/no/such/thing" in body["message"]
    _error(httpx.get(f"{server_url}/"), 404)
    r = api.delete("/experiments")
    assert _error(r, 405)["error_code"] == "METHOD_NOT_ALLOWED"
    assert r.headers["allow"] == "POST" or "GET" in r.headers["allow"]


def test_unknown_run_is_404_and_a_malformed_id_is_400(api: httpx.Client) -> None:
    body = _error(api.get(f"/runs/{MISSING_RUN}"), 404)
    assert body["error_code"] == "NOT_FOUND"
    assert MISSING_RUN in body["message"]
    assert _error(api.get("/runs/not-a-run"), 400)["error_code"] == "INVALID_ARGUMENT"
    assert _error(api.get("/experiments/99999"), 404)["error_code"] == "NOT_FOUND"


def test_error_details_come_back_on_the_typed_exception(remote: HttpBackend, run_id: str) -> None:
    with pytest.raises(NotFound, match=r"missing\.txt") as info:
        remote.open_artifact(run_id, "missing.txt")
    assert info.value.details == {"run_id": run_id, "path": "missing.txt"}


class _Broken(LocalBackend):
    def get_run(self, run_id: str) -> Any:
        raise RuntimeError("secret internals")


def test_an_unexpected_error_is_a_logged_500_without_traceback(
    live_server: LiveServer, folder_store: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    real = open_backend(folder_store)
    assert isinstance(real, LocalBackend)
    broken = _Broken(real.db, real.blobs)
    with live_server.mount(create_app(folder_store, broken)) as url:
        r = httpx.get(f"{url}/api/v1/runs/{MISSING_RUN}")
    broken.close()
    body = _error(r, 500)
    assert body["error_code"] == "INTERNAL_ERROR"
    assert "secret" not in r.text and "Traceback" not in r.text
    logged = [rec for rec in caplog.records if rec.name == "modelloop.server"]
    assert logged and logged[0].exc_info is not None
    assert "secret internals" in str(logged[0].exc_info[1])


# artifacts -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw_path",
    [
        "../../etc/passwd",
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "..%2F..%2Fetc%2Fpasswd",
        "a/%2E%2E/%2E%2E/b",
        "%2Fetc%2Fpasswd",
        "a%5Cb",
    ],
)
@pytest.mark.parametrize("method", ["PUT", "GET"])
def test_artifact_path_traversal_is_a_400(
    server_url: str, remote: HttpBackend, run_id: str, raw_path: str, method: str
) -> None:
    # http.client sends the path as written: httpx would resolve "../" itself.
    url = urlsplit(server_url)
    conn = http.client.HTTPConnection(url.hostname or "", url.port)
    try:
        conn.request(method, f"{url.path}/api/v1/runs/{run_id}/artifacts/{raw_path}", body=b"x")
        body = _error(conn.getresponse(), 400)
    finally:
        conn.close()
    assert body["error_code"] == "INVALID_ARGUMENT"
    assert "artifact path" in body["message"]
    assert remote.list_artifacts(run_id) == []


def test_keys_and_paths_reach_the_server_exactly(remote: HttpBackend, run_id: str) -> None:
    # Without escaping, "." and ".." segments would be resolved away by the HTTP client.
    remote.log_batch(run_id, metrics=[Metric("a/b", 1.0, 1, 0), Metric(".", 2.0, 1, 0)])
    assert [m.value for m in remote.get_metric_history(run_id, "a/b")] == [1.0]
    assert [m.value for m in remote.get_metric_history(run_id, ".")] == [2.0]
    with pytest.raises(InvalidArgument, match="artifact path"):
        remote.upload_artifact(run_id, "a/../b.txt", io.BytesIO(b"x"))
    with pytest.raises(InvalidArgument, match="artifact path"):
        remote.open_artifact(run_id, "../b.txt")


def test_non_finite_metric_values_travel_as_strings(
    remote: HttpBackend, api: httpx.Client, run_id: str
) -> None:
    points = [Metric("m", v, 1, i) for i, v in enumerate([float("nan"), float("inf"), -1e308])]
    remote.log_batch(run_id, metrics=[*points, Metric("n", float("-inf"), 1, 0)])
    raw = api.get(f"/runs/{run_id}").json()
    assert raw["metrics"] == {"m": -1e308, "n": "-Infinity"}
    history = api.get(f"/runs/{run_id}/metrics/m/history").json()["metrics"]
    assert [p["value"] for p in history] == ["NaN", "Infinity", -1e308]
    values = [m.value for m in remote.get_metric_history(run_id, "m")]
    assert str(values) == "[nan, inf, -1e+308]"


class _Generated(io.RawIOBase):
    """``size`` pseudo-random bytes, produced as they are read, hashed on the way."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.left = size
        self.rng = random.Random(7)
        self.sha = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self.left)
        data = self.rng.randbytes(n)
        buffer[:n] = data
        self.sha.update(data)
        self.left -= n
        return n


def test_a_large_artifact_streams_both_ways_in_bounded_memory(
    remote: HttpBackend, run_id: str
) -> None:
    size = 64 * MB
    source = _Generated(size)
    tracemalloc.start()
    try:
        info = remote.upload_artifact(run_id, "big/blob.bin", io.BufferedReader(source, MB))
        _, upload_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        sha = hashlib.sha256()
        with remote.open_artifact(run_id, "big/blob.bin") as fh:
            while chunk := fh.read(MB):
                sha.update(chunk)
        _, download_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.size == size
    assert info.digest == source.sha.hexdigest() == sha.hexdigest()
    # Client and server run in this process: both sides together stay far below the size.
    assert upload_peak < 16 * MB, upload_peak
    assert download_peak < 16 * MB, download_peak


def test_a_refused_upload_is_a_typed_error_even_while_the_body_is_still_sending(
    remote: HttpBackend, run_id: str
) -> None:
    # The server answers before reading the body; the client must report that answer,
    # not the connection the server then closes.
    remote.update_run(run_id, status=RunStatus.FINISHED)
    with pytest.raises(InvalidState, match="has ended"):
        remote.upload_artifact(run_id, "late.bin", io.BufferedReader(_Generated(32 * MB), MB))
    assert remote.get_run(run_id).status is RunStatus.FINISHED


def test_a_large_corrupted_artifact_aborts_the_download(
    remote: HttpBackend, run_id: str, folder_store: Settings, tmp_path: Path
) -> None:
    data = random.Random(1).randbytes(3 * SMALL_FILE)
    info = remote.upload_artifact(run_id, "model.bin", io.BytesIO(data))
    assert info.digest is not None
    blob = (
        Path(folder_store.tracking_uri) / "artifacts" / "blobs" / info.digest[:2] / info.digest[2:]
    )
    blob.write_bytes(data[:-1] + b"\x00")  # same size: only the digest can tell
    with (
        pytest.raises((StoreUnavailable, DataCorrupted)),
        remote.open_artifact(run_id, "model.bin") as fh,
    ):
        fh.read()
    with pytest.raises((StoreUnavailable, DataCorrupted)):
        remote.download_artifacts(run_id, None, tmp_path / "dl")
    assert not [p for p in (tmp_path / "dl").rglob("*") if p.is_file()]


def _fake_server(
    files: dict[str, bytes], listed: list[dict[str, Any]]
) -> Callable[[httpx.Request], httpx.Response]:
    """A server that lists ``listed`` at the root and serves ``files`` by path."""

    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/artifacts"):
            return httpx.Response(200, json={"files": listed})
        name = path.split("/artifacts/", 1)[1]
        return httpx.Response(200, content=files[name])

    return handle


def test_corruption_in_transit_is_detected_and_leaves_no_file(tmp_path: Path) -> None:
    digest = hashlib.sha256(b"what was stored").hexdigest()
    listed = [{"path": "m.txt", "is_dir": False, "size": 15, "digest": digest}]
    handler = _fake_server({"m.txt": b"what arrived!!!"}, listed)
    backend = HttpBackend("http://fake", transport=httpx.MockTransport(handler))
    with pytest.raises(DataCorrupted, match="received from the server"):
        backend.download_artifacts(MISSING_RUN, None, tmp_path / "dl")
    assert not list(tmp_path.rglob("m.txt*"))
    backend.close()


@pytest.mark.parametrize(
    "evil", ["../evil.txt", "/tmp/evil.txt", "a/../../evil.txt", "a\\..\\evil.txt", "a//b"]
)
def test_artifact_paths_from_the_server_cannot_escape_dest(tmp_path: Path, evil: str) -> None:
    data = b"payload"
    digest = hashlib.sha256(data).hexdigest()
    listed = [{"path": evil, "is_dir": False, "size": len(data), "digest": digest}]
    backend = HttpBackend(
        "http://fake", transport=httpx.MockTransport(_fake_server({evil: data}, listed))
    )
    dest = tmp_path / "inside" / "dest"
    with pytest.raises(InvalidArgument, match="refusing the artifact path"):
        backend.download_artifacts(MISSING_RUN, None, dest)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]
    backend.close()


# the client ------------------------------------------------------------------------


def test_token_is_sent_as_a_bearer_header() -> None:
    seen: list[str | None] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200, json={"experiments": []})

    HttpBackend(
        "http://fake", token="s3cret", transport=httpx.MockTransport(handle)
    ).list_experiments()
    HttpBackend("http://fake", transport=httpx.MockTransport(handle)).list_experiments()
    assert seen == ["Bearer s3cret", None]
    backend = open_backend(Settings(tracking_uri="http://127.0.0.1:9/", http_token="tok-123"))
    assert isinstance(backend, HttpBackend)
    assert backend.base_url == "http://127.0.0.1:9"
    assert backend._http.headers["authorization"] == "Bearer tok-123"
    assert "tok-123" not in repr(backend)
    backend.close()


def test_an_unreachable_server_is_store_unavailable_naming_the_url() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        backend = HttpBackend(f"http://127.0.0.1:{port}")
        with pytest.raises(StoreUnavailable, match=f"127.0.0.1:{port}"):
            backend.get_run(MISSING_RUN)
    backend.close()


def test_a_non_json_error_page_still_gives_a_typed_error() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="<html>bad gateway</html>")

    backend = HttpBackend("http://fake", transport=httpx.MockTransport(handle))
    with pytest.raises(StoreUnavailable, match="502"):
        backend.list_experiments()


# the schema --------------------------------------------------------------------------


EXPECTED_ROUTES = {
    ("POST", "/api/v1/experiments"),
    ("GET", "/api/v1/experiments"),
    ("GET", "/api/v1/experiments/by-name"),
    ("GET", "/api/v1/experiments/{experiment_id}"),
    ("PATCH", "/api/v1/experiments/{experiment_id}"),
    ("POST", "/api/v1/experiments/{experiment_id}/delete"),
    ("POST", "/api/v1/experiments/{experiment_id}/restore"),
    ("PUT", "/api/v1/experiments/{experiment_id}/tags/{key}"),
    ("POST", "/api/v1/runs"),
    ("POST", "/api/v1/runs/search"),
    ("GET", "/api/v1/runs/{run_id}"),
    ("PATCH", "/api/v1/runs/{run_id}"),
    ("POST", "/api/v1/runs/{run_id}/delete"),
    ("POST", "/api/v1/runs/{run_id}/restore"),
    ("POST", "/api/v1/runs/{run_id}/batch"),
    ("DELETE", "/api/v1/runs/{run_id}/tags/{key}"),
    ("GET", "/api/v1/runs/{run_id}/metrics/{key}/history"),
    ("POST", "/api/v1/runs/{run_id}/inputs"),
    ("PUT", "/api/v1/runs/{run_id}/artifacts/{path}"),
    ("GET", "/api/v1/runs/{run_id}/artifacts"),
    ("GET", "/api/v1/runs/{run_id}/artifacts/{path}"),
    ("POST", "/api/v1/gc"),
    ("GET", "/health"),
    ("GET", "/api/v1/users"),
    ("POST", "/api/v1/users"),
    ("DELETE", "/api/v1/users/{name}"),
    ("POST", "/api/v1/users/{name}/tokens"),
    ("GET", "/api/v1/tokens"),
    ("POST", "/api/v1/tokens/{token_id}/revoke"),
    # the registry
    ("POST", "/api/v1/registered-models"),
    ("GET", "/api/v1/registered-models"),
    ("GET", "/api/v1/registered-models/{name}"),
    ("PATCH", "/api/v1/registered-models/{name}"),
    ("DELETE", "/api/v1/registered-models/{name}"),
    ("POST", "/api/v1/registered-models/{name}/rename"),
    ("PUT", "/api/v1/registered-models/{name}/tags/{key}"),
    ("DELETE", "/api/v1/registered-models/{name}/tags/{key}"),
    ("POST", "/api/v1/registered-models/{name}/versions"),
    ("GET", "/api/v1/registered-models/{name}/latest"),
    ("GET", "/api/v1/registered-models/{name}/versions/{version}"),
    ("PATCH", "/api/v1/registered-models/{name}/versions/{version}"),
    ("DELETE", "/api/v1/registered-models/{name}/versions/{version}"),
    ("PUT", "/api/v1/registered-models/{name}/versions/{version}/tags/{key}"),
    ("DELETE", "/api/v1/registered-models/{name}/versions/{version}/tags/{key}"),
    ("GET", "/api/v1/registered-models/{name}/aliases/{alias}"),
    ("PUT", "/api/v1/registered-models/{name}/aliases/{alias}"),
    ("DELETE", "/api/v1/registered-models/{name}/aliases/{alias}"),
    ("GET", "/api/v1/registered-models/{name}/alias-history"),
    ("POST", "/api/v1/registered-models/{name}/versions/{version}/promotions"),
    ("GET", "/api/v1/registered-models/{name}/promotions"),
    ("POST", "/api/v1/registered-models/{name}/versions/{version}/evaluations"),
    ("GET", "/api/v1/registered-models/{name}/versions/{version}/evaluations"),
    ("GET", "/api/v1/model-versions"),
    ("GET", "/api/v1/datasets"),
    ("GET", "/api/v1/datasets/{name}"),
    ("GET", "/api/v1/datasets/{name}/content"),
    ("PUT", "/api/v1/datasets/{name}"),
    # deployments
    ("GET", "/api/v1/deployments"),
    ("PUT", "/api/v1/deployments/{name}"),
    ("GET", "/api/v1/deployments/{name}"),
    ("GET", "/api/v1/deployments/{name}/history"),
    ("POST", "/api/v1/deployments/{name}/rollback"),
    # monitoring
    ("POST", "/api/v1/monitors"),
    ("GET", "/api/v1/monitors"),
    ("GET", "/api/v1/monitors/{name}"),
    ("PATCH", "/api/v1/monitors/{name}"),
    ("DELETE", "/api/v1/monitors/{name}"),
    ("POST", "/api/v1/monitors/{name}/windows"),
    ("POST", "/api/v1/monitors/{name}/windows/{seq}/metrics"),
    ("GET", "/api/v1/monitors/{name}/windows"),
    ("GET", "/api/v1/monitors/{name}/metrics"),
    ("GET", "/api/v1/alerts"),
    ("GET", "/api/v1/alert-events"),
    ("POST", "/api/v1/alert-events/{event_id}/delivery"),
    ("GET", "/metrics"),
}


def test_openapi_describes_every_route_and_every_backend_operation(server_url: str) -> None:
    schema = httpx.get(f"{server_url}/openapi.json").json()
    ops = {
        (method.upper(), path): op
        for path, item in schema["paths"].items()
        for method, op in item.items()
    }
    assert set(ops) == EXPECTED_ROUTES
    # Each Backend operation is one route named after it; download_artifacts is a
    # listing plus a download per file, and close is local.
    backend_ops = {name for name in vars(Backend) if not name.startswith("_")}
    operation_ids = {op["operationId"] for op in ops.values()}
    assert backend_ops - {"close", "download_artifacts"} <= operation_ids
    for key, op in ops.items():
        assert op.get("summary") or op.get("description"), key
        if key != ("GET", "/health"):
            error = op["responses"]["400"]["content"]["application/json"]["schema"]
            assert error == {"$ref": "#/components/schemas/ErrorBody"}, key
    models = schema["components"]["schemas"]
    assert {"LogBatchRequest", "RunModel", "SearchRunsRequest", "ErrorBody"} <= set(models)
    batch = ops[("POST", "/api/v1/runs/{run_id}/batch")]["requestBody"]["content"]
    assert batch["application/json"]["schema"] == {"$ref": "#/components/schemas/LogBatchRequest"}
    upload = ops[("PUT", "/api/v1/runs/{run_id}/artifacts/{path}")]["requestBody"]["content"]
    assert "application/octet-stream" in upload


def test_health(server_url: str) -> None:
    r = httpx.get(f"{server_url}/health")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"


# the command -------------------------------------------------------------------------


def test_server_command_refuses_a_public_host_without_insecure(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli_app, ["server", "--host", "0.0.0.0", "--db", str(tmp_path)], env={"NO_COLOR": "1"}
    )
    assert result.exit_code == 1
    assert "refusing to listen on 0.0.0.0" in result.output
    assert "--insecure" in result.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.mark.parametrize("workers", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_server_command_serves_a_client_and_stops_on_sigterm(tmp_path: Path, workers: int) -> None:
    from modelloop import Client

    port = _free_port()
    command = "from modelloop.cli.app import main; main()"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            command,
            "server",
            "--port",
            str(port),
            "--db",
            str(tmp_path / "s"),
            "--workers",
            str(workers),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client = Client(url, settings=Settings(capture_git=False, capture_environment=False))
        run = client.create_run(name="remote")
        client.log_metric(run.run_id, "x", 1.0)
        client.end_run(run.run_id)
        client.close()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # A graceful stop: uvicorn finishes, closes the store, then (one worker) re-raises
    # SIGTERM so that the exit status still says how the process ended.
    assert proc.returncode in (0, -signal.SIGTERM), out.decode()
    assert b"Application shutdown complete" in out
    local = Client(str(tmp_path / "s"), settings=Settings(capture_git=False))
    assert local.search_runs(["0"])[0].metrics == {"x": 1.0}
    local.close()
