"""Dataset fingerprints: digests, schemas and profiles of DataFrames, arrays and files."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelloop.errors import InvalidArgument
from modelloop.tracking.client import Client
from modelloop.tracking.datasets import PROFILE_ROW_LIMIT, fingerprint


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": [1.5, 2.5, np.nan, 4.0, 2.5, -1.0],
            "n": [3, 1, 4, 1, 5, 9],
            "city": ["Oslo", "Lima", "Oslo", None, "Oslo", "Lima"],
            "flag": [True, False, True, True, False, True],
        }
    )


def _dumps(profile: dict[str, Any]) -> str:
    return json.dumps(profile, allow_nan=False, sort_keys=True)


# digests -------------------------------------------------------------------------


def test_equal_data_gives_equal_digests() -> None:
    frame = _frame()
    shifted_index = _frame().set_axis(range(10, 16))
    assert fingerprint(frame).digest == fingerprint(frame).digest
    assert fingerprint(frame.copy()).digest == fingerprint(frame).digest
    assert fingerprint(shifted_index).digest == fingerprint(frame).digest  # index ignored
    assert len(fingerprint(frame).digest) == 64


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda f: f.assign(n=f["n"] + 1), id="values"),
        pytest.param(lambda f: f.iloc[::-1].reset_index(drop=True), id="row-order"),
        pytest.param(lambda f: f.rename(columns={"n": "m"}), id="column-name"),
        pytest.param(lambda f: f.astype({"n": "float64"}), id="dtype"),
        pytest.param(lambda f: f[["n", "x", "city", "flag"]], id="column-order"),
        pytest.param(lambda f: f.iloc[:-1], id="fewer-rows"),
    ],
)
def test_different_data_gives_different_digests(change: Any) -> None:
    frame = _frame()
    assert fingerprint(change(frame)).digest != fingerprint(frame).digest


def test_dataframe_dataset_fields() -> None:
    dataset = fingerprint(_frame())
    assert (dataset.name, dataset.source, dataset.source_type) == (
        "dataframe",
        "pandas",
        "dataframe",
    )
    assert dataset.num_rows == 6
    assert dataset.schema == {"x": "float64", "n": "int64", "city": "str", "flag": "bool"}
    assert fingerprint(_frame(), name="train").name == "train"


def test_numpy_arrays() -> None:
    array = np.arange(12, dtype=np.float64).reshape(4, 3)
    dataset = fingerprint(array)
    assert (dataset.source, dataset.source_type, dataset.num_rows) == ("numpy", "ndarray", 4)
    assert dataset.schema == {"0": "float64", "1": "float64", "2": "float64"}
    assert dataset.profile["1"]["max"] == 10.0
    same = pd.DataFrame(array, columns=["0", "1", "2"])
    assert dataset.digest == fingerprint(same).digest
    assert fingerprint(array.copy()).digest == dataset.digest
    assert fingerprint(array[::-1]).digest != dataset.digest
    assert fingerprint(np.array([1, 2, 3])).schema == {"0": "int64"}
    with pytest.raises(InvalidArgument, match="1-D or 2-D"):
        fingerprint(np.zeros((2, 2, 2)))


def test_bad_inputs_are_invalid() -> None:
    with pytest.raises(InvalidArgument, match="DataFrame"):
        fingerprint([[1, 2], [3, 4]])  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="unique"):
        fingerprint(pd.DataFrame([[1, 2]], columns=["a", "a"]))
    with pytest.raises(InvalidArgument, match="name"):
        fingerprint(_frame(), name="")


def test_unhashable_cells_still_fingerprint() -> None:
    frame = pd.DataFrame({"tags": [["a"], ["b", "c"], ["a"]], "n": [1, 2, 3]})
    dataset = fingerprint(frame)
    assert dataset.digest == fingerprint(frame.copy()).digest
    other = pd.DataFrame({"tags": [["a"], ["b"], ["a"]], "n": [1, 2, 3]})
    assert fingerprint(other).digest != dataset.digest
    assert dataset.profile["tags"]["top"] == [["['a']", 2], ["['b', 'c']", 1]]
    _dumps(dataset.profile)


# profiles ------------------------------------------------------------------------


def _check_numeric(stats: dict[str, Any], column: pd.Series[Any]) -> None:
    assert stats["count"] == column.count()
    assert stats["missing"] == column.isna().sum()
    assert stats["missing_share"] == pytest.approx(column.isna().mean())
    assert stats["distinct"] == column.nunique()
    assert stats["min"] == pytest.approx(column.min())
    assert stats["max"] == pytest.approx(column.max())
    assert stats["mean"] == pytest.approx(column.mean())
    assert stats["std"] == pytest.approx(column.std())
    assert stats["p50"] == pytest.approx(column.median())
    for key in ("min", "max", "mean", "std", "p50", "missing_share"):
        assert type(stats[key]) is float


def _check_top(stats: dict[str, Any], column: pd.Series[Any]) -> None:
    counts = column.value_counts()
    assert stats["top"] == [[str(value), int(n)] for value, n in counts.items()]
    assert stats["distinct"] == column.nunique()
    assert stats["missing"] == column.isna().sum()


def test_profile_matches_pandas() -> None:
    frame = _frame()
    profile = fingerprint(frame).profile
    assert set(profile) == {"x", "n", "city", "flag"}
    _check_numeric(profile["x"], frame["x"])
    _check_numeric(profile["n"], frame["n"])
    _check_top(profile["city"], frame["city"])
    _check_top(profile["flag"], frame["flag"])
    assert profile["city"]["top"] == [["Oslo", 3], ["Lima", 2]]
    assert profile["x"]["missing"] == 1
    _dumps(profile)


def test_profile_is_json_for_awkward_columns() -> None:
    frame = pd.DataFrame(
        {
            "all_nan": [np.nan, np.nan, np.nan],
            "inf": [1.0, np.inf, -np.inf],
            "one": [np.nan, 7.0, np.nan],
            "nullable": pd.array([1, None, 3], dtype="Int64"),
            "when": pd.to_datetime(pd.Series(["2024-03-01 00:00", None, "2023-01-15 12:30"])),
            "utc": pd.date_range("2024-01-01", periods=3, tz="UTC"),
            "kind": pd.Categorical(["a", "b", "a"], categories=["a", "b", "unused"]),
            "mixed": [1, "one", None],
            "delta": pd.to_timedelta([1, 2, 2], unit="s"),
        }
    )
    profile = fingerprint(frame).profile
    text = _dumps(profile)
    assert "NaN" not in text
    assert "Infinity" not in text
    assert profile["all_nan"] == {
        "count": 0,
        "missing": 3,
        "missing_share": 1.0,
        "distinct": 0,
        "min": None,
        "max": None,
        "mean": None,
        "std": None,
        "p50": None,
    }
    assert profile["inf"]["min"] is None
    assert profile["inf"]["max"] is None
    assert profile["inf"]["mean"] is None
    assert profile["inf"]["p50"] == 1.0
    assert profile["one"]["p50"] == 7.0
    assert profile["one"]["std"] is None
    _check_numeric(profile["nullable"], frame["nullable"])
    assert profile["when"]["min"] == "2023-01-15T12:30:00"
    assert profile["when"]["max"] == "2024-03-01T00:00:00"
    assert profile["when"]["missing"] == 1
    assert profile["when"]["distinct"] == 2
    assert profile["utc"]["max"] == "2024-01-03T00:00:00+00:00"
    assert profile["kind"]["top"] == [["a", 2], ["b", 1]]
    assert profile["kind"]["distinct"] == 2
    assert sorted(profile["mixed"]["top"]) == [["1", 1], ["one", 1]]
    assert profile["delta"]["top"][0] == ["0 days 00:00:02", 2]


def test_empty_frame() -> None:
    dataset = fingerprint(pd.DataFrame({"a": pd.Series([], dtype="float64")}))
    assert dataset.num_rows == 0
    assert dataset.profile["a"]["missing_share"] is None
    _dumps(dataset.profile)


# files ---------------------------------------------------------------------------


def _check_file(dataset: Any, path: Path, frame: pd.DataFrame) -> None:
    assert dataset.digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert dataset.source == str(path.resolve())
    assert dataset.source_type == "file"
    assert dataset.name == path.stem
    assert dataset.num_rows == len(frame)
    assert dataset.schema == {str(c): str(t) for c, t in frame.dtypes.items()}
    _check_numeric(dataset.profile["x"], frame["x"])
    _check_numeric(dataset.profile["n"], frame["n"])
    _check_top(dataset.profile["city"], frame["city"])
    assert "profile_rows" not in dataset.profile
    _dumps(dataset.profile)


def test_csv_file(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    _frame().to_csv(path, index=False)
    _check_file(fingerprint(path), path, pd.read_csv(path))
    assert fingerprint(str(path)) == fingerprint(path)
    assert fingerprint(path, name="custom").name == "custom"


@pytest.mark.parametrize("suffix", [".parquet", ".pq"])
def test_parquet_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"train{suffix}"
    _frame().to_parquet(path, index=False)
    _check_file(fingerprint(path), path, pd.read_parquet(path))


def test_json_files(tmp_path: Path) -> None:
    path = tmp_path / "rows.json"
    _frame().to_json(path, orient="records")
    _check_file(fingerprint(path), path, pd.read_json(path))
    lines = tmp_path / "rows.jsonl"
    _frame().to_json(lines, orient="records", lines=True)
    _check_file(fingerprint(lines), lines, pd.read_json(lines, lines=True))


def test_same_bytes_same_digest_different_bytes_different_digest(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    _frame().to_csv(a, index=False)
    _frame().to_csv(b, index=False)
    _frame().iloc[::-1].to_csv(c, index=False)
    assert fingerprint(a).digest == fingerprint(b).digest
    assert fingerprint(a).digest != fingerprint(c).digest


def _large_frame(rows: int) -> pd.DataFrame:
    return pd.DataFrame({"i": np.arange(rows), "half": np.arange(rows) % 2 == 0})


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_large_files_are_profiled_on_their_first_rows(tmp_path: Path, suffix: str) -> None:
    rows = PROFILE_ROW_LIMIT + 5
    frame = _large_frame(rows)
    path = tmp_path / f"big{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".parquet":
        frame.to_parquet(path, index=False, row_group_size=30_000)
    else:
        frame.to_json(path, orient="records", lines=True)
    dataset = fingerprint(path)
    assert dataset.num_rows == rows
    assert dataset.schema == {"i": "int64", "half": "bool"}
    assert dataset.profile["profile_rows"] == {"rows": PROFILE_ROW_LIMIT, "total_rows": rows}
    assert dataset.profile["i"]["count"] == PROFILE_ROW_LIMIT
    assert dataset.profile["i"]["max"] == PROFILE_ROW_LIMIT - 1
    _dumps(dataset.profile)


def test_unsupported_extension_is_invalid(tmp_path: Path) -> None:
    path = tmp_path / "data.txt"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(InvalidArgument, match=r"\.csv.*\.parquet") as caught:
        fingerprint(path)
    assert "'.txt'" in caught.value.message


def test_missing_file_is_invalid(tmp_path: Path) -> None:
    path = tmp_path / "gone.csv"
    with pytest.raises(InvalidArgument, match="does not exist") as caught:
        fingerprint(path)
    assert str(path) in caught.value.message
    folder = tmp_path / "folder.parquet"
    folder.mkdir()
    with pytest.raises(InvalidArgument, match="not a file"):
        fingerprint(folder)


def test_unreadable_content_is_invalid(tmp_path: Path) -> None:
    path = tmp_path / "fake.parquet"
    path.write_bytes(b"this is not parquet")
    with pytest.raises(InvalidArgument, match="cannot read"):
        fingerprint(path)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(InvalidArgument, match="cannot read"):
        fingerprint(empty)


def test_profile_floats_are_plain_python() -> None:
    frame = pd.DataFrame(
        {"f32": np.array([1.5, 2.5], dtype=np.float32), "u8": np.array([1, 2], dtype=np.uint8)}
    )
    profile = fingerprint(frame).profile
    for column in profile.values():
        for value in column.values():
            assert not isinstance(value, np.generic)
            if isinstance(value, float):
                assert math.isfinite(value)


def test_dataset_integers_beyond_64_bits_are_refused_by_name(client: Client) -> None:
    import dataclasses

    from modelloop.entities import DatasetInput

    run = client.create_run(client.create_experiment("big"))
    frame = pd.DataFrame({"a": [1, 2]})
    client.log_input(run.run_id, frame, "ok", "train")
    (logged,) = client.get_run(run.run_id).inputs
    for field in ("num_rows", "created_time"):
        huge = dataclasses.replace(logged.dataset, **{field: 2**70})
        with pytest.raises(InvalidArgument, match=field):
            client.backend.log_inputs(run.run_id, [DatasetInput(huge, "train")])
