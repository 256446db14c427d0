"""Column types of pandas/numpy data, in MLflow's ``DataType`` vocabulary.

Shared by signature inference (what type is this column?) and enforcement (is this
column compatible with the declared type?).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["column_type", "is_int", "is_nan", "to_frame", "type_of_dtype", "type_of_values"]


def type_of_dtype(dtype: Any) -> str | None:
    """The column type of a pandas/numpy dtype, None for object (decided by the values)."""
    if isinstance(dtype, pd.StringDtype):
        return "string"
    if isinstance(dtype, pd.CategoricalDtype):
        return type_of_dtype(dtype.categories.dtype)
    if isinstance(dtype, pd.BooleanDtype):
        return "boolean"
    if hasattr(dtype, "numpy_dtype"):  # pandas nullable Int64/Float64: judge the numpy dtype
        dtype = dtype.numpy_dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        return "datetime"
    try:
        np_dtype = np.dtype(dtype)
    except TypeError:  # an extension dtype (period, interval, ...) with no column type
        return None
    kind, size = np_dtype.kind, np_dtype.itemsize
    if kind == "b":
        return "boolean"
    if kind == "i":
        return "integer" if size <= 4 else "long"
    if kind == "u":
        return "integer" if size <= 2 else "long" if size <= 4 else "double"
    if kind == "f":
        return "float" if size <= 4 else "double"
    if kind == "M":
        return "datetime"
    if kind in "US":
        return "string" if kind == "U" else "binary"
    return None


def type_of_values(values: pd.Series) -> str | None:
    """The column type of an object column from its non-null values (None when mixed)."""
    present = [v for v in values.tolist() if v is not None and not is_nan(v)]
    if not present:
        return None
    if all(isinstance(v, str) for v in present):
        return "string"
    if all(isinstance(v, bytes | bytearray) for v in present):
        return "binary"
    if all(isinstance(v, bool | np.bool_) for v in present):
        return "boolean"
    if all(is_int(v) for v in present):
        return "long"
    if all(is_int(v) or isinstance(v, float | np.floating) for v in present):
        return "double"
    if all(isinstance(v, pd.Timestamp | np.datetime64) for v in present):
        return "datetime"
    return None


def is_nan(value: Any) -> bool:
    """Whether ``value`` is a float NaN."""
    return isinstance(value, float | np.floating) and bool(np.isnan(value))


def is_int(value: Any) -> bool:
    """Whether ``value`` is an integer (a bool is not)."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def column_type(series: pd.Series) -> str | None:
    """The column type of ``series`` (None when its values mix types)."""
    found = type_of_dtype(series.dtype)
    return found if found is not None else type_of_values(series)


def to_frame(data: Any) -> Any:
    """A dict of column -> values or a list of record dicts as a DataFrame; others unchanged."""
    if isinstance(data, Mapping):
        return pd.DataFrame({str(k): list(np.atleast_1d(v)) for k, v in data.items()})
    if isinstance(data, list) and data and all(isinstance(r, Mapping) for r in data):
        return pd.DataFrame.from_records(data)
    return data
