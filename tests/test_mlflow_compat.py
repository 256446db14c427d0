"""The stock ``mlflow`` client against ``modelloop server``.

Each test serves a fresh store on the session's real uvicorn (``live_server`` in
conftest.py) and points MLflow at it with ``mlflow.set_tracking_uri``; MLflow's
process-wide state (tracking URI, active experiment, their environment variables)
is restored afterwards. What MLflow logged is then read back through modelloop's
own ``Client`` on the same store. Raw-HTTP checks are in test_mlflow_http.py.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import mlflow.artifacts
import mlflow.tracking._tracking_service.utils as mlflow_uri_state
import mlflow.tracking.fluent as mlflow_fluent
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.entities import Dataset as MlflowDataset
from mlflow.entities import DatasetInput as MlflowDatasetInput
from mlflow.entities import InputTag, Metric, Param, RunTag
from mlflow.exceptions import MlflowException

from modelloop.backends import LocalBackend, open_backend
from modelloop.entities import Dataset, DatasetInput, RunStatus
from modelloop.entities import Metric as Point
from modelloop.entities import Param as OurParam
from modelloop.errors import InvalidState
from modelloop.settings import Settings
from modelloop.tracking.client import Client

if TYPE_CHECKING:
    from conftest import LiveServer


@pytest.fixture
def store(tmp_path: Path) -> Settings:
    return Settings(
        tracking_uri=str(tmp_path / "store"), capture_git=False, capture_environment=False
    )


@pytest.fixture
def url(live_server: LiveServer, store: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """MLflow pointed at a fresh modelloop server; MLflow's globals restored after."""
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # a 5xx fails fast
    monkeypatch.setattr(mlflow_uri_state, "_tracking_uri", None)
    monkeypatch.setattr(mlflow_fluent, "_active_experiment_id", None)
    with live_server.serving(store) as base:
        mlflow.set_tracking_uri(base)
        try:
            yield base
        finally:
            mlflow.flush_async_logging()
            while mlflow.active_run() is not None:
                mlflow.end_run()


@pytest.fixture
def ours(store: Settings) -> Iterator[Client]:
    """modelloop's client on the store the server serves."""
    c = Client(settings=store)
    yield c
    c.close()


def test_fluent_tracking_is_stored_as_modelloop_runs(url: str, ours: Client) -> None:
    exp_id = mlflow.set_experiment("fluent").experiment_id
    with mlflow.start_run(run_name="parent") as parent:
        mlflow.log_param("lr", 0.1)
        mlflow.log_params({"depth": 3, "model": "tree"})
        mlflow.log_metric("loss", 0.9, step=0)
        mlflow.log_metrics({"loss": 0.5, "acc": 0.7}, step=1)
        future = mlflow.log_metric("loss", 0.25, step=2, synchronous=False)
        mlflow.log_metrics({"acc": 0.8}, step=2, synchronous=False)
        mlflow.flush_async_logging()
        assert future is not None
        future.wait()
        mlflow.set_tag("team", "vision")
        with mlflow.start_run(run_name="child", nested=True) as child:
            mlflow.log_metric("x", 1.0)

    run = ours.get_run(parent.info.run_id)
    assert run.experiment_id == exp_id
    assert run.name == "parent" and run.status is RunStatus.FINISHED
    assert run.params == {"lr": "0.1", "depth": "3", "model": "tree"}
    assert run.metrics == {"loss": 0.25, "acc": 0.8}
    assert run.tags["team"] == "vision"
    assert run.tags["mlflow.source.type"] == "LOCAL"
    # System tags became fields: stored once, not as tags.
    assert not {"mlflow.runName", "mlflow.user", "mlflow.parentRunId"} & set(run.tags)
    assert run.user == MlflowClient().get_run(run.run_id).info.user_id != ""
    history = ours.get_metric_history(run.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 0.9), (1, 0.5), (2, 0.25)]
    nested = ours.get_run(child.info.run_id)
    assert nested.name == "child" and nested.parent_run_id == parent.info.run_id

    client = MlflowClient()
    got = client.get_run(child.info.run_id)
    assert got.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert got.data.tags["mlflow.runName"] == "child" == got.info.run_name
    assert got.info.artifact_uri == f"mlflow-artifacts:/{exp_id}/{child.info.run_id}/artifacts"
    points = client.get_metric_history(parent.info.run_id, "loss")
    assert [(m.step, m.value) for m in points] == [(0, 0.9), (1, 0.5), (2, 0.25)]
    assert client.get_experiment(exp_id).artifact_location == f"mlflow-artifacts:/{exp_id}"


def test_a_modelloop_run_reads_back_with_mlflow_system_tags(url: str, ours: Client) -> None:
    exp_id = ours.create_experiment("native")
    parent = ours.create_run(exp_id, name="outer")
    child = ours.create_run(exp_id, name="inner", parent_run_id=parent.run_id)
    ours.log_metric(child.run_id, "m", 2.5, step=7)
    ours.flush()
    got = MlflowClient().get_run(child.run_id)
    assert got.info.run_name == "inner" and got.info.user_id == child.user
    assert got.data.tags["mlflow.runName"] == "inner"
    assert got.data.tags["mlflow.user"] == child.user
    assert got.data.tags["mlflow.parentRunId"] == parent.run_id
    assert got.data.metrics == {"m": 2.5}
    assert got.data._metric_objs[0].step == 7  # the latest point's own step


def test_artifacts_round_trip_through_the_proxy(url: str, ours: Client, tmp_path: Path) -> None:
    mlflow.set_experiment("files")
    src = tmp_path / "src"
    (src / "deep" / "er").mkdir(parents=True)
    (src / "a.txt").write_text("alpha")
    (src / "deep" / "er" / "b.bin").write_bytes(os.urandom(3 * 1024 * 1024 + 7))  # streamed
    single = tmp_path / "model.pkl"
    single.write_bytes(b"\x80\x04pickle")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(single))
        mlflow.log_artifacts(str(src), artifact_path="data")
    run_id = run.info.run_id

    out = Path(mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=str(tmp_path / "d1")))
    files = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert files == {
        "model.pkl": single.read_bytes(),
        "data/a.txt": b"alpha",
        "data/deep/er/b.bin": (src / "deep" / "er" / "b.bin").read_bytes(),
    }
    client = MlflowClient()
    one = client.download_artifacts(run_id, "data/a.txt", str(tmp_path / "d2"))
    assert Path(one).read_bytes() == b"alpha"
    listed = client.list_artifacts(run_id, "data")
    assert [(f.path, f.is_dir, f.file_size) for f in listed] == [
        ("data/a.txt", False, 5),
        ("data/deep", True, None),
    ]

    # The same files, content-addressed, through modelloop.
    ours_files = {a.path: a for a in ours.list_artifacts(run_id)}
    assert set(ours_files) == {"data", "model.pkl"}
    big = ours.open_artifact(run_id, "data/deep/er/b.bin")
    with big:
        blob = big.read()
    assert (
        hashlib.sha256(blob).hexdigest() == hashlib.sha256(files["data/deep/er/b.bin"]).hexdigest()
    )


def test_search_runs_with_a_filter_and_an_order(url: str) -> None:
    mlflow.set_experiment("search")
    for i, model in enumerate(["cnn", "rnn", "cnn", "mlp"]):
        with mlflow.start_run(run_name=f"r{i}"):
            mlflow.log_param("model", model)
            mlflow.log_metric("acc", 0.5 + i / 10)
    df = mlflow.search_runs(filter_string="params.model = 'cnn'", order_by=["metrics.acc DESC"])
    assert isinstance(df, pd.DataFrame)
    assert list(df["tags.mlflow.runName"]) == ["r2", "r0"]
    assert list(df["metrics.acc"]) == [0.7, 0.5]
    runs = mlflow.search_runs(
        filter_string="metrics.acc >= 0.6 AND attributes.run_name != 'r3'",
        order_by=["metrics.acc ASC"],
        output_format="list",
    )
    assert [r.info.run_name for r in runs] == ["r1", "r2"]
    assert all(r.data.params["model"] in ("rnn", "cnn") for r in runs)
    by_tag = MlflowClient().search_runs(
        [runs[0].info.experiment_id], "tags.mlflow.runName = 'r1'", max_results=1
    )
    assert [r.info.run_id for r in by_tag] == [runs[0].info.run_id]


def test_client_errors_are_mlflow_exceptions(url: str) -> None:
    client = MlflowClient()
    assert client.get_experiment_by_name("no such experiment") is None
    client.create_experiment("taken")
    with pytest.raises(MlflowException) as exists:
        client.create_experiment("taken")
    assert exists.value.error_code == "RESOURCE_ALREADY_EXISTS"
    run = client.create_run(client.get_experiment_by_name("taken").experiment_id)
    client.log_param(run.info.run_id, "p", "1")
    client.log_param(run.info.run_id, "p", "1")  # the same value again is fine
    with pytest.raises(MlflowException, match="Changing param values is not allowed") as changed:
        client.log_param(run.info.run_id, "p", "2")
    assert changed.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as missing:
        client.get_run("f" * 32)
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as missing_exp:
        client.get_experiment("424242")
    assert missing_exp.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_an_ended_run_takes_data_until_it_is_deleted(
    url: str, ours: Client, tmp_path: Path
) -> None:
    client = MlflowClient()
    exp_id = client.create_experiment("late")
    run_id = client.create_run(exp_id).info.run_id
    client.set_terminated(run_id)
    client.log_batch(run_id, metrics=[Metric("sys/cpu", 12.5, 1000, 0)], params=[Param("k", "v")])
    client.log_metric(run_id, "late", 1.0)
    (tmp_path / "late.txt").write_text("after the end")
    client.log_artifact(run_id, str(tmp_path / "late.txt"))
    dataset = MlflowDataset(
        name="tiny",
        digest="be9dd889",
        source_type="code",
        source='{"tags": {}}',
        schema='{"mlflow_colspec": [{"type": "double", "name": "a", "required": true}]}',
        profile='{"num_rows": 2, "num_elements": 2}',
    )
    client.log_inputs(
        run_id, [MlflowDatasetInput(dataset, [InputTag("mlflow.data.context", "eval")])]
    )

    run = ours.get_run(run_id)
    assert run.status is RunStatus.FINISHED
    assert run.metrics == {"sys/cpu": 12.5, "late": 1.0} and run.params == {"k": "v"}
    assert [a.path for a in ours.list_artifacts(run_id)] == ["late.txt"]
    assert [(i.dataset.name, i.context, i.dataset.num_rows) for i in run.inputs] == [
        ("tiny", "eval", 2)
    ]
    assert run.inputs[0].dataset.schema == {"a": "double"}
    back = client.get_run(run_id).inputs.dataset_inputs[0]
    assert back.dataset.digest == dataset.digest and back.tags[0].value == "eval"

    client.delete_run(run_id)
    with pytest.raises(MlflowException) as deleted:
        client.log_metric(run_id, "late", 2.0)
    assert deleted.value.error_code == "INVALID_PARAMETER_VALUE"
    client.restore_run(run_id)
    client.log_metric(run_id, "late", 2.0)


def test_experiment_and_run_management(url: str, ours: Client) -> None:
    client = MlflowClient()
    ids = [client.create_experiment(n, tags={"k": n}) for n in ("exp-a", "exp-b", "other")]
    found = client.search_experiments(filter_string="name LIKE 'exp-%'", order_by=["name DESC"])
    assert [e.name for e in found] == ["exp-b", "exp-a"]
    assert [e.name for e in client.search_experiments(filter_string="tags.k = 'other'")] == [
        "other"
    ]
    client.rename_experiment(ids[2], "renamed")
    client.set_experiment_tag(ids[2], "owner", "me")
    client.delete_experiment(ids[0])
    assert ours.get_experiment(ids[0]).lifecycle_stage.value == "deleted"
    assert ids[0] not in {e.experiment_id for e in client.search_experiments()}
    client.restore_experiment(ids[0])
    assert ours.get_experiment(ids[2]).name == "renamed"
    assert ours.get_experiment(ids[2]).tags["owner"] == "me"

    run = client.create_run(ids[1], run_name="first", tags={"stage": "dev"})
    run_id = run.info.run_id
    client.set_tag(run_id, "mlflow.runName", "second")  # renames the run, as in MLflow
    assert ours.get_run(run_id).name == "second"
    client.set_tag(run_id, "gone", "soon")
    client.delete_tag(run_id, "gone")
    client.log_batch(run_id, tags=[RunTag("mlflow.runName", "third"), RunTag("note", "n")])
    client.update_run(run_id, status="KILLED")
    stored = ours.get_run(run_id)
    assert stored.name == "third" and stored.status is RunStatus.KILLED
    assert stored.tags == {"stage": "dev", "note": "n"}
    client.delete_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == "deleted"
    client.restore_run(run_id)
    assert ours.get_run(run_id).lifecycle_stage.value == "active"


def test_local_backend_allow_ended_logs_to_an_ended_run_but_never_a_deleted_one(
    store_settings: Settings,
) -> None:
    """The keyword the MLflow routes pass (SQLite, and PostgreSQL in CI)."""
    backend = open_backend(store_settings)
    assert isinstance(backend, LocalBackend)
    run = backend.create_run("0")
    backend.update_run(run.run_id, status=RunStatus.FINISHED)
    point = Point("m", 1.0, 1, 0)
    data = DatasetInput(Dataset("d" * 64, "ds", "src", "local", 1, {}, {}), "train")
    with pytest.raises(InvalidState, match="has ended"):
        backend.log_batch(run.run_id, [point])
    with pytest.raises(InvalidState, match="has ended"):
        backend.log_inputs(run.run_id, [data])
    with pytest.raises(InvalidState, match="has ended"):
        backend.upload_artifact(run.run_id, "f", io.BytesIO(b"x"))
    backend.log_batch(run.run_id, [point], [OurParam("p", "v")], allow_ended=True)
    backend.log_inputs(run.run_id, [data], allow_ended=True)
    backend.upload_artifact(run.run_id, "f", io.BytesIO(b"x"), allow_ended=True)
    assert backend.latest_metrics([run.run_id]) == {run.run_id: [point]}
    assert backend.delete_artifacts(run.run_id, "f") == 1
    assert backend.delete_artifacts(run.run_id, "f") == 0
    backend.delete_run(run.run_id)
    with pytest.raises(InvalidState, match="deleted"):
        backend.log_batch(run.run_id, [point], allow_ended=True)
    backend.close()
