"""The MLflow-compatible REST API over raw HTTP: MLflow's JSON shapes, error codes and
statuses, limits, malformed input (always a 4xx JSON body, never a 500), the
artifact proxy's path mapping, and the LocalBackend semantics it relies on.
The stock client's view is in test_mlflow_compat.py.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import pytest

from modelloop.backends.http import HttpBackend
from modelloop.entities import Metric
from modelloop.server import create_app
from modelloop.server.mlflow.convert import split_system_tags
from modelloop.server.mlflow.metrics import sample_steps
from modelloop.settings import Settings

if TYPE_CHECKING:
    from conftest import LiveServer

MISSING_RUN = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def base(server_url: str) -> str:
    return server_url


@pytest.fixture
def web(server_url: str) -> Iterator[httpx.Client]:
    """One pooled client of the server (a new httpx client per call costs ~50 ms)."""
    with httpx.Client(base_url=server_url) as c:
        yield c


@pytest.fixture
def api(base: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{base}/api/2.0/mlflow") as c:
        yield c


@pytest.fixture(scope="module")
def shared(
    live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    """A client of one store shared by the tests that only read or are refused."""
    path = tmp_path_factory.mktemp("shared") / "store"
    settings = Settings(tracking_uri=str(path), capture_git=False, capture_environment=False)
    with live_server.serving(settings) as url, httpx.Client(base_url=url) as c:
        yield c


@pytest.fixture
def run_id(api: httpx.Client) -> str:
    r = api.post("/runs/create", json={"experiment_id": "0", "run_name": "r"})
    assert r.status_code == 200, r.text
    return str(r.json()["run"]["info"]["run_id"])


def _error(r: httpx.Response | http.client.HTTPResponse, status: int, code: str) -> str:
    got = r.status if isinstance(r, http.client.HTTPResponse) else r.status_code
    raw = r.read()
    assert got == status, raw
    assert r.headers["content-type"] == "application/json"
    body = json.loads(raw)
    assert set(body) == {"error_code", "message"}
    assert body["error_code"] == code, body
    return str(body["message"])


def _invalid(r: httpx.Response | http.client.HTTPResponse) -> str:
    """The message of a 400 INVALID_PARAMETER_VALUE response."""
    return _error(r, 400, "INVALID_PARAMETER_VALUE")


def _missing(r: httpx.Response) -> str:
    """The message of a 404 RESOURCE_DOES_NOT_EXIST response."""
    return _error(r, 404, "RESOURCE_DOES_NOT_EXIST")


# shapes ----------------------------------------------------------------------------


def test_run_and_experiment_json_is_mlflows(api: httpx.Client) -> None:
    exp_id = api.post(
        "/experiments/create", json={"name": "e", "tags": [{"key": "k", "value": "v"}]}
    )
    eid = exp_id.json()["experiment_id"]
    assert isinstance(eid, str)
    exp = api.get("/experiments/get", params={"experiment_id": eid}).json()["experiment"]
    assert exp["artifact_location"] == f"mlflow-artifacts:/{eid}"
    assert exp["lifecycle_stage"] == "active" and exp["tags"] == [{"key": "k", "value": "v"}]
    assert isinstance(exp["creation_time"], int)
    tags = [{"key": "mlflow.user", "value": "ann"}, {"key": "t", "value": "1"}]
    created = api.post("/runs/create", json={"experiment_id": eid, "run_name": "n", "tags": tags})
    run = created.json()["run"]
    rid = run["info"]["run_id"]
    assert run["info"]["run_uuid"] == rid and run["info"]["user_id"] == "ann"
    assert run["info"]["artifact_uri"] == f"mlflow-artifacts:/{eid}/{rid}/artifacts"
    assert "end_time" not in run["info"] and run["info"]["status"] == "RUNNING"
    metric = {"key": "m", "value": "NaN", "timestamp": "1700000000000", "step": 3}
    assert api.post("/runs/log-metric", json={"run_id": rid, **metric}).json() == {}
    got = api.get("/runs/get", params={"run_uuid": rid}).json()["run"]
    assert got["data"]["metrics"] == [
        {"key": "m", "value": "NaN", "timestamp": 1700000000000, "step": 3}
    ]
    assert {"key": "mlflow.runName", "value": "n"} in got["data"]["tags"]
    update = api.post("/runs/update", json={"run_id": rid, "status": "FINISHED", "end_time": 5})
    assert update.json()["run_info"]["end_time"] == 5
    assert update.json()["run_info"]["status"] == "FINISHED"
    page = api.post("/runs/search", json={"experiment_ids": [eid], "max_results": 1}).json()
    assert [r["info"]["run_id"] for r in page["runs"]] == [rid] and "next_page_token" not in page


def test_system_tags_map_to_run_fields_both_ways(api: httpx.Client, run_id: str) -> None:
    plain, fields = split_system_tags(
        {"mlflow.runName": "a", "mlflow.user": "u", "mlflow.parentRunId": "p", "x": "y"}
    )
    assert plain == {"x": "y"}
    assert (fields.name, fields.user, fields.parent_run_id) == ("a", "u", "p")
    child = api.post(
        "/runs/create",
        json={"experiment_id": "0", "tags": [{"key": "mlflow.parentRunId", "value": run_id}]},
    ).json()["run"]
    assert {"key": "mlflow.parentRunId", "value": run_id} in child["data"]["tags"]
    mismatch = {
        "experiment_id": "0",
        "run_name": "a",
        "tags": [{"key": "mlflow.runName", "value": "b"}],
    }
    assert "different values" in _invalid(api.post("/runs/create", json=mismatch))
    set_user = {"run_id": run_id, "key": "mlflow.user", "value": "mallory"}
    _invalid(api.post("/runs/set-tag", json=set_user))
    drop = {"run_id": run_id, "key": "mlflow.runName"}
    _invalid(api.post("/runs/delete-tag", json=drop))
    api.post("/runs/set-tag", json={"run_id": run_id, "key": "mlflow.runName", "value": "new"})
    assert (
        api.get("/runs/get", params={"run_id": run_id}).json()["run"]["info"]["run_name"] == "new"
    )


# errors ----------------------------------------------------------------------------


def test_mlflow_error_codes_and_statuses(api: httpx.Client, run_id: str) -> None:
    _missing(api.get("/experiments/get", params={"experiment_id": "999"}))
    _missing(api.get("/experiments/get-by-name", params={"experiment_name": "x"}))
    _missing(api.get("/runs/get", params={"run_id": MISSING_RUN}))
    _missing(api.get("/runs/get", params={"run_id": "not-a-run"}))
    api.post("/experiments/create", json={"name": "dup"})
    _error(api.post("/experiments/create", json={"name": "dup"}), 400, "RESOURCE_ALREADY_EXISTS")
    api.post("/runs/log-parameter", json={"run_id": run_id, "key": "p", "value": "1"})
    changed = api.post("/runs/log-parameter", json={"run_id": run_id, "key": "p", "value": "2"})
    assert _invalid(changed).startswith("Changing param values is not allowed")
    api.post("/runs/delete", json={"run_id": run_id})
    metric = {"run_id": run_id, "key": "m", "value": 1, "timestamp": 1}
    assert "deleted" in _invalid(api.post("/runs/log-metric", json=metric))
    _invalid(api.post("/experiments/delete", json={"experiment_id": "0"}))


@pytest.mark.parametrize(
    ("path", "payload", "words"),
    [
        ("/experiments/create", {}, "Missing value for required parameter 'name'"),
        ("/experiments/create", {"name": ""}, "Missing value for required parameter 'name'"),
        ("/experiments/create", {"name": 5}, "parameter 'name'"),
        ("/experiments/create", ["name"], "must be a JSON object"),
        ("/experiments/create", {"name": "a\x00b"}, "NUL characters"),
        ("/runs/log-metric", {"key": "m", "value": 1, "timestamp": 1}, "'run_id'"),
        (
            "/runs/log-metric",
            {"run_id": MISSING_RUN, "key": "m", "value": "x", "timestamp": 1},
            "'value'",
        ),
        (
            "/runs/log-metric",
            {"run_id": MISSING_RUN, "key": "m", "value": 1, "timestamp": 1.5},
            "'timestamp'",
        ),
        (
            "/runs/log-metric",
            {"run_id": MISSING_RUN, "key": "m", "value": 1, "timestamp": 2**70},
            "64 bits",
        ),
        (
            "/runs/log-metric",
            {"run_id": MISSING_RUN, "key": "m", "value": True, "timestamp": 1},
            "'value'",
        ),
        (
            "/runs/log-metric",
            {"run_id": MISSING_RUN, "key": "m", "value": 10**400, "timestamp": 1},
            "'value'",
        ),
        ("/runs/log-batch", {"run_id": MISSING_RUN, "metrics": [{"key": "m"}]}, "metrics[0].value"),
        ("/runs/log-batch", {"run_id": MISSING_RUN, "params": "p"}, "'params'"),
        ("/runs/search", {"experiment_ids": ["0"], "filter": "metrics.m >"}, "filter"),
        ("/runs/search", {"experiment_ids": ["0"], "max_results": "many"}, "max_results"),
        ("/runs/search", {"run_view_type": "SOME"}, "run_view_type"),
        ("/runs/update", {"run_id": MISSING_RUN, "run_uuid": "f" * 32}, "different runs"),
        ("/experiments/search", {"filter": "name ~ 'x'"}, "Invalid filter"),
        ("/experiments/search", {"order_by": ["colour DESC"]}, "order_by"),
        ("/experiments/search", {"page_token": "garbage"}, "page token"),
    ],
)
def test_malformed_input_is_a_400_naming_the_problem(
    shared: httpx.Client, path: str, payload: Any, words: str
) -> None:
    response = shared.post(f"/api/2.0/mlflow{path}", json=payload)
    message = _invalid(response)
    assert words in message


def test_bad_json_content_type_and_query_strings(api: httpx.Client) -> None:
    headers = {"content-type": "application/json"}
    assert "Malformed JSON" in _invalid(
        api.post("/experiments/create", content=b'{"name": ', headers=headers)
    )
    deep = b"[" * 100_000 + b"]" * 100_000
    _invalid(api.post("/experiments/create", content=deep, headers=headers))
    plain = {"content-type": "text/plain"}
    assert "Content-Type" in _invalid(
        api.post("/experiments/create", content=b'{"name": "x"}', headers=plain)
    )
    old_client = json.dumps(json.dumps({"name": "double-encoded"})).encode()
    assert api.post("/experiments/create", content=old_client, headers=headers).status_code == 200
    _invalid(api.get("/experiments/search", params={"max_results": "abc"}))
    page = api.get("/experiments/search", params={"view_type": "ALL", "order_by": ["name ASC"]})
    assert [e["name"] for e in page.json()["experiments"]] == ["Default", "double-encoded"]


def test_unknown_routes_and_methods_answer_json(shared: httpx.Client) -> None:
    _error(shared.get("/api/2.0/mlflow/no/such/thing"), 404, "ENDPOINT_NOT_FOUND")
    _error(shared.get("/api/2.0/mlflow/runs/create"), 405, "BAD_REQUEST")
    _error(shared.get("/api/2.0/mlflow-artifacts/mpu/create/x"), 404, "ENDPOINT_NOT_FOUND")
    _error(shared.post("/ajax-api/2.0/mlflow/nothing"), 404, "ENDPOINT_NOT_FOUND")
    native = shared.get("/api/v1/nothing")  # the native API keeps its own codes
    assert native.status_code == 404 and native.json()["error_code"] == "NOT_FOUND"


def test_log_batch_limits_and_truncation(api: httpx.Client, run_id: str) -> None:
    def batch(**parts: Any) -> httpx.Response:
        return api.post("/runs/log-batch", json={"run_id": run_id, **parts})

    metrics = [{"key": f"m{i}", "value": i, "timestamp": 1, "step": 0} for i in range(1001)]
    params = [{"key": f"p{i}", "value": "v"} for i in range(101)]
    assert "at most 1000 metrics. Got 1001" in _invalid(batch(metrics=metrics))
    assert "at most 100 params" in _invalid(batch(params=params))
    assert "at most 100 tags" in _invalid(batch(tags=params))
    total = batch(metrics=metrics[:1000], params=params[:1])
    assert "at most 1000 metrics, params, and tags" in _invalid(total)
    dupes = [{"key": "a", "value": "1"}, {"key": "a", "value": "2"}]
    assert "Duplicate parameter keys" in _invalid(batch(params=dupes))
    ok = batch(
        metrics=metrics[:998],
        params=[{"key": "long", "value": "x" * 7000}],
        tags=[{"key": "big", "value": "y" * 9000}],
    )
    assert ok.status_code == 200 and ok.json() == {}
    data = api.get("/runs/get", params={"run_id": run_id}).json()["run"]["data"]
    assert len(data["metrics"]) == 998
    assert data["params"] == [{"key": "long", "value": "x" * 6000}]
    assert {"key": "big", "value": "y" * 8000} in data["tags"]


def test_metric_history_pages_and_bulk_interval(api: httpx.Client, run_id: str) -> None:
    points = [{"key": "loss", "value": s / 10, "timestamp": 1000 + s, "step": s} for s in range(50)]
    api.post("/runs/log-batch", json={"run_id": run_id, "metrics": points})
    first = api.get(
        "/metrics/get-history", params={"run_id": run_id, "metric_key": "loss", "max_results": 20}
    ).json()
    assert len(first["metrics"]) == 20 and first["next_page_token"]
    rest = api.get(
        "/metrics/get-history",
        params={
            "run_id": run_id,
            "metric_key": "loss",
            "max_results": 40,
            "page_token": first["next_page_token"],
        },
    ).json()
    assert [m["step"] for m in first["metrics"] + rest["metrics"]] == list(range(50))
    assert "next_page_token" not in rest
    bulk = api.get(
        "/metrics/get-history-bulk-interval",
        params={"run_ids": [run_id], "metric_key": "loss", "max_results": 10},
    ).json()["metrics"]
    steps = [m["step"] for m in bulk]
    assert steps[0] == 0 and steps[-1] == 49 and 10 <= len(steps) <= 12
    assert all(m["run_id"] == run_id for m in bulk)
    ranged = api.get(
        "/metrics/get-history-bulk-interval",
        params={"run_ids": [run_id], "metric_key": "loss", "start_step": 5, "end_step": 7},
    ).json()["metrics"]
    assert [m["step"] for m in ranged] == [5, 6, 7]
    one_sided = {"run_ids": [run_id], "metric_key": "loss", "start_step": 5}
    _invalid(api.get("/metrics/get-history-bulk-interval", params=one_sided))
    history = [[Metric("m", 0.0, 0, s) for s in (0, 3, 9)], [Metric("m", 0.0, 0, 20)]]
    assert sample_steps(history, None, None, 2) == {0, 9, 20}  # evenly spread, plus the ends


# artifact proxy --------------------------------------------------------------------


def test_artifact_proxy_maps_paths_onto_the_run(
    web: httpx.Client, api: httpx.Client, run_id: str
) -> None:
    proxy = "/api/2.0/mlflow-artifacts/artifacts"
    root = f"0/{run_id}/artifacts"
    assert web.put(f"{proxy}/{root}/d/x.txt", content=b"hello").json() == {}
    assert web.put(f"{proxy}/{root}/top.bin", content=b"\x00" * 10).status_code == 200
    listing = web.get(proxy, params={"path": root}).json()
    assert listing == {
        "files": [
            {"path": "d", "is_dir": True},
            {"path": "top.bin", "is_dir": False, "file_size": 10},
        ]
    }
    assert web.get(proxy, params={"path": f"{root}/top.bin"}).json() == {}
    assert web.get(proxy, params={"path": f"{root}/missing"}).json() == {}
    assert web.get(proxy, params={"path": "0/models/m-1/artifacts"}).json() == {}
    assert web.get(f"{proxy}/{root}/d/x.txt").content == b"hello"
    tracking = api.get("/artifacts/list", params={"run_id": run_id, "path": "d"}).json()
    assert tracking == {
        "root_uri": f"mlflow-artifacts:/0/{run_id}/artifacts",
        "files": [{"path": "d/x.txt", "is_dir": False, "file_size": 5}],
    }
    ajax = web.get(f"/ajax-api/2.0/mlflow-artifacts/artifacts/{root}/d/x.txt")
    assert ajax.content == b"hello"
    _missing(web.get(f"{proxy}/{root}/nope"))
    _missing(web.get(f"{proxy}/1/{run_id}/artifacts/d/x.txt"))
    _missing(web.get(f"{proxy}/0/{MISSING_RUN}/artifacts/x"))
    assert "not under a run" in _invalid(
        web.put(f"{proxy}/0/models/m-1/artifacts/MLmodel", content=b"x")
    )
    _invalid(web.put(f"{proxy}/{root}", content=b"x"))
    assert web.delete(f"{proxy}/{root}/d").json() == {}
    assert web.get(proxy, params={"path": root}).json()["files"] == [
        {"path": "top.bin", "is_dir": False, "file_size": 10}
    ]
    info = web.get("/api/3.0/mlflow/server-info").json()
    assert info["multipart_uploads_enabled"] is False


_TRAVERSALS = [
    "../../etc/passwd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "0/RUN/artifacts/..%2F..%2F..%2Fx",
    "0/RUN/artifacts/sub/%2E%2E/%2E%2E/%2E%2E/x",
    "%2Fetc%2Fpasswd",
    "0/RUN/artifacts/a%5Cb",
]


def test_artifact_proxy_path_traversal_is_a_400(shared: httpx.Client) -> None:
    created = shared.post("/api/2.0/mlflow/runs/create", json={"experiment_id": "0"})
    run_id = created.json()["run"]["info"]["run_id"]
    url = urlsplit(str(shared.base_url))
    for raw_path in _TRAVERSALS:
        path = raw_path.replace("RUN", run_id)
        for method in ("PUT", "GET", "DELETE"):
            # http.client sends the path as written; httpx would resolve "../" itself.
            conn = http.client.HTTPConnection(url.hostname or "", url.port)
            try:
                target = f"{url.path.rstrip('/')}/api/2.0/mlflow-artifacts/artifacts/{path}"
                conn.request(method, target, body=b"x")
                _invalid(conn.getresponse())
            finally:
                conn.close()
        listing = shared.get("/api/2.0/mlflow-artifacts/artifacts", params={"path": path})
        assert listing.status_code == 400 or listing.json() == {}
    listed = shared.get("/api/2.0/mlflow/artifacts/list", params={"run_id": run_id})
    assert "files" not in listed.json()


def test_a_server_over_a_remote_backend_answers_501(
    live_server: LiveServer, folder_store: Settings
) -> None:
    remote = HttpBackend("http://127.0.0.1:9")
    with live_server.mount(create_app(folder_store, remote)) as url:
        r = httpx.get(f"{url}/api/2.0/mlflow/experiments/search")
    remote.close()
    _error(r, 501, "NOT_IMPLEMENTED")


# the lean path (modelloop.server.mlflow.lean) answers as the FastAPI routes do ---------

_LEAN_RUN = "{run}"  # replaced by the test's run id


def _lean_cases() -> list[tuple[str, str, Any]]:
    """(method, path, body) of requests to the lean calls: well-formed ones, and every
    kind of malformed one the fast checks hand over to the message models."""
    metric = {"key": "m", "value": 0.5, "timestamp": 7, "step": 1}
    cases: list[tuple[str, str, Any]] = [
        ("POST", "runs/create", {}),
        ("POST", "runs/create", {"experiment_id": 5}),
        ("POST", "runs/create", {"experiment_id": "0", "start_time": "123"}),
        ("POST", "runs/create", {"experiment_id": "0", "start_time": 1.5}),
        ("POST", "runs/create", {"experiment_id": "0", "start_time": 2**63}),
        ("POST", "runs/create", {"experiment_id": "0", "tags": [{"key": 1}]}),
        ("POST", "runs/create", {"experiment_id": "0", "tags": None}),
        ("POST", "runs/create", {"experiment_id": "0", "other": {"a\x00": 1}}),
        ("POST", "runs/create", {"experiment_id": "0", "run_name": "a\x00"}),
        ("POST", "runs/create", {"experiment_id": "424242"}),
        (
            "POST",
            "runs/create",
            {
                "experiment_id": "0",
                "run_name": "x",
                "tags": [{"key": "mlflow.runName", "value": "y"}],
            },
        ),
        ("POST", "runs/create", [1, 2]),
        ("POST", "runs/create", "not json {"),
        ("POST", "runs/log-batch", {"run_id": _LEAN_RUN, "metrics": [metric]}),
        ("POST", "runs/log-batch", {"run_id": _LEAN_RUN, "metrics": [{**metric, "value": 3}]}),
        ("POST", "runs/log-batch", {"run_id": _LEAN_RUN, "metrics": [{**metric, "value": "NaN"}]}),
        ("POST", "runs/log-batch", {"run_id": _LEAN_RUN, "metrics": [{**metric, "value": True}]}),
        ("POST", "runs/log-batch", {"run_id": _LEAN_RUN, "metrics": [{**metric, "step": 1.0}]}),
        ("POST", "runs/log-batch", {"run_id": _LEAN_RUN, "metrics": [{**metric, "step": "x"}]}),
        ("POST", "runs/log-batch", {"run_id": _LEAN_RUN, "metrics": [{**metric, "key": ""}]}),
        ("POST", "runs/log-batch", {"run_id": _LEAN_RUN, "metrics": [{"key": "m", "value": 1}]}),
        ("POST", "runs/log-batch", {"run_id": _LEAN_RUN, "metrics": [{**metric, "x": 1}]}),
        ("POST", "runs/log-batch", {"run_id": _LEAN_RUN, "metrics": [metric] * 1001}),
        ("POST", "runs/log-batch", {"run_id": _LEAN_RUN, "metrics": {"key": "m"}}),
        ("POST", "runs/log-batch", {"run_id": _LEAN_RUN, "params": [{"key": "p", "value": 5}]}),
        (
            "POST",
            "runs/log-batch",
            {"run_id": _LEAN_RUN, "params": [{"key": "p", "value": "a"}, {"key": "p"}]},
        ),
        ("POST", "runs/log-batch", {"run_id": _LEAN_RUN, "params": [{"key": "q", "value": "a"}]}),
        ("POST", "runs/log-batch", {"run_id": _LEAN_RUN, "params": [{"key": "q", "value": "b"}]}),
        ("POST", "runs/log-batch", {"run_id": _LEAN_RUN, "tags": [{"key": "t", "value": None}]}),
        ("POST", "runs/log-batch", {"run_id": _LEAN_RUN, "tags": [{"key": "t\x00"}]}),
        ("POST", "runs/log-batch", {"metrics": [metric]}),
        ("POST", "runs/log-batch", {"run_id": _LEAN_RUN, "run_uuid": MISSING_RUN}),
        ("POST", "runs/log-batch", {"run_id": MISSING_RUN, "metrics": [metric]}),
        ("POST", "runs/log-batch", {"run_id": "nope", "metrics": [metric]}),
        ("POST", "runs/update", {"run_id": _LEAN_RUN, "status": 3, "end_time": 99}),
        ("POST", "runs/update", {"run_id": _LEAN_RUN, "status": "RUNNING", "end_time": "98"}),
        ("POST", "runs/update", {"run_id": _LEAN_RUN, "status": "BOGUS"}),
        ("POST", "runs/update", {"run_id": _LEAN_RUN, "status": True}),
        ("POST", "runs/update", {"run_id": _LEAN_RUN, "status": 17}),
        ("POST", "runs/update", {"run_id": _LEAN_RUN, "run_name": 5}),
        ("POST", "runs/update", {"run_id": _LEAN_RUN, "run_name": "renamed"}),
        ("POST", "runs/update", {"run_uuid": MISSING_RUN}),
        ("POST", "runs/search", {"experiment_ids": ["0"]}),
        ("POST", "runs/search", {"experiment_ids": ["0"], "run_view_type": 3}),
        ("POST", "runs/search", {"experiment_ids": ["0"], "run_view_type": "ALL"}),
        ("POST", "runs/search", {"experiment_ids": ["0"], "run_view_type": "2"}),
        ("POST", "runs/search", {"experiment_ids": ["0"], "run_view_type": "bogus"}),
        ("POST", "runs/search", {"experiment_ids": ["0"], "max_results": "1"}),
        ("POST", "runs/search", {"experiment_ids": ["0"], "max_results": 0}),
        ("POST", "runs/search", {"experiment_ids": "0"}),
        ("POST", "runs/search", {"experiment_ids": ["0"], "order_by": [1]}),
        ("POST", "runs/search", {"experiment_ids": ["0"], "filter": 5}),
        ("POST", "runs/search", {"experiment_ids": ["0"], "filter": "metrics.m >"}),
        ("POST", "runs/search", {"experiment_ids": ["0"], "page_token": "xx"}),
        (
            "POST",
            "runs/search",
            {
                "experiment_ids": ["0"],
                "filter": "metrics.m > 0.1 and params.q = 'a'",
                "order_by": ["metrics.m DESC"],
                "max_results": 1,
            },
        ),
        ("GET", f"runs/get?run_id={_LEAN_RUN}", None),
        ("GET", f"runs/get?run_uuid={_LEAN_RUN}&run_id={_LEAN_RUN}", None),
        ("GET", "runs/get?run_id=%00", None),
        ("GET", f"runs/get?run_id={MISSING_RUN}", None),
        ("GET", "runs/get", None),
    ]
    return cases


def _normalized(body: Any) -> Any:
    """A created run's answer without what differs between two creations."""
    info = body.get("run", {}).get("info") if isinstance(body, dict) else None
    if info is not None:
        for field in ("run_id", "run_uuid", "artifact_uri", "start_time", "run_name"):
            info[field] = type(info[field]).__name__
        for tag in body["run"].get("data", {}).get("tags", []):
            if tag["key"] == "mlflow.runName":
                tag["value"] = "name"
    return body


def test_the_lean_path_answers_as_the_routes_do(
    live_server: LiveServer, folder_store: Settings
) -> None:
    from modelloop.backends.factory import open_backend
    from modelloop.server.mlflow.lean import LEAN_PATHS, LeanRoute

    backend = open_backend(folder_store)
    lean_app = create_app(folder_store, backend)
    plain_app = create_app(folder_store, backend)
    lean = [r for r in plain_app.router.routes if isinstance(r, LeanRoute)]
    assert len(lean) == 1  # installed first in line, and removed here to compare
    assert plain_app.router.routes[0] is lean[0]
    plain_app.router.routes.remove(lean[0])
    try:
        with (
            live_server.mount(lean_app) as lean_url,
            live_server.mount(plain_app) as plain_url,
            httpx.Client() as http,
        ):
            made = http.post(f"{plain_url}/api/2.0/mlflow/runs/create", json={"run_name": "r"})
            run = made.json()["run"]["info"]["run_id"]
            cases = _lean_cases()
            served = {(m, "/api/2.0/mlflow/" + p.split("?")[0]) for m, p, _ in cases}
            assert served == {(m, p) for m, p in LEAN_PATHS if p.startswith("/api/")}
            for method, path, body in cases:
                path = path.replace(_LEAN_RUN, run)
                if isinstance(body, dict):
                    body = {k: (run if v == _LEAN_RUN else v) for k, v in body.items()}
                content = body if isinstance(body, str) else json.dumps(body)
                answers = []
                for url in (lean_url, plain_url):
                    r = http.request(
                        method,
                        f"{url}/api/2.0/mlflow/{path}",
                        content=None if body is None else content,
                        headers={"Content-Type": "application/json"},
                    )
                    assert r.headers["content-type"] == "application/json"
                    answers.append((r.status_code, _normalized(r.json())))
                assert answers[0] == answers[1], (method, path, body)
                assert answers[0][0] < 500, (method, path, body, answers[0])
            # The ajax-api twins are served on the lean path too.
            r = http.get(f"{lean_url}/ajax-api/2.0/mlflow/runs/get", params={"run_id": run})
            assert r.status_code == 200
            assert r.json()["run"]["info"]["run_id"] == run
    finally:
        backend.close()
