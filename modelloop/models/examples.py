"""Input examples on disk: ``input_example.json``.

A DataFrame is stored in pandas' "split" layout (``columns`` + row-major ``data``)
plus its dtypes, so it comes back with the same dtypes; an ndarray as a nested
list with its dtype and shape. Reading also understands MLflow's files (split
DataFrames and ``{"inputs": ...}`` arrays).
"""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelloop.errors import DataCorrupted, InvalidArgument
from modelloop.models.signature import to_frame

__all__ = ["EXAMPLE_FILE", "normalize_example", "read_example", "write_example"]

EXAMPLE_FILE = "input_example.json"


def normalize_example(example: Any) -> Any:
    """A DataFrame (for tables, dicts, records) or an ndarray (for everything else)."""
    if example is None:
        return None
    example = to_frame(example)
    if isinstance(example, pd.DataFrame):
        return example
    if isinstance(example, pd.Series):
        return example.to_frame()
    return np.asarray(example)


def _json_value(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return None  # JSON has no NaN; the stored dtype restores it on reading
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_example(example: Any, directory: Path) -> str:
    """Write a normalized example into ``directory``; return the file name."""
    if isinstance(example, pd.DataFrame):
        columns = [str(c) for c in example.columns]
        binary = [c for c in columns if _is_binary(example[c])]
        rows = example.astype(object).to_numpy().tolist()
        body: dict[str, Any] = {
            "type": "dataframe",
            "columns": columns,
            "data": [[_json_value(v) for v in row] for row in rows],
            "dtypes": {c: str(example[c].dtype) for c in columns},
            "base64_columns": binary,
        }
    else:
        body = {
            "type": "ndarray",
            "data": [_json_value(v) for v in example.tolist()]
            if example.ndim == 1
            else _nested(example.tolist()),
            "dtype": example.dtype.str,
            "shape": list(example.shape),
        }
    try:
        text = json.dumps(body, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"the input example cannot be stored as JSON: {exc}") from exc
    (directory / EXAMPLE_FILE).write_text(text, encoding="utf-8")
    return EXAMPLE_FILE


def _nested(value: Any) -> Any:
    if isinstance(value, list):
        return [_nested(v) for v in value]
    return _json_value(value)


def _is_binary(series: pd.Series) -> bool:
    return series.dtype == object and any(isinstance(v, bytes | bytearray) for v in series)


def read_example(file: Path) -> Any:
    """The example stored in ``file`` (ours or MLflow's) as a DataFrame or ndarray."""
    try:
        body = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataCorrupted(f"cannot read input example {file.name}: {exc}") from exc
    if isinstance(body, dict) and "columns" in body and "data" in body:
        frame = pd.DataFrame(body["data"], columns=body["columns"])
        for col in body.get("base64_columns", []):
            frame[col] = [None if v is None else base64.b64decode(v) for v in frame[col]]
        for col, dtype in (body.get("dtypes") or {}).items():
            frame[col] = _restore(frame[col], dtype)
        return frame
    if isinstance(body, dict) and body.get("type") == "ndarray":
        return np.asarray(body["data"], dtype=np.dtype(body["dtype"])).reshape(body["shape"])
    if isinstance(body, dict) and "inputs" in body:  # MLflow's tf-serving layout
        return np.asarray(body["inputs"])
    if isinstance(body, list):  # MLflow 3 writes an ndarray example as a nested list
        return np.asarray(body)
    raise DataCorrupted(f"input example {file.name} has an unknown layout")


def _restore(values: pd.Series, dtype: str) -> pd.Series:
    if dtype.startswith("datetime64"):
        values = pd.Series(
            pd.to_datetime(values, format="ISO8601"), index=values.index, name=values.name
        )
    target: Any = object if dtype == "object" else dtype
    restored: pd.Series = values.astype(target)
    return restored
