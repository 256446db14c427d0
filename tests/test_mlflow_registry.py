"""The MLflow model registry and MLflow 3 logged models against ``modelloop server``.

The stock ``mlflow`` client (3.x) logs, registers, aliases and loads a scikit-learn
model through a real server on loopback; the raw JSON shapes and error bodies are
checked with ``httpx``; and what MLflow wrote is read back through modelloop's own
backend on the same store (SQLite, and PostgreSQL when ``MODELLOOP_TEST_DB_URL`` is set).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import mlflow
import mlflow.artifacts
import mlflow.tracking._tracking_service.utils as mlflow_uri_state
import mlflow.tracking.fluent as mlflow_fluent
import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.entities import LoggedModelStatus
from mlflow.exceptions import MlflowException
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from modelloop import Client
from modelloop.backends import LocalBackend, open_backend
from modelloop.settings import Settings

with warnings.catch_warnings():
    # mlflow.pyfunc warns about its own type hints at import time; not ours to fix.
    warnings.filterwarnings("ignore", message=".*Any type hint", category=UserWarning)
    import mlflow.pyfunc
    import mlflow.sklearn

if TYPE_CHECKING:
    from conftest import LiveServer


@pytest.fixture
def store(store_settings: Settings) -> Settings:
    """A fresh store on SQLite, and on PostgreSQL when ``MODELLOOP_TEST_DB_URL`` is set."""
    return store_settings


@pytest.fixture
def url(live_server: LiveServer, store: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """MLflow pointed at a fresh modelloop server; MLflow's globals restored after."""
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # a 5xx fails fast
    monkeypatch.setattr(mlflow_uri_state, "_tracking_uri", None)
    monkeypatch.setattr(mlflow_fluent, "_active_experiment_id", None)
    with live_server.serving(store) as base:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", base)
        mlflow.set_tracking_uri(base)
        try:
            yield base
        finally:
            while mlflow.active_run() is not None:
                mlflow.end_run()


@pytest.fixture
def ours(store: Settings) -> Iterator[LocalBackend]:
    """modelloop's backend on the store the server serves."""
    backend = open_backend(store)
    assert isinstance(backend, LocalBackend)
    yield backend
    backend.close()


@pytest.fixture
def api(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{url}/api/2.0/mlflow") as c:
        yield c


def _error(r: httpx.Response, status: int, code: str) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == {"error_code", "message"}
    assert body["error_code"] == code, body
    return str(body["message"])


def _run(api: httpx.Client, experiment_id: str = "0") -> str:
    r = api.post("/runs/create", json={"experiment_id": experiment_id, "run_name": "r"})
    assert r.status_code == 200, r.text
    return str(r.json()["run"]["info"]["run_id"])


# --- 1. the stock client's flow --------------------------------------------------------


def test_log_register_alias_and_load_with_the_stock_client(
    url: str, ours: LocalBackend, tmp_path: Path
) -> None:
    X, y = load_iris(return_X_y=True)
    mlflow.set_experiment("iris")
    with mlflow.start_run() as run:
        model = LogisticRegression(max_iter=300).fit(X, y)
        info = mlflow.sklearn.log_model(model, name="model", input_example=X[:5])
    run_id = run.info.run_id
    assert info.model_id.startswith("m-")

    registered = mlflow.register_model(f"runs:/{run_id}/model", "iris")
    assert registered.version == "1"
    assert registered.status == "READY"
    client = MlflowClient()
    client.set_registered_model_alias("iris", "champion", "1")

    loaded = mlflow.pyfunc.load_model("models:/iris@champion")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))

    # modelloop sees the same version, pointing at the run's copy of the files.
    mv = ours.get_model_version_by_alias("iris", "champion")
    assert (mv.version, mv.run_id, mv.model_id) == (1, run_id, info.model_id)
    assert mv.artifact_path == f"_logged_models/{info.model_id}"
    files = {a.path for a in ours.list_artifacts(run_id, mv.artifact_path)}
    assert f"_logged_models/{info.model_id}/MLmodel" in files
    dest = ours.download_artifacts(run_id, mv.artifact_path, tmp_path / "dl")
    assert (dest / "MLmodel").read_text().count("sklearn") >= 1

    # The logged model is READY and knows its registration; the version resolves.
    logged = client.get_logged_model(info.model_id)
    assert logged.status == LoggedModelStatus.READY
    assert logged.source_run_id == run_id
    assert "mlflow.modelVersions" in logged.tags
    assert client.get_model_version_by_alias("iris", "champion").run_id == run_id
    by_version = mlflow.pyfunc.load_model("models:/iris/1")
    np.testing.assert_array_equal(by_version.predict(X[:3]), model.predict(X[:3]))
    by_run = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    np.testing.assert_array_equal(by_run.predict(X[:3]), model.predict(X[:3]))

    # ... and modelloop's own client loads the MLflow-registered version, over HTTP.
    native = Client(url, settings=Settings(capture_git=False, capture_environment=False))
    try:
        ours_loaded = native.load_model("models:/iris@champion")
        assert ours_loaded.manifest.source_format == "mlflow"
        np.testing.assert_array_equal(ours_loaded.predict(X), model.predict(X))
        assert native.register_model(f"runs:/{run_id}/{mv.artifact_path}", "iris").version == 2
    finally:
        native.close()


def test_register_from_a_run_artifact_folder(url: str, ours: LocalBackend) -> None:
    """A 2.x-style registration: the model folder is a plain run artifact."""
    with mlflow.start_run() as run:
        mlflow.log_text("not a model", "notes/readme.txt")
    client = MlflowClient()
    client.create_registered_model("plain")
    mv = client.create_model_version(
        "plain", f"runs:/{run.info.run_id}/notes", run_id=run.info.run_id
    )
    assert mv.version == "1" and mv.run_id == run.info.run_id
    uri = client.get_model_version_download_uri("plain", "1")
    assert uri.endswith(f"/{run.info.run_id}/artifacts/notes")
    assert ours.get_model_version("plain", 1).artifact_path == "notes"
    path = mlflow.artifacts.download_artifacts("models:/plain/1")
    assert (Path(path) / "readme.txt").read_text() == "not a model"


# --- 2. registry API shapes ------------------------------------------------------------


def test_registered_model_lifecycle_and_shapes(url: str, api: httpx.Client) -> None:
    client = MlflowClient()
    created = client.create_registered_model("m1", tags={"team": "a"}, description="first")
    assert (created.name, created.description, created.tags) == ("m1", "first", {"team": "a"})
    with pytest.raises(MlflowException) as exc:
        client.create_registered_model("m1")
    assert exc.value.error_code == "RESOURCE_ALREADY_EXISTS"

    r = api.post("/registered-models/create", json={"name": "m1"})
    assert "already exists" in _error(r, 400, "RESOURCE_ALREADY_EXISTS")
    r = api.get("/registered-models/get", params={"name": "nope"})
    _error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    _error(api.post("/registered-models/create", json={}), 400, "INVALID_PARAMETER_VALUE")
    _error(api.post("/registered-models/create", json={"name": 3}), 400, "INVALID_PARAMETER_VALUE")

    client.update_registered_model("m1", description="updated")
    client.set_registered_model_tag("m1", "stage", "dev")
    client.delete_registered_model_tag("m1", "team")
    body = api.get("/registered-models/get", params={"name": "m1"}).json()["registered_model"]
    assert body["description"] == "updated"
    assert body["tags"] == [{"key": "stage", "value": "dev"}]
    assert isinstance(body["creation_timestamp"], int)
    assert "latest_versions" not in body and "aliases" not in body

    for name in ("m2", "other", "M3"):
        client.create_registered_model(name, tags={"kind": "x" if name != "other" else "y"})
    names = [m.name for m in client.search_registered_models(filter_string="name LIKE 'm%'")]
    assert names == ["m1", "m2"]
    names = [m.name for m in client.search_registered_models(filter_string="name ILIKE 'm%'")]
    assert names == ["M3", "m1", "m2"]
    assert [m.name for m in client.search_registered_models("name = 'other'")] == ["other"]
    found = client.search_registered_models("tags.kind = 'x'", order_by=["name DESC"])
    assert [m.name for m in found] == ["m2", "M3"]
    first = client.search_registered_models(max_results=2)
    assert len(first) == 2 and first.token
    rest = client.search_registered_models(max_results=2, page_token=first.token)
    assert [m.name for m in [*first, *rest]] == ["M3", "m1", "m2", "other"]
    r = api.get("/registered-models/search", params={"filter": "name ~ 'x'"})
    assert "Invalid filter" in _error(r, 400, "INVALID_PARAMETER_VALUE")
    r = api.get("/registered-models/search", params={"order_by": "size"})
    _error(r, 400, "INVALID_PARAMETER_VALUE")
    r = api.get("/registered-models/search", params={"page_token": "garbage"})
    _error(r, 400, "INVALID_PARAMETER_VALUE")

    client.rename_registered_model("m2", "m2-renamed")
    assert client.get_registered_model("m2-renamed").tags == {"kind": "x"}
    r = api.get("/registered-models/get", params={"name": "m2"})
    _error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    r = api.post("/registered-models/rename", json={"name": "m1", "new_name": "other"})
    _error(r, 400, "RESOURCE_ALREADY_EXISTS")
    client.delete_registered_model("m2-renamed")
    r = api.request("DELETE", "/registered-models/delete", json={"name": "m2-renamed"})
    _error(r, 404, "RESOURCE_DOES_NOT_EXIST")


def test_model_version_lifecycle_and_shapes(url: str, api: httpx.Client) -> None:
    client = MlflowClient()
    run_id = _run(api)
    client.create_registered_model("clf")
    source = f"mlflow-artifacts:/0/{run_id}/artifacts/model"
    v1 = client.create_model_version("clf", source, run_id=run_id, tags={"t": "1"})
    v2 = client.create_model_version("clf", f"runs:/{run_id}/model", description="two")
    assert (v1.version, v2.version, v2.description) == ("1", "2", "two")

    r = api.get("/model-versions/get", params={"name": "clf", "version": "1"})
    body = r.json()["model_version"]
    assert body["version"] == "1" and body["status"] == "READY"
    assert body["current_stage"] == "None" and body["source"] == source
    assert body["run_id"] == run_id and body["tags"] == [{"key": "t", "value": "1"}]
    r = api.get("/model-versions/get-download-uri", params={"name": "clf", "version": "2"})
    assert r.json() == {"artifact_uri": f"mlflow-artifacts:/0/{run_id}/artifacts/model"}

    client.update_model_version("clf", "1", description="one")
    client.set_model_version_tag("clf", "2", "k", "v")
    client.delete_model_version_tag("clf", "1", "t")
    assert client.get_model_version("clf", "1").description == "one"
    assert client.get_model_version("clf", "1").tags == {}
    found = client.search_model_versions(f"name = 'clf' AND run_id = '{run_id}'")
    assert sorted(mv.version for mv in found) == ["1", "2"]
    assert [mv.version for mv in client.search_model_versions("tags.k = 'v'")] == ["2"]
    found = client.search_model_versions("version_number >= 2 AND name = 'clf'")
    assert [mv.version for mv in found] == ["2"]

    client.set_registered_model_alias("clf", "prod", "2")
    assert client.get_model_version_by_alias("clf", "prod").version == "2"
    model = api.get("/registered-models/get", params={"name": "clf"}).json()["registered_model"]
    assert model["aliases"] == [{"alias": "prod", "version": "2"}]
    assert [v["version"] for v in model["latest_versions"]] == ["2"]
    client.delete_registered_model_alias("clf", "prod")
    r = api.get("/registered-models/alias", params={"name": "clf", "alias": "prod"})
    _error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    r = api.post("/registered-models/alias", json={"name": "clf", "alias": "a", "version": "9"})
    _error(r, 404, "RESOURCE_DOES_NOT_EXIST")

    with pytest.warns(FutureWarning):
        moved = client.transition_model_version_stage("clf", "1", "Production")
    assert moved.current_stage == "Production"
    r = api.post(
        "/model-versions/transition-stage",
        json={
            "name": "clf",
            "version": "2",
            "stage": "production",
            "archive_existing_versions": True,
        },
    )
    assert r.json()["model_version"]["current_stage"] == "Production"
    assert client.get_model_version("clf", "1").current_stage == "Archived"
    r = api.post(
        "/registered-models/get-latest-versions", json={"name": "clf", "stages": ["Archived"]}
    )
    assert [v["version"] for v in r.json()["model_versions"]] == ["1"]

    r = api.get("/model-versions/get", params={"name": "clf", "version": "x"})
    _error(r, 400, "INVALID_PARAMETER_VALUE")
    r = api.get("/model-versions/get", params={"name": "clf", "version": "7"})
    _error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    r = api.post("/model-versions/create", json={"name": "nope", "source": source})
    _error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    r = api.post("/model-versions/create", json={"name": "clf"})
    _error(r, 400, "INVALID_PARAMETER_VALUE")
    bad_run = "runs:/0123456789abcdef0123456789abcdef/model"
    r = api.post("/model-versions/create", json={"name": "clf", "source": bad_run})
    _error(r, 404, "RESOURCE_DOES_NOT_EXIST")

    client.delete_model_version("clf", "1")
    r = api.request("DELETE", "/model-versions/delete", json={"name": "clf", "version": "1"})
    _error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    assert [mv.version for mv in client.search_model_versions("name = 'clf'")] == ["2"]


# --- 3. logged models ------------------------------------------------------------------


def test_logged_models_through_the_client(url: str, api: httpx.Client, ours: LocalBackend) -> None:
    client = MlflowClient()
    exp_id = client.create_experiment("lm")
    run = client.create_run(exp_id)
    run_id = run.info.run_id
    model = client.create_logged_model(
        exp_id, name="net", source_run_id=run_id, params={"lr": "0.1"}, tags={"a": "1"}
    )
    assert model.status == LoggedModelStatus.PENDING
    assert (
        model.artifact_location == f"mlflow-artifacts:/{exp_id}/models/{model.model_id}/artifacts"
    )

    put = httpx.put(
        f"{url}/api/2.0/mlflow-artifacts/artifacts/{exp_id}/models/{model.model_id}/artifacts/w/x.bin",
        content=b"weights",
    )
    assert put.status_code == 200, put.text
    assert (
        ours.open_artifact(run_id, f"_logged_models/{model.model_id}/w/x.bin").read() == b"weights"
    )

    client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    client.set_logged_model_tags(model.model_id, {"b": "2"})
    client.delete_logged_model_tag(model.model_id, "a")
    got = client.get_logged_model(model.model_id)
    assert got.status == LoggedModelStatus.READY
    assert got.tags == {"b": "2"} and got.params == {"lr": "0.1"}

    other = client.create_logged_model(exp_id, name="other", source_run_id=run_id)
    found = client.search_logged_models([exp_id], filter_string="name = 'net'")
    assert [m.model_id for m in found] == [model.model_id]
    found = client.search_logged_models([exp_id], filter_string=f"source_run_id = '{run_id}'")
    assert {m.model_id for m in found} == {model.model_id, other.model_id}
    page = client.search_logged_models([exp_id], max_results=1)
    assert len(page) == 1 and page.token

    listing = api.get(
        f"/logged-models/{model.model_id}/artifacts/directories",
        params={"artifact_directory_path": "w"},
    ).json()
    assert listing["files"] == [{"path": "w/x.bin", "is_dir": False, "file_size": 7}]
    proxy = httpx.get(
        f"{url}/api/2.0/mlflow-artifacts/artifacts",
        params={"path": f"{exp_id}/models/{model.model_id}/artifacts/w"},
    ).json()
    assert proxy == {"files": [{"path": "x.bin", "is_dir": False, "file_size": 7}]}

    client.delete_logged_model(other.model_id)
    with pytest.raises(MlflowException) as exc:
        client.get_logged_model(other.model_id)
    assert exc.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_logged_model_errors_are_mlflows(url: str, api: httpx.Client) -> None:
    run_id = _run(api)
    r = api.post("/logged-models", json={"experiment_id": "0", "name": "m"})
    assert "source_run_id" in _error(r, 400, "INVALID_PARAMETER_VALUE")
    r = api.post("/logged-models", json={"experiment_id": "0", "source_run_id": "0" * 32})
    _error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    exp = api.post("/experiments/create", json={"name": "elsewhere"}).json()["experiment_id"]
    r = api.post("/logged-models", json={"experiment_id": exp, "source_run_id": run_id})
    _error(r, 400, "INVALID_PARAMETER_VALUE")
    _error(api.get("/logged-models/m-nope"), 404, "RESOURCE_DOES_NOT_EXIST")
    _error(api.get(f"/logged-models/m-{'0' * 32}"), 404, "RESOURCE_DOES_NOT_EXIST")

    made = api.post("/logged-models", json={"experiment_id": "0", "source_run_id": run_id})
    info: dict[str, Any] = made.json()["model"]["info"]
    assert info["status"] == "LOGGED_MODEL_PENDING" and info["name"]
    mid = info["model_id"]
    r = api.patch(f"/logged-models/{mid}", json={"status": "DONE"})
    _error(r, 400, "INVALID_PARAMETER_VALUE")
    r = api.patch(f"/logged-models/{mid}", json={"status": 2})
    assert r.json()["model"]["info"]["status"] == "LOGGED_MODEL_READY"
    r = api.request("DELETE", f"/logged-models/{mid}/tags/missing")
    _error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    assert (
        api.post(
            f"/logged-models/{mid}/params", json={"params": [{"key": "p", "value": "1"}]}
        ).json()
        == {}
    )
    r = api.post(f"/logged-models/{mid}/params", json={"params": [{"key": "p", "value": "2"}]})
    _error(r, 400, "INVALID_PARAMETER_VALUE")
    r = api.post("/logged-models/search", json={"experiment_ids": ["0"], "filter": "name >"})
    _error(r, 400, "INVALID_PARAMETER_VALUE")
    r = api.post(
        "/logged-models/search",
        json={"experiment_ids": ["0"], "order_by": [{"field_name": "metrics.acc"}]},
    )
    _error(r, 400, "INVALID_PARAMETER_VALUE")
    r = api.post("/runs/outputs", json={"run_id": run_id, "models": [{"model_id": mid}]})
    assert r.status_code == 200 and r.json() == {}
    other_run = _run(api)
    r = api.post("/runs/outputs", json={"run_id": other_run, "models": [{"model_id": mid}]})
    _error(r, 400, "INVALID_PARAMETER_VALUE")

    # The proxy path of a logged model must name a model of that experiment.
    base = f"{url}/api/2.0/mlflow-artifacts/artifacts"
    r = httpx.put(f"{base}/{exp}/models/{mid}/artifacts/f.txt", content=b"x")
    _error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    r = httpx.put(f"{base}/0/models/{mid}/artifacts", content=b"x")
    _error(r, 400, "INVALID_PARAMETER_VALUE")
    assert httpx.get(f"{base}/0/models/{mid}/artifacts/missing.txt").status_code == 404


_GARBAGE: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/registered-models/create", {"name": ["x"]}),
    ("POST", "/registered-models/create", {"name": "a/b"}),
    ("POST", "/registered-models/rename", {"name": "m", "new_name": 5}),
    ("PATCH", "/registered-models/update", {"name": "m", "description": {}}),
    ("GET", "/registered-models/get", {}),
    ("GET", "/registered-models/search", {"max_results": "0"}),
    ("GET", "/registered-models/search", {"max_results": "abc"}),
    ("GET", "/registered-models/search", {"filter": "tags.k = 3"}),
    ("POST", "/registered-models/get-latest-versions", {"name": "m", "stages": ["Nope"]}),
    ("POST", "/registered-models/set-tag", {"name": "m", "key": "", "value": "v"}),
    ("POST", "/registered-models/alias", {"name": "m", "alias": "latest", "version": "1"}),
    ("POST", "/registered-models/alias", {"name": "m", "alias": "a", "version": "-1"}),
    ("POST", "/model-versions/create", {"name": "m", "source": 1}),
    ("POST", "/model-versions/create", {"name": "m", "source": "runs:/../x"}),
    ("PATCH", "/model-versions/update", {"name": "m", "version": 1.5}),
    ("POST", "/model-versions/transition-stage", {"name": "m", "version": "1", "stage": "Gone"}),
    ("GET", "/model-versions/search", {"filter": "version_number = 'x'"}),
    ("GET", "/model-versions/search", {"order_by": "name SIDEWAYS"}),
    ("GET", "/model-versions/get-download-uri", {"name": "m", "version": "0"}),
    ("POST", "/logged-models", {"experiment_id": "abc", "source_run_id": "0" * 32}),
    ("POST", "/logged-models/search", {"experiment_ids": ["x"]}),
    ("POST", "/logged-models/search", {"max_results": 100_000}),
    ("POST", "/logged-models/search", {"page_token": "%%%"}),
    ("POST", "/runs/outputs", {"run_id": "0" * 32, "models": [{"step": 1}]}),
]


@pytest.mark.parametrize(("method", "path", "fields"), _GARBAGE)
def test_malformed_registry_requests_are_a_400_json(
    url: str, api: httpx.Client, method: str, path: str, fields: dict[str, Any]
) -> None:
    """Bad input is a 4xx in MLflow's shape, never a 500 the client would retry."""
    MlflowClient().create_registered_model("m")
    get = method == "GET"
    r = api.request(method, path, params=fields if get else None, json=None if get else fields)
    assert 400 <= r.status_code < 500, r.text
    assert set(r.json()) == {"error_code", "message"}
