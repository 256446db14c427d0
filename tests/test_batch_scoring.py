"""Batch scoring of Parquet and CSV files with a model logged to a real folder store,
through the Python API and ``modelloop predict``."""

from __future__ import annotations

import dataclasses
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from sklearn.linear_model import LogisticRegression
from test_cli import assert_friendly_error, assert_ok, invoke

from modelloop import Client, Settings
from modelloop.cli.app import app
from modelloop.errors import InvalidArgument, SignatureMismatch
from modelloop.models import LoadedModel
from modelloop.serving.batch_scoring import count_rows, score_file

FEATURES = [f"f{i}" for i in range(6)]
SETTINGS = dict(capture_git=False, capture_environment=False)


@dataclasses.dataclass(frozen=True)
class Store:
    folder: Path
    model_uri: str


def _frame(rows: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, len(FEATURES))), columns=FEATURES)
    frame.insert(0, "id", np.arange(rows, dtype=np.int64))
    return frame


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """A registered classifier ``clf`` v1 whose signature needs f0..f5 (doubles)."""
    folder = tmp_path_factory.mktemp("scoring") / "store"
    train = _frame(300, seed=0)[FEATURES]
    labels = (train["f0"] + train["f1"] > 0).astype(int)
    client = Client(settings=Settings(tracking_uri=str(folder), **SETTINGS))
    try:
        run = client.create_run(client.create_experiment("e"))
        model = LogisticRegression().fit(train, labels)
        info = client.log_model(run.run_id, model, "model", input_example=train.head())
        client.end_run(run.run_id)
        mv = client.register_model(info.model_uri, "clf")
    finally:
        client.close()
    return Store(folder, f"models:/clf/{mv.version}")


@pytest.fixture
def model(store: Store) -> LoadedModel:
    client = Client(settings=Settings(tracking_uri=str(store.folder), **SETTINGS))
    try:
        return client.load_model(store.model_uri)
    finally:
        client.close()


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def test_parquet_in_chunks_matches_in_process_predict(model: LoadedModel, tmp_path: Path) -> None:
    data = _frame(120_000)
    source = tmp_path / "in.parquet"
    data.to_parquet(source, row_group_size=25_000)
    calls: list[tuple[int, int | None]] = []
    report = score_file(
        model,
        source,
        tmp_path / "out.parquet",
        chunk_rows=10_000,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert (report.rows, report.chunks) == (120_000, 12)
    assert report.rows_per_second > 0
    assert calls == [(10_000 * (i + 1), 120_000) for i in range(12)]
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert out.columns.tolist() == ["id", *FEATURES, "prediction"]
    assert pq.ParquetFile(tmp_path / "out.parquet").metadata.num_rows == 120_000
    pd.testing.assert_frame_equal(out[data.columns], data)
    np.testing.assert_array_equal(out["prediction"].to_numpy(), model.predict(data[FEATURES]))
    assert 0 < out["prediction"].mean() < 1  # both classes occur: a real comparison
    assert _files(tmp_path) == {"in.parquet", "out.parquet"}  # no temp file left


def test_csv_to_csv_and_parquet_to_csv(model: LoadedModel, tmp_path: Path) -> None:
    data = _frame(2_345)
    expected = model.predict(data[FEATURES])
    data.to_csv(tmp_path / "in.csv", index=False)
    data.to_parquet(tmp_path / "in.parquet")
    assert count_rows(tmp_path / "in.csv") is None
    totals: list[int | None] = []
    for name in ("in.csv", "in.parquet"):
        target = tmp_path / f"out-from-{name}.csv"
        report = score_file(
            model, tmp_path / name, target, chunk_rows=500, progress=lambda _d, t: totals.append(t)
        )
        assert (report.rows, report.chunks) == (2_345, 5)
        out = pd.read_csv(target)
        assert out.columns.tolist() == ["id", *FEATURES, "prediction"]  # header once
        assert out["id"].tolist() == list(range(2_345))
        np.testing.assert_allclose(out[FEATURES].to_numpy(), data[FEATURES].to_numpy())
        np.testing.assert_array_equal(out["prediction"].to_numpy(), expected)
    assert set(totals) == {None, 2_345}  # CSV: total unknown upfront; Parquet: from metadata
    # CSV -> Parquet works too, with the id column only.
    report = score_file(
        model, tmp_path / "in.csv", tmp_path / "ids.parquet", chunk_rows=1000, id_column="id"
    )
    ids = pd.read_parquet(tmp_path / "ids.parquet")
    assert ids.columns.tolist() == ["id", "prediction"]
    np.testing.assert_array_equal(ids["prediction"].to_numpy(), expected)


def test_missing_column_names_the_chunk_and_leaves_no_output(
    model: LoadedModel, tmp_path: Path
) -> None:
    data = _frame(3_000)
    data["f3"] = data["f3"].astype(object)
    data.loc[2_500, "f3"] = "oops"  # the third chunk has a string in a double column
    data.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(SignatureMismatch, match=r"rows 2000-2999 \(chunk 3\) of bad\.csv.*f3"):
        score_file(model, tmp_path / "bad.csv", tmp_path / "out.parquet", chunk_rows=1_000)
    data = _frame(100).drop(columns=["f2"])
    data.to_parquet(tmp_path / "missing.parquet")
    with pytest.raises(SignatureMismatch, match=r"rows 0-99 \(chunk 1\).*f2") as info:
        score_file(model, tmp_path / "missing.parquet", tmp_path / "out.csv")
    assert info.value.code == "SIGNATURE_MISMATCH"
    assert _files(tmp_path) == {"bad.csv", "missing.parquet"}
    with pytest.raises(InvalidArgument, match="format"):
        score_file(model, tmp_path / "missing.parquet", tmp_path / "out.json")
    with pytest.raises(InvalidArgument, match="does not exist"):
        score_file(model, tmp_path / "nope.parquet", tmp_path / "out.csv")


class _TwoOutputs:
    def predict(self, data: Any) -> np.ndarray[Any, Any]:
        return np.column_stack([data["a"] * 2, data["a"] + 1])


def test_two_dimensional_predictions(tmp_path: Path) -> None:
    pd.DataFrame({"a": [1.0, 2.0, 3.0]}).to_parquet(tmp_path / "in.parquet")
    score_file(_TwoOutputs(), tmp_path / "in.parquet", tmp_path / "out.parquet", chunk_rows=2)
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert out.to_dict("list") == {
        "a": [1.0, 2.0, 3.0],
        "prediction.0": [2.0, 4.0, 6.0],
        "prediction.1": [2.0, 3.0, 4.0],
    }


def test_memory_stays_bounded_by_the_chunk(model: LoadedModel, tmp_path: Path) -> None:
    data = _frame(400_000)
    whole_bytes = int(data.memory_usage(deep=True).sum())  # ~22 MB
    source = tmp_path / "big.parquet"
    pq.write_table(pa.Table.from_pandas(data), source, row_group_size=20_000)
    del data
    tracemalloc.start()
    try:
        score_file(model, source, tmp_path / "out.parquet", chunk_rows=10_000)
        chunked_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        # The same work on the whole frame, to show the measurement sees these buffers.
        model.predict(pd.read_parquet(source)[FEATURES])
        whole_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # The measurement sees these buffers: doing it whole costs several times more.
    assert whole_peak > 3 * chunked_peak, (whole_peak, chunked_peak)
    assert chunked_peak < whole_bytes / 3, (chunked_peak, whole_bytes)
    assert pq.ParquetFile(tmp_path / "out.parquet").metadata.num_rows == 400_000


def test_cli_predict(store: Store, tmp_path: Path) -> None:
    data = _frame(5_000)
    data.to_parquet(tmp_path / "in.parquet")
    text = assert_ok(
        invoke(
            store.folder,
            "predict",
            store.model_uri,
            "--input",
            str(tmp_path / "in.parquet"),
            "--output",
            str(tmp_path / "out.csv"),
            "--chunk-rows",
            "1000",
        )
    )
    assert "scored 5,000 rows in 5 chunks" in text
    assert "rows/s" in text
    out = pd.read_csv(tmp_path / "out.csv")
    assert len(out) == 5_000 and "prediction" in out.columns

    data.drop(columns=["f5"]).to_csv(tmp_path / "bad.csv", index=False)
    result = invoke(
        store.folder,
        "predict",
        "models:/clf@champion",
        "--input",
        str(tmp_path / "bad.csv"),
        "--output",
        str(tmp_path / "bad-out.csv"),
    )
    assert "champion" in assert_friendly_error(result, "NOT_FOUND")
    result = invoke(
        store.folder,
        "predict",
        store.model_uri,
        "--input",
        str(tmp_path / "bad.csv"),
        "--output",
        str(tmp_path / "bad-out.csv"),
    )
    message = assert_friendly_error(result, "SIGNATURE_MISMATCH")
    assert "rows 0-4999 (chunk 1) of bad.csv" in message and "f5" in message
    assert not (tmp_path / "bad-out.csv").exists()


def test_every_predict_option_has_help() -> None:
    root: Any = typer.main.get_command(app)  # a TyperGroup (typer's own click)
    command = root.commands["predict"]
    assert command.help
    names = set()
    for param in command.params:
        names.add(param.name)
        assert getattr(param, "help", None), f"{param.name} has no help"
    assert {"model_uri", "input_path", "output_path", "chunk_rows", "trusted"} <= names
