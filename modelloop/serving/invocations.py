"""MLflow's scoring protocol (``POST /invocations``), as MLflow 3.17's scoring server speaks it.

Request bodies: JSON with exactly one of ``dataframe_split``, ``dataframe_records``,
``instances`` or ``inputs`` (other keys such as ``params`` are ignored, as MLflow
does), CSV (``text/csv``) or Parquet. The answer is ``{"predictions": [...]}``;
errors are MLflow's ``{"error_code": ..., "message": ...}`` with the same codes
and statuses (400 ``BAD_REQUEST`` for a malformed body, 415 for an unsupported
content type). Unlike MLflow, a request without a Content-Type is read as JSON.
"""

from __future__ import annotations

import functools
import io
from typing import Any

import numpy as np
import orjson
import pandas as pd

from modelloop.serving.errors import ServingError

__all__ = [
    "InvocationError",
    "SUPPORTED_FORMATS",
    "column_index",
    "parse_invocation",
    "predictions_body",
]

DF_SPLIT = "dataframe_split"
DF_RECORDS = "dataframe_records"
INSTANCES = "instances"
INPUTS = "inputs"
SUPPORTED_FORMATS = (DF_SPLIT, DF_RECORDS, INSTANCES, INPUTS)
CONTENT_TYPE_JSON = "application/json"
CONTENT_TYPE_CSV = "text/csv"
CONTENT_TYPE_PARQUET = "application/vnd.apache.parquet"
_REQUIRED = (
    "The input must be a JSON dictionary with exactly one of the input fields "
    f"{{{', '.join(repr(f) for f in SUPPORTED_FORMATS)}}}"
)


class InvocationError(ServingError):
    """An error answered in MLflow's format, with MLflow's error code."""

    def __init__(self, message: str, *, status: int = 400, error_code: str = "BAD_REQUEST") -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code


def _invalid(message: str) -> InvocationError:
    # MLflow's MlflowInvalidInputException: "Invalid input. ..." with BAD_REQUEST.
    return InvocationError(f"Invalid input. {message}")


def parse_invocation(body: bytes, content_type: str | None) -> Any:
    """The model input a request body holds: a DataFrame, an ndarray or a column dict."""
    mime, params = _content_type(content_type)
    charset = params.get("charset", "utf-8").lower()
    if charset != "utf-8":
        raise InvocationError("The scoring server only supports UTF-8", status=415)
    unexpected = set(params) - {"charset"}
    if unexpected:
        raise InvocationError(
            f"Unrecognized content type parameters: {', '.join(sorted(unexpected))}.", status=415
        )
    if mime == CONTENT_TYPE_CSV:
        try:
            return pd.read_csv(io.BytesIO(body))
        except Exception as exc:  # pandas raises many kinds on bad CSV
            raise InvocationError(
                "Failed to parse input as a Pandas DataFrame. Ensure that the input is a valid "
                "CSV-formatted Pandas DataFrame produced using the `pandas.DataFrame.to_csv()` "
                f"method. Error: '{exc}'"
            ) from None
    if mime == CONTENT_TYPE_PARQUET:
        try:
            return pd.read_parquet(io.BytesIO(body))
        except Exception as exc:
            raise InvocationError(
                "Failed to parse input as a Pandas DataFrame. Ensure that the input is a valid "
                f"Parquet Pandas DataFrame. Error: '{exc}'"
            ) from None
    if mime in ("", CONTENT_TYPE_JSON):
        return _parse_json(body)
    raise InvocationError(
        "This predictor only supports the following content types: Types: "
        f"{[CONTENT_TYPE_CSV, CONTENT_TYPE_JSON, CONTENT_TYPE_PARQUET]}. Got '{content_type}'.",
        status=415,
    )


def _content_type(header: str | None) -> tuple[str, dict[str, str]]:
    if not header:
        return "", {}
    parts = [p.strip() for p in header.split(";")]
    params = {}
    for pair in parts[1:]:
        if pair:
            key, _, value = pair.partition("=")
            params[key.strip().lower()] = value.strip().strip('"')
    return parts[0].lower(), params


def _parse_json(body: bytes) -> Any:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _invalid(
            f"Ensure that input is a valid JSON formatted string. Error: '{exc}'"
        ) from None
    if isinstance(payload, list):
        raise _invalid(f"{_REQUIRED}. Received a list.")
    if not isinstance(payload, dict):
        raise _invalid(f"{_REQUIRED}. Received unexpected input type '{type(payload).__name__}'.")
    keys = [k for k in SUPPORTED_FORMATS if k in payload]
    if len(keys) != 1:
        raise InvocationError(
            f"{_REQUIRED}. Received dictionary with input fields: {list(payload)}."
        )
    key = keys[0]
    value = payload[key]
    try:
        if key == DF_SPLIT:
            return _split_frame(value)
        if key == DF_RECORDS:
            if not isinstance(value, list):
                kind = "dictionary" if isinstance(value, dict) else f"type {type(value).__name__}"
                raise _invalid(f"Dataframe records format must be a list of records. Got {kind}.")
            return pd.DataFrame(data=value)
        return _tensor_input(key, value)
    except InvocationError:
        raise
    except Exception as exc:  # pandas/numpy constructors reject malformed shapes
        raise _invalid(
            f"Provided {key} field is not a valid representation. Error: '{exc}'"
        ) from None


def _split_frame(value: Any) -> pd.DataFrame:
    if not isinstance(value, dict):
        kind = "list" if isinstance(value, list) else f"type {type(value).__name__}"
        raise _invalid(f"Dataframe split format must be a dictionary. Got {kind}.")
    keys = set(value)
    if "data" not in keys or keys - {"columns", "data", "index"}:
        raise _invalid(
            "Dataframe split format must have 'data' field and optionally 'columns' "
            f"and 'index' fields. Got {sorted(keys)}."
        )
    data, columns, index = value["data"], value.get("columns"), value.get("index")
    matrix = _uniform_matrix(data, columns)
    if matrix is not None:
        names = columns if columns is None else column_index(tuple(columns))
        return pd.DataFrame(matrix, columns=names, index=index)
    return pd.DataFrame(data=data, columns=columns, index=index)


@functools.lru_cache(maxsize=256)
def column_index(names: tuple[Any, ...]) -> pd.Index:
    """One shared ``Index`` per distinct column list: a client sends the same columns
    every time, and building the frame on a ready Index is ~4x cheaper than on a list
    (Index objects are immutable; the prediction logger also recognises a shared one
    at once)."""
    index: pd.Index = pd.Index(list(names))
    return index


def _uniform_matrix(data: Any, columns: Any) -> np.ndarray[Any, Any] | None:
    """``data`` as one float64 (or int64) matrix when every value is a JSON float (or
    every one an integer): then each column gets the dtype pandas would infer, and
    building the frame from a matrix is ~6x cheaper than from lists of rows (the bulk
    of a one-row request's parsing). None when the data is anything else."""
    if not isinstance(data, list) or not data or not isinstance(data[0], list):
        return None
    width = len(data[0])
    if width == 0:
        return None
    if columns is not None and (
        not isinstance(columns, list)
        or len(columns) != width
        # Nested names mean a MultiIndex to pandas: its own construction decides.
        or not all(isinstance(c, str | int | float) for c in columns)
    ):
        return None
    kinds = {type(x) for row in data if isinstance(row, list) and len(row) == width for x in row}
    if sum(len(row) for row in data if isinstance(row, list)) != width * len(data):
        return None  # ragged or not all rows: let pandas explain
    if kinds == {float}:
        return np.array(data, dtype=np.float64)
    if kinds == {int}:
        try:
            return np.array(data, dtype=np.int64)
        except OverflowError:
            return None
    return None


def _tensor_input(key: str, value: Any) -> Any:
    """``instances``/``inputs``: records, a column dict, or a (nested) list of values."""
    if isinstance(value, dict):
        if key == INSTANCES:
            raise _invalid("'instances' must be a list")
        return pd.DataFrame(
            {str(k): np.atleast_1d(np.asarray(v)).tolist() for k, v in value.items()}
        )
    if not isinstance(value, list):
        raise _invalid(f"'{key}' must be a list or a dictionary of columns")
    if value and all(isinstance(r, dict) for r in value):
        return pd.DataFrame.from_records(value)
    try:
        array = np.asarray(value)
    except ValueError:
        array = np.empty(0, dtype=object)
    if array.dtype == object:
        raise _invalid(f"'{key}' holds a ragged or mixed-type list")
    return array


def predictions_body(predictions: np.ndarray[Any, Any]) -> bytes:
    """``{"predictions": [...]}``, as MLflow writes an ndarray (nested lists)."""
    value: Any = predictions if predictions.dtype.kind in "biuf" else predictions.tolist()
    return orjson.dumps({"predictions": value}, option=orjson.OPT_SERIALIZE_NUMPY)
