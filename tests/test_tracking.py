"""The tracking API against real stores: SQLite and (in CI) PostgreSQL."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import modelloop
from modelloop import Client, RunStatus
from modelloop.entities import LifecycleStage, Metric, ViewType
from modelloop.errors import (
    AlreadyExists,
    Conflict,
    InvalidArgument,
    InvalidState,
    NotFound,
)


@pytest.fixture
def fluent(settings: modelloop.Settings, monkeypatch: pytest.MonkeyPatch) -> Client:
    """The fluent API pointed at the test store."""
    monkeypatch.setenv("MODELLOOP_ARTIFACTS_URI", settings.artifacts_uri)
    monkeypatch.setenv("MODELLOOP_CAPTURE_GIT", "false")
    monkeypatch.setenv("MODELLOOP_CAPTURE_ENVIRONMENT", "false")
    modelloop.set_tracking_uri(settings.tracking_uri)
    yield modelloop.get_client()
    while modelloop.active_run() is not None:
        modelloop.end_run()
    modelloop.get_client().close()
    modelloop.set_tracking_uri(None)


# experiments ---------------------------------------------------------------


def test_experiment_lifecycle(client: Client) -> None:
    eid = client.create_experiment("churn", tags={"team": "growth"})
    exp = client.get_experiment(eid)
    assert exp.name == "churn"
    assert exp.tags == {"team": "growth"}
    assert client.get_experiment_by_name("churn").experiment_id == eid
    names = [e.name for e in client.list_experiments()]
    assert names[0] == "churn"
    assert "Default" in names

    client.rename_experiment(eid, "churn-v2")
    assert client.get_experiment(eid).name == "churn-v2"
    with pytest.raises(NotFound):
        client.get_experiment_by_name("churn")

    kept = client.create_run(eid, name="kept")
    alone = client.create_run(eid, name="deleted-alone")
    client.delete_run(alone.run_id)
    client.delete_experiment(eid)
    assert client.get_experiment(eid).lifecycle_stage is LifecycleStage.DELETED
    assert client.get_run(kept.run_id).lifecycle_stage is LifecycleStage.DELETED
    assert client.search_runs([eid]).items == []
    assert "churn-v2" not in [e.name for e in client.list_experiments()]
    assert [e.name for e in client.list_experiments(ViewType.DELETED_ONLY)] == ["churn-v2"]
    with pytest.raises(InvalidArgument, match="deleted"):
        client.create_run(eid)
    with pytest.raises(InvalidState, match="restore it before renaming"):
        client.rename_experiment(eid, "churn-v3")
    client.restore_experiment(eid)
    assert client.get_experiment(eid).lifecycle_stage is LifecycleStage.ACTIVE
    assert [r.name for r in client.search_runs([eid])] == ["kept"]
    assert client.get_run(alone.run_id).lifecycle_stage is LifecycleStage.DELETED


def test_experiment_errors(client: Client) -> None:
    client.create_experiment("dup")
    with pytest.raises(AlreadyExists, match="dup"):
        client.create_experiment("dup")
    with pytest.raises(NotFound, match="12345"):
        client.get_experiment("12345")
    with pytest.raises(InvalidArgument, match="experiment id"):
        client.get_experiment("abc")
    with pytest.raises(InvalidArgument, match="experiment name"):
        client.create_experiment("")
    with pytest.raises(InvalidArgument, match="Default"):
        client.delete_experiment("0")
    other = client.create_experiment("other")
    with pytest.raises(AlreadyExists):
        client.rename_experiment(other, "dup")


# runs ----------------------------------------------------------------------


def test_run_lifecycle_and_data(client: Client) -> None:
    run = client.create_run("0", name="first", tags={"stage": "dev"})
    assert run.status is RunStatus.RUNNING
    assert run.name == "first"
    client.log_params(run.run_id, {"lr": 0.1, "layers": 3})
    client.log_param(run.run_id, "lr", 0.1)  # same value again is fine
    client.set_tag(run.run_id, "owner", "ana")
    for step in range(5):
        client.log_metric(run.run_id, "loss", 1.0 / (step + 1), step=step)
    client.log_metrics(run.run_id, {"acc": 0.5, "nan_metric": float("nan")}, step=0)
    client.end_run(run.run_id)

    got = client.get_run(run.run_id)
    assert got.status is RunStatus.FINISHED
    assert got.end_time is not None
    assert got.params == {"lr": "0.1", "layers": "3"}
    assert got.tags == {"stage": "dev", "owner": "ana"}
    assert got.metrics["loss"] == pytest.approx(0.2)
    assert math.isnan(got.metrics["nan_metric"])
    history = client.get_metric_history(run.run_id, "loss")
    assert [m.step for m in history] == [0, 1, 2, 3, 4]
    assert [m.value for m in history] == pytest.approx([1, 0.5, 1 / 3, 0.25, 0.2])

    client.set_tag(run.run_id, "after", "end")  # tags may annotate an ended run
    client.delete_tag(run.run_id, "after")
    with pytest.raises(NotFound):
        client.delete_tag(run.run_id, "after")


def test_latest_metric_is_highest_step_not_last_logged(client: Client) -> None:
    run = client.create_run()
    client.log_metric(run.run_id, "m", 10.0, step=5)
    client.log_metric(run.run_id, "m", 1.0, step=1)
    client.flush()
    client.log_metric(run.run_id, "m", 2.0, step=2)
    assert client.get_run(run.run_id).metrics["m"] == 10.0


def test_bad_input_is_a_typed_error_naming_the_problem(client: Client) -> None:
    run = client.create_run()
    rid = run.run_id
    with pytest.raises(InvalidArgument, match="invalid metric name 'bad\\$key'"):
        client.log_metric(rid, "bad$key", 1.0)
    with pytest.raises(InvalidArgument, match="relative"):
        client.log_param(rid, "../escape", 1)
    with pytest.raises(InvalidArgument, match="maximum length"):
        client.set_tag(rid, "k" * 251, "v")
    with pytest.raises(InvalidArgument, match="metric 'acc' value must be a number, got str"):
        client.log_metric(rid, "acc", "high")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="must be a number"):
        client.log_metric(rid, "acc", None)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="step must be an integer"):
        client.log_metric(rid, "acc", 1.0, step=1.5)  # type: ignore[arg-type]
    client.log_param(rid, "lr", 0.1)
    with pytest.raises(Conflict, match=r"param 'lr' .* cannot be changed to '0\.2'"):
        client.log_param(rid, "lr", 0.2)
    with pytest.raises(NotFound, match="run '0123456789abcdef0123456789abcdef' does not exist"):
        client.log_param("0123456789abcdef0123456789abcdef", "a", 1)
    with pytest.raises(InvalidArgument, match="invalid run id"):
        client.get_run("not-a-run")
    client.end_run(rid)
    with pytest.raises(InvalidState, match="has ended"):
        client.log_metric(rid, "acc", 1.0)
    with pytest.raises(InvalidState, match="has ended"):
        client.log_param(rid, "other", 1)
    with pytest.raises(InvalidState, match="has ended"):
        client.log_text(rid, "x", "late.txt")
    # Nothing half-written: the refused writes left no trace.
    got = client.get_run(rid)
    assert got.params == {"lr": "0.1"}
    assert got.metrics == {}


def test_batch_is_all_or_nothing(client: Client) -> None:
    run = client.create_run()
    client.log_param(run.run_id, "a", 1)
    with pytest.raises(Conflict):
        client.backend.log_batch(
            run.run_id,
            metrics=[Metric("m", 1.0, 1, 0)],
            params=[modelloop.entities.Param("b", "2"), modelloop.entities.Param("a", "9")],
        )
    got = client.get_run(run.run_id)
    assert got.params == {"a": "1"}
    assert got.metrics == {}


def test_long_values_are_truncated_like_mlflow(client: Client) -> None:
    run = client.create_run()
    client.log_param(run.run_id, "p", "x" * 7000)
    client.set_tag(run.run_id, "t", "y" * 9000)
    got = client.get_run(run.run_id)
    assert len(got.params["p"]) == 6000
    assert len(got.tags["t"]) == 8000


def test_delete_and_restore_run(client: Client) -> None:
    run = client.create_run()
    client.delete_run(run.run_id)
    assert client.search_runs(["0"]).items == []
    deleted = client.search_runs(["0"], view_type=ViewType.DELETED_ONLY)
    assert [r.run_id for r in deleted] == [run.run_id]
    with pytest.raises(InvalidState, match="deleted"):
        client.log_param(run.run_id, "a", 1)
    client.restore_run(run.run_id)
    client.log_param(run.run_id, "a", 1)


# fluent API ----------------------------------------------------------------


def test_context_manager_finishes_and_fails(fluent: Client) -> None:
    modelloop.set_experiment("fluent")
    with modelloop.start_run(run_name="ok") as ok:
        modelloop.log_metric("x", 1.0)
    assert fluent.get_run(ok.run_id).status is RunStatus.FINISHED

    def fail() -> str:
        with modelloop.start_run(run_name="bad") as bad:
            modelloop.log_param("p", 1)
            _ = 1 / 0
        return bad.run_id

    with pytest.raises(ZeroDivisionError):
        fail()
    bad = fluent.search_runs(["fluent"], "attributes.run_name = 'bad'")[0]
    failed = fluent.get_run(bad.run_id)
    assert failed.status is RunStatus.FAILED
    assert failed.status_message == "ZeroDivisionError: division by zero"
    assert modelloop.active_run() is None


def test_nested_runs(fluent: Client) -> None:
    with modelloop.start_run(run_name="parent") as parent:
        with pytest.raises(InvalidArgument, match="already active"):
            modelloop.start_run()
        with modelloop.start_run(run_name="child", nested=True) as child:
            assert modelloop.active_run() is child
            modelloop.log_metric("depth", 2)
        assert modelloop.active_run() is parent
    got = fluent.get_run(child.run_id)
    assert got.parent_run_id == parent.run_id
    assert got.metrics == {"depth": 2.0}
    found = fluent.search_runs(["0"], f"attributes.parent_run_id = '{parent.run_id}'")
    assert [r.run_id for r in found] == [child.run_id]
    # MLflow's system tags name the same attributes.
    found = fluent.search_runs(["0"], f"tags.mlflow.parentRunId = '{parent.run_id}'")
    assert [r.run_id for r in found] == [child.run_id]
    user = fluent.get_run(child.run_id).user
    assert len(fluent.search_runs(["0"], f"tags.`mlflow.user` = '{user}'")) == 2


def test_no_active_run_is_a_clear_error(fluent: Client) -> None:
    with pytest.raises(InvalidArgument, match="no active run"):
        modelloop.log_metric("x", 1)


def test_seed_everything_records_the_seed(fluent: Client) -> None:
    modelloop.seed_everything(1234)
    first = np.random.rand()
    with modelloop.start_run() as run:
        modelloop.seed_everything(1234)
        assert np.random.rand() == first
    assert fluent.get_run(run.run_id).params["seed"] == "1234"


# artifacts -----------------------------------------------------------------


def test_artifacts_files_folders_text_dict_figure(client: Client, tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = client.create_run()
    rid = run.run_id
    f = tmp_path / "model.txt"
    f.write_text("weights")
    folder = tmp_path / "plots"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    (folder / "sub" / "b.txt").write_text("b")
    client.log_artifact(rid, f)
    client.log_artifact(rid, f, "copies")
    client.log_artifacts(rid, folder, "plots")
    client.log_text(rid, "hello", "notes/readme.md")
    client.log_dict(rid, {"a": 1, "b": [1, 2]}, "config.json")
    client.log_dict(rid, {"a": 1}, "config.yaml")
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    client.log_figure(rid, fig, "figs/curve.png")
    plt.close(fig)

    top = {(a.path, a.is_dir) for a in client.list_artifacts(rid)}
    assert top == {
        ("model.txt", False),
        ("copies", True),
        ("plots", True),
        ("notes", True),
        ("config.json", False),
        ("config.yaml", False),
        ("figs", True),
    }
    assert [a.path for a in client.list_artifacts(rid, "plots")] == ["plots/a.txt", "plots/sub"]
    with client.open_artifact(rid, "config.json") as fh:
        assert json.loads(fh.read()) == {"a": 1, "b": [1, 2]}
    with client.open_artifact(rid, "figs/curve.png") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"

    out = client.download_artifacts(rid, "plots", tmp_path / "dl")
    assert (out / "sub" / "b.txt").read_text() == "b"
    whole = client.download_artifacts(rid, dst_path=tmp_path / "all")
    assert (whole / "notes" / "readme.md").read_text() == "hello"

    # The same content under two paths is one blob.
    digests = {a.digest for a in client.list_artifacts(rid) if a.path == "model.txt"}
    copies = {a.digest for a in client.list_artifacts(rid, "copies")}
    assert digests == copies


def test_artifact_path_traversal_is_refused(client: Client, tmp_path: Path) -> None:
    run = client.create_run()
    for bad in ("../../etc/passwd", "/etc/passwd", "a/../../b", "a\\b", "a//b"):
        with pytest.raises(InvalidArgument, match="artifact path"):
            client.log_text(run.run_id, "x", bad)
    with pytest.raises(NotFound):
        client.open_artifact(run.run_id, "missing.txt")


def test_log_dict_refuses_unserialisable(client: Client) -> None:
    run = client.create_run()
    with pytest.raises(InvalidArgument, match="not serialisable"):
        client.log_dict(run.run_id, {"x": object()}, "bad.json")


# datasets ------------------------------------------------------------------


def test_log_input_same_data_is_one_dataset(client: Client, tmp_path: Path) -> None:
    df = pd.DataFrame({"age": [30, 40, None], "city": ["a", "b", "a"]})
    r1 = client.create_run()
    r2 = client.create_run()
    d1 = client.log_input(r1.run_id, df, "customers")
    d2 = client.log_input(r2.run_id, df.copy(), "customers", context="eval")
    assert d1.digest == d2.digest
    got = client.get_run(r2.run_id)
    (inp,) = got.inputs
    assert inp.context == "eval"
    assert inp.dataset.num_rows == 3
    assert inp.dataset.schema == {"age": "float64", "city": "object"} or "age" in inp.dataset.schema
    assert inp.dataset.profile["age"]["missing"] == 1

    path = tmp_path / "data.csv"
    df.to_csv(path, index=False)
    d3 = client.log_input(r1.run_id, path)
    assert d3.source == str(path.resolve())
    assert d3.num_rows == 3
    found = client.search_runs(["0"], f"datasets.digest = '{d1.digest}'")
    assert {r.run_id for r in found} == {r1.run_id, r2.run_id}


# search --------------------------------------------------------------------


def test_search_runs_filter_order_paging_and_pandas(client: Client) -> None:
    eid = client.create_experiment("search")
    for i in range(7):
        run = client.create_run(eid, name=f"r{i}")
        client.log_param(run.run_id, "model", "rf" if i % 2 else "lr")
        client.log_metric(run.run_id, "acc", i / 10)
        client.end_run(run.run_id)
    page = client.search_runs(
        ["search"], "metrics.acc >= 0.2 AND params.model = 'rf'", ["metrics.acc DESC"]
    )
    assert [r.name for r in page] == ["r5", "r3"]

    seen: list[str] = []
    token = None
    while True:
        page = client.search_runs([eid], order_by=["metrics.acc"], max_results=3, page_token=token)
        seen += [r.name for r in page]
        token = page.next_page_token
        if token is None:
            break
    assert seen == [f"r{i}" for i in range(7)]

    frame = client.search_runs([eid], "params.model = 'lr'", output_format="pandas")
    assert len(frame) == 4
    assert {"run_id", "metrics.acc", "params.model", "start_time"} <= set(frame.columns)
    assert frame.attrs["next_page_token"] is None
    with pytest.raises(InvalidArgument):
        client.search_runs([eid], "metrics.acc >> 1")
    with pytest.raises(NotFound, match="nope"):
        client.search_runs(["nope"])


def test_nul_characters_are_refused_on_every_store(client: Client) -> None:
    with pytest.raises(InvalidArgument, match="NUL"):
        client.create_experiment("a\x00b")
    run = client.create_run()
    with pytest.raises(InvalidArgument, match="NUL"):
        client.log_param(run.run_id, "p", "x\x00y")
    with pytest.raises(InvalidArgument, match="NUL"):
        client.set_tag(run.run_id, "t", "x\x00y")


def test_the_mlflow_api_reads_agree_with_the_plain_ones(store_settings: modelloop.Settings) -> None:
    """The one-read variants the MLflow API uses (run and latest points together, the
    run as created, the run info after an update) give what the plain calls give."""
    from modelloop.backends import LocalBackend
    from modelloop.backends.factory import open_backend

    backend = open_backend(store_settings)
    assert isinstance(backend, LocalBackend)
    try:
        eid = backend.create_experiment("agree")
        made = backend.create_run(eid, name="r", tags={"z": "1", "a": "2"}, user="u")
        assert made == backend.get_run(made.run_id)
        assert list(made.tags) == ["a", "z"]
        points = [Metric("m", 0.5, 10, 2), Metric("m", 0.7, 5, 1), Metric("n", math.nan, 1, 0)]
        backend.log_batch(made.run_id, points, [modelloop.entities.Param("p", "x")])
        run, latest = backend.get_run_with_latest(made.run_id)
        assert run == backend.get_run(made.run_id)
        assert [(m.key, m.step, m.timestamp) for m in latest] == [("m", 2, 10), ("n", 0, 1)]
        assert latest[0].value == 0.5
        assert math.isnan(latest[1].value)
        assert latest == backend.latest_metrics([made.run_id])[made.run_id]
        page, by_run = backend.search_runs_with_latest([eid], "params.p = 'x'")
        assert list(page) == list(backend.search_runs([eid], "params.p = 'x'"))
        assert by_run[made.run_id] == latest
        info = backend.update_run_info(made.run_id, RunStatus.FINISHED, end_time=99)
        full = backend.get_run(made.run_id)
        assert (info.status, info.end_time, info.name) == (RunStatus.FINISHED, 99, "r")
        assert info == dataclasses.replace(full, params={}, metrics={}, tags={}, inputs=())
        missing = "0123456789abcdef0123456789abcdef"
        with pytest.raises(NotFound, match=f"run '{missing}' does not exist"):
            backend.update_run(missing, RunStatus.FAILED)
        with pytest.raises(NotFound, match=f"run '{missing}' does not exist"):
            backend.update_run(missing)
        with pytest.raises(NotFound, match=f"run '{missing}' does not exist"):
            backend.get_run_with_latest(missing)
        with pytest.raises(InvalidArgument, match="invalid run id"):
            backend.update_run("nope", RunStatus.FAILED)
    finally:
        backend.close()
