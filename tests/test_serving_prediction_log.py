"""Prediction logging to Parquet on a real folder: concurrency, partitions, sampling,
ndarray/2-D outputs, feedback joins, and failures that must not reach the caller."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelloop.errors import InvalidArgument
from modelloop.serving.prediction_log import (
    PREDICTION_COLUMNS,
    PredictionLogger,
    predictions_root,
    read_feedback,
    read_predictions,
)

DAY1 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAY2 = DAY1 + 86_400_000 + 3_600_000  # 2026-01-02T01:00:00Z


def _frame(rng: random.Random, rows: int, tag: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": [rng.random() for _ in range(rows)],
            "n": [tag * 10 + i for i in range(rows)],
            "s": [f"s{tag}-{i}" for i in range(rows)],
        }
    )


def test_concurrent_logging_keeps_every_row(tmp_path: Path) -> None:
    root = str(tmp_path / "preds")
    logger = PredictionLogger(root, deployment="churn", max_rows=500, max_seconds=0.05)
    logged: dict[str, tuple[pd.DataFrame, np.ndarray]] = {}
    lock = threading.Lock()

    def worker(t: int) -> None:
        rng = random.Random(t)
        for i in range(125):
            rid = f"t{t}-r{i}"
            frame = _frame(rng, rng.randint(1, 5), t * 1000 + i)
            out = np.asarray(frame["x"] * 2.0)
            with lock:
                logged[rid] = (frame, out)
            logger.log(
                request_id=rid,
                route="/v2/models/churn/infer",
                model_name="churn",
                model_version="3",
                inputs=frame,
                outputs=out,
                latency_ms=float(i),
                time_ms=DAY1 + i,
            )

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    logger.close()
    logger.close()  # idempotent

    assert len(logged) == 1000
    total = sum(len(f) for f, _ in logged.values())
    df = read_predictions(root, "churn")
    assert len(df) == total == logger.rows_logged
    assert logger.requests_logged == 1000
    assert logger.errors == 0
    assert logger.files_written >= 2  # max_rows=500 forced several flushes
    assert list(df.columns[: len(PREDICTION_COLUMNS)]) == list(PREDICTION_COLUMNS)
    assert set(df["deployment"]) == {"churn"}
    assert str(df["time"].dt.tz) == "UTC"
    for rid, group in df.groupby("request_id"):
        frame, out = logged[str(rid)]
        group = group.sort_values("row")
        assert group["row"].tolist() == list(range(len(frame)))
        assert group["input.x"].tolist() == frame["x"].tolist()
        assert group["input.n"].tolist() == frame["n"].tolist()
        assert group["input.s"].tolist() == frame["s"].tolist()
        assert group["output"].tolist() == out.tolist()
        assert group["latency_ms"].iloc[0] == float(str(rid).split("-r")[1])
    assert set(df["request_id"]) == set(logged)
    # Sorted by time, request_id, row.
    key = list(zip(df["time"], df["request_id"], df["row"], strict=True))
    assert key == sorted(key)


def test_day_partitions_and_time_window(tmp_path: Path) -> None:
    root = str(tmp_path)
    logger = PredictionLogger(root, deployment="d", max_seconds=60)
    for rid, when in (("a", DAY1 + 5), ("b", DAY2), ("c", DAY2 + 10)):
        logger.log(
            request_id=rid,
            route="/invocations",
            model_name="m",
            model_version="1",
            inputs=pd.DataFrame({"f": [1.0, 2.0]}),
            outputs=np.array([0, 1]),
            latency_ms=1.0,
            time_ms=when,
        )
    assert logger.flush() == 6
    logger.close()
    days = sorted(p.name for p in (tmp_path / "deployment=d").iterdir())
    assert days == ["date=2026-01-01", "date=2026-01-02"]
    for day in days:
        files = list((tmp_path / "deployment=d" / day).iterdir())
        assert len(files) == 1  # one file per flush and day
        assert files[0].name.startswith("part-") and files[0].suffix == ".parquet"
    assert read_predictions(root, "d")["request_id"].tolist() == ["a", "a", "b", "b", "c", "c"]
    window = read_predictions(root, "d", since_ms=DAY2, until_ms=DAY2 + 10)
    assert window["request_id"].tolist() == ["b", "b"]
    assert read_predictions(root, "d", until_ms=DAY1 + 5).empty
    assert read_predictions(root, "d", since_ms=0, until_ms=0).empty
    assert read_predictions(root, "other").columns.tolist() == list(PREDICTION_COLUMNS)


def test_sampling_is_about_the_rate_and_deterministic(tmp_path: Path) -> None:
    kept: list[set[str]] = []
    for folder in ("one", "two"):
        root = str(tmp_path / folder)
        logger = PredictionLogger(root, deployment="d", sample_rate=0.25, max_seconds=60)
        for i in range(4000):
            logger.log(
                request_id=f"req-{i}",
                route="/r",
                model_name="m",
                model_version="1",
                inputs=np.array([[float(i)]]),
                outputs=np.array([i]),
                latency_ms=0.1,
                time_ms=DAY1,
            )
            logger.log_feedback(f"req-{i}", i, DAY1 + 1)
        logger.close()
        kept.append(set(read_predictions(root, "d")["request_id"]))
        # Feedback is sampled by the same ids, so every kept prediction has its truth.
        assert set(read_feedback(root, "d")["request_id"]) == kept[-1]
    assert kept[0] == kept[1]
    assert 0.22 * 4000 < len(kept[0]) < 0.28 * 4000


def test_ndarray_inputs_and_2d_outputs_with_mixed_models(tmp_path: Path) -> None:
    root = str(tmp_path)
    logger = PredictionLogger(root, deployment="d", max_seconds=60)
    logger.log(
        request_id="arr",
        route="/v2",
        model_name="tensor",
        model_version="2",
        inputs=np.arange(6, dtype=np.float32).reshape(3, 2),
        outputs=np.array([[0.1, 0.9], [0.8, 0.2], [0.5, 0.5]]),
        latency_ms=3.0,
        time_ms=DAY1,
    )
    logger.log(
        request_id="tab",
        route="/invocations",
        model_name="table",
        model_version="1",
        inputs=pd.DataFrame({"age": [30]}),
        outputs=np.array(["yes"]),
        latency_ms=1.0,
        time_ms=DAY1 + 1,
    )
    logger.close()
    df = read_predictions(root, "d")
    arr, tab = df[df.request_id == "arr"], df[df.request_id == "tab"]
    assert arr["input.0"].tolist() == [0.0, 2.0, 4.0]
    assert arr["input.1"].tolist() == [1.0, 3.0, 5.0]
    assert arr["output.1"].tolist() == [0.9, 0.2, 0.5]
    assert arr["input.age"].isna().all() and arr["output"].isna().all()
    assert tab["output"].tolist() == ["yes"]
    assert tab["input.age"].tolist() == [30]
    assert tab["output.0"].isna().all()
    assert df["model_name"].tolist() == ["tensor"] * 3 + ["table"]


def test_feedback_joins_predictions(tmp_path: Path) -> None:
    root = predictions_root(str(tmp_path / "artifacts") + "/")
    assert root == str(tmp_path / "artifacts" / "predictions")
    logger = PredictionLogger(root, deployment="d", max_seconds=60)
    for rid, rows in (("one", 1), ("three", 3)):
        logger.log(
            request_id=rid,
            route="/r",
            model_name="m",
            model_version="1",
            inputs=pd.DataFrame({"f": range(rows)}),
            outputs=np.arange(rows) % 2,
            latency_ms=1.0,
            time_ms=DAY1,
        )
    logger.log_feedback("one", 1, DAY2)
    logger.log_feedback("three", [1, 1, 0], DAY2)
    logger.close()
    feedback = read_feedback(root, "d")
    assert feedback[["request_id", "row"]].values.tolist() == [
        ["one", 0],
        ["three", 0],
        ["three", 1],
        ["three", 2],
    ]
    joined = read_predictions(root, "d").merge(feedback, on=["request_id", "row"])
    assert len(joined) == 4
    assert (joined["output"] == joined["ground_truth"]).tolist() == [False, False, True, True]
    assert read_feedback(str(tmp_path / "none"), "d").columns.tolist() == [
        "request_id",
        "row",
        "time",
        "ground_truth",
    ]


def test_unwritable_root_and_bad_requests_never_raise(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    logger = PredictionLogger(str(blocker / "preds"), deployment="d", max_seconds=60)
    for i in range(3):
        logger.log(
            request_id=f"r{i}",
            route="/r",
            model_name="m",
            model_version="1",
            inputs=pd.DataFrame({"f": [1.0]}),
            outputs=np.array([1]),
            latency_ms=1.0,
            time_ms=DAY1,
        )
    assert logger.flush() == 0
    assert logger.errors == 1  # one failed file, not one per request
    assert logger.dropped == 3
    assert logger.files_written == 0
    logger.close()

    good = PredictionLogger(str(tmp_path / "ok"), deployment="d", max_seconds=60)
    good.log(  # outputs do not match the rows: dropped at flush, the rest is written
        request_id="bad",
        route="/r",
        model_name="m",
        model_version="1",
        inputs=pd.DataFrame({"f": [1.0, 2.0]}),
        outputs=np.array([1]),
        latency_ms=1.0,
        time_ms=DAY1,
    )
    good.log(  # no len(): counted at log() time
        request_id="worse",
        route="/r",
        model_name="m",
        model_version="1",
        inputs=object(),  # type: ignore[arg-type]
        outputs=np.array([1]),
        latency_ms=1.0,
        time_ms=DAY1,
    )
    good.log(
        request_id="fine",
        route="/r",
        model_name="m",
        model_version="1",
        inputs=pd.DataFrame({"f": [3.0]}),
        outputs=np.array([0]),
        latency_ms=1.0,
        time_ms=DAY1,
    )
    assert good.errors == 1
    assert good.flush() == 1
    assert good.errors == 2
    good.close()
    assert read_predictions(str(tmp_path / "ok"), "d")["request_id"].tolist() == ["fine"]
    with pytest.raises(InvalidArgument):
        PredictionLogger(str(tmp_path), deployment="../x")


def test_background_thread_flushes_on_time(tmp_path: Path) -> None:
    logger = PredictionLogger(str(tmp_path), deployment="d", max_seconds=0.05)
    logger.log(
        request_id="r",
        route="/r",
        model_name="m",
        model_version="1",
        inputs=pd.DataFrame({"f": [1.0]}),
        outputs=np.array([1]),
        latency_ms=1.0,
        time_ms=DAY1,
    )
    deadline = time.monotonic() + 10
    while logger.files_written == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert logger.files_written == 1  # written without flush() or close()
    assert len(read_predictions(str(tmp_path), "d")) == 1
    logger.close()
    # After close, log() is a counted no-op rather than a silent leak.
    logger.log(
        request_id="late",
        route="/r",
        model_name="m",
        model_version="1",
        inputs=pd.DataFrame({"f": [1.0]}),
        outputs=np.array([1]),
        latency_ms=1.0,
        time_ms=DAY1,
    )
    assert logger.dropped == 1


def test_hot_path_cost_and_nothing_lost(tmp_path: Path) -> None:
    """100,000 log() calls: prints the cost per call (not asserted: machines differ)
    and checks that every row reached storage."""
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [3, 4]})
    out = np.array([0.5, 0.25])
    logger = PredictionLogger(str(tmp_path), deployment="perf", max_rows=50_000)
    started = time.perf_counter()
    for i in range(100_000):
        logger.log(
            request_id=f"r{i}",
            route="/v2/models/m/infer",
            model_name="m",
            model_version="1",
            inputs=frame,
            outputs=out,
            latency_ms=0.3,
            time_ms=DAY1 + i,
        )
    per_call_us = (time.perf_counter() - started) / 100_000 * 1e6
    logger.close()
    print(f"PredictionLogger.log: {per_call_us:.2f} us/call")
    assert logger.rows_logged == 200_000
    assert logger.errors == 0 and logger.dropped == 0
    df = read_predictions(str(tmp_path), "perf", since_ms=DAY1 + 99_990)
    assert df["request_id"].tolist() == [f"r{i}" for i in range(99_990, 100_000) for _ in "ab"]


def test_fsspec_remote_root() -> None:
    # memory:// stands in for s3:// and the like: no local rename, whole-object writes.
    root = f"memory://preds-{time.time_ns()}"
    logger = PredictionLogger(root, deployment="d", max_seconds=60)
    logger.log(
        request_id="r",
        route="/r",
        model_name="m",
        model_version="1",
        inputs=pd.DataFrame({"f": [1.0, 2.0]}),
        outputs=np.array([1, 0]),
        latency_ms=1.0,
        time_ms=DAY1,
    )
    logger.log_feedback("r", [1, 1], DAY1)
    logger.close()
    assert logger.files_written == 2
    assert read_predictions(root, "d")["output"].tolist() == [1, 0]
    assert read_feedback(root, "d")["ground_truth"].tolist() == [1, 1]


def _log(logger: PredictionLogger, rid: str, inputs: object, outputs: object, **kw: object) -> None:
    args: dict[str, object] = dict(
        request_id=rid, route="/r", model_name="m", model_version="1", latency_ms=1.0
    )
    args.update(kw)
    args.setdefault("time_ms", DAY1)
    logger.log(inputs=inputs, outputs=outputs, **args)  # type: ignore[arg-type]


def test_interleaved_column_sets_and_dtypes_keep_their_values(tmp_path: Path) -> None:
    """Requests of different shapes arrive interleaved in one flush; each row keeps its
    own values, columns it did not have are null, and names compare by value (each
    request has its own column Index, as parsed requests do)."""
    rng = np.random.default_rng(7)
    logger = PredictionLogger(str(tmp_path), deployment="d", max_seconds=60)
    expected: dict[str, dict[str, list[object]]] = {}
    for i in range(300):
        rid = f"r{i:03d}"
        rows = 1 + i % 3
        kind = i % 4
        if kind == 0:  # float columns a, b
            data: dict[str, object] = {"a": rng.random(rows), "b": rng.random(rows)}
        elif kind == 1:  # the same names, int columns
            data = {"a": rng.integers(0, 100, rows), "b": rng.integers(0, 100, rows)}
        elif kind == 2:  # other names, object-dtype Index
            data = {"c": rng.random(rows)}
        else:  # mixed dtypes: the pandas path
            data = {"a": rng.random(rows), "s": [f"t{i}-{r}" for r in range(rows)]}
        frame = pd.DataFrame(data)
        if kind == 2:
            frame.columns = pd.Index(["c"], dtype=object)
        out = rng.integers(0, 2, rows)
        _log(logger, rid, frame, out, model_version=i % 5, time_ms=DAY1 + i)
        expected[rid] = {**{f"input.{k}": list(v) for k, v in data.items()}, "output": list(out)}
    assert logger.flush() == sum(1 + i % 3 for i in range(300))
    logger.close()
    assert logger.errors == logger.dropped == 0
    df = read_predictions(str(tmp_path), "d")
    assert list(df.columns) == [
        *PREDICTION_COLUMNS,
        "input.a",
        "input.b",
        "input.c",
        "input.s",
        "output",
    ]
    for rid, group in df.groupby("request_id"):
        want = expected[str(rid)]
        assert group["row"].tolist() == list(range(len(group)))
        assert group["model_version"].tolist() == [str(int(str(rid)[1:]) % 5)] * len(group)
        for column in ("input.a", "input.b", "input.c", "input.s", "output"):
            if column in want:
                assert group[column].tolist() == pytest.approx(want[column])
            else:
                assert group[column].isna().all()


def test_ndarray_shapes_and_multi_row_requests(tmp_path: Path) -> None:
    logger = PredictionLogger(str(tmp_path), deployment="d", max_seconds=60)
    _log(logger, "flat", np.array([1, 2, 3], dtype=np.int64), np.array([0, 1, 0]))
    _log(logger, "cube", np.arange(8, dtype=np.float32).reshape(2, 2, 2), np.array([1, 0]))
    _log(logger, "cube2", np.arange(8, 16, dtype=np.float32).reshape(2, 2, 2), np.array([0, 0]))
    logger.close()
    df = read_predictions(str(tmp_path), "d").set_index(["request_id", "row"])
    assert df.loc["flat", "input.0"].tolist() == [1, 2, 3]
    cube = df.loc[["cube", "cube2"], [f"input.{i}" for i in range(4)]]
    assert cube.to_numpy().tolist() == np.arange(16).reshape(4, 4).tolist()
    assert df.loc["cube2", "output"].tolist() == [0, 0]
    assert logger.requests_logged == 3 and logger.rows_logged == 7


def test_bad_times_drop_only_their_requests(tmp_path: Path) -> None:
    logger = PredictionLogger(str(tmp_path), deployment="d", max_seconds=60)
    frame = pd.DataFrame({"f": [1.0]})
    _log(logger, "ok1", frame, np.array([1]), time_ms=DAY1)
    _log(logger, "none", frame, np.array([1]), time_ms=None)
    _log(logger, "huge", frame, np.array([1]), time_ms=10**20)
    _log(logger, "ok2", frame, np.array([1]), time_ms=DAY2)
    assert logger.flush() == 2
    logger.close()
    assert logger.dropped == 2 and logger.errors == 2
    assert read_predictions(str(tmp_path), "d")["request_id"].tolist() == ["ok1", "ok2"]


def test_extension_dtypes_are_kept(tmp_path: Path) -> None:
    logger = PredictionLogger(str(tmp_path), deployment="d", max_seconds=60)
    for i in range(3):
        frame = pd.DataFrame(
            {
                "n": pd.array([i, None], dtype="Int64"),
                "k": pd.Categorical(["x", "y"]),
            }
        )
        _log(logger, f"r{i}", frame, np.array([0.5, 1.5]))
    _log(logger, "r3", pd.DataFrame({"n": pd.array([7, 8], dtype="Int64")}), np.array([1, 2]))
    logger.close()
    assert logger.errors == logger.dropped == 0
    df = read_predictions(str(tmp_path), "d")
    assert df["input.n"].tolist()[::2] == [0, 1, 2, 7]
    assert df["input.n"].isna().tolist() == [False, True] * 3 + [False, False]
    assert df["input.k"].tolist()[:6] == ["x", "y"] * 3


def test_small_conversions_still_make_one_file_per_write(tmp_path: Path) -> None:
    logger = PredictionLogger(str(tmp_path), deployment="d", max_rows=10_000, max_seconds=60)
    for i in range(3000):
        _log(logger, f"r{i}", np.array([[float(i), 1.0]]), np.array([i % 2]), time_ms=DAY1 + i)
    # The background thread converts every 1,000 rows without writing a file.
    deadline = time.monotonic() + 10
    while logger._pending_rows >= 1000 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert logger._pending_rows < 1000
    assert logger.files_written == 0
    assert logger.flush() == 3000
    assert logger.files_written == 1
    logger.close()
    df = read_predictions(str(tmp_path), "d")
    assert df["input.0"].tolist() == [float(i) for i in range(3000)]
    assert df["output"].tolist() == [i % 2 for i in range(3000)]
