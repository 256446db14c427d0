"""Column type inference for drift statistics.

Each column is one of ``numeric``, ``categorical``, ``boolean`` or ``datetime``. The
type decides which statistical test applies by default (see
:func:`modelloop.monitoring.stattests.default_test`) and how values are prepared.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, get_args

import numpy as np
import pandas as pd

from modelloop.errors import InvalidArgument

__all__ = [
    "COLUMN_TYPES",
    "ColumnType",
    "combined_n_unique",
    "infer_column_type",
    "infer_column_types",
    "to_numeric_values",
    "validate_column_type",
]

ColumnType = Literal["numeric", "categorical", "boolean", "datetime"]
COLUMN_TYPES: tuple[ColumnType, ...] = get_args(ColumnType)

# pandas.api.types.infer_dtype labels for object columns that hold Python objects.
_NUMERIC_INFERRED = {"integer", "floating", "mixed-integer-float", "decimal"}
_DATETIME_INFERRED = {"datetime64", "datetime", "date"}


def validate_column_type(value: object, column: str | None = None) -> ColumnType:
    """Return ``value`` as a :data:`ColumnType`, or raise ``InvalidArgument``."""
    if isinstance(value, str) and value in COLUMN_TYPES:
        return value
    where = f" for column {column!r}" if column is not None else ""
    raise InvalidArgument(
        f"unknown column type {value!r}{where}; expected one of {', '.join(COLUMN_TYPES)}",
        column=column,
    )


def infer_column_type(series: pd.Series) -> ColumnType:
    """Infer the drift column type of one series from its pandas dtype.

    bool (and nullable boolean) is ``boolean``; datetimes are ``datetime``; numbers are
    ``numeric``; strings, pandas categoricals and anything else are ``categorical``.
    Object columns are inspected with ``pandas.api.types.infer_dtype`` so that an object
    column of Python floats stays numeric.
    """
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if isinstance(dtype, pd.CategoricalDtype):
        return "categorical"
    if pd.api.types.is_numeric_dtype(dtype):
        return "numeric"
    if pd.api.types.is_object_dtype(dtype):
        inferred = pd.api.types.infer_dtype(series, skipna=True)
        if inferred == "boolean":
            return "boolean"
        if inferred in _NUMERIC_INFERRED:
            return "numeric"
        if inferred in _DATETIME_INFERRED:
            return "datetime"
    return "categorical"


def infer_column_types(
    reference: pd.DataFrame,
    columns: list[str],
    overrides: Mapping[str, str] | None = None,
) -> dict[str, ColumnType]:
    """Infer the type of each of ``columns`` from ``reference``; ``overrides`` wins.

    An override naming a column outside ``columns`` is an error, so a typo cannot be
    silently ignored.
    """
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(columns))
    if unknown:
        raise InvalidArgument(
            f"column_types names columns that are not compared: {', '.join(map(str, unknown))}",
            columns=unknown,
        )
    result: dict[str, ColumnType] = {}
    for column in columns:
        if column in overrides:
            result[column] = validate_column_type(overrides[column], column)
        else:
            result[column] = infer_column_type(reference[column])
    return result


def combined_n_unique(reference: pd.Series, current: pd.Series) -> int:
    """Distinct non-missing values over reference and current together (Evidently's rule)."""
    return int(pd.concat([reference, current], ignore_index=True).nunique(dropna=True))


def to_numeric_values(series: pd.Series, column_type: ColumnType, column: str = "") -> pd.Series:
    """Values as float64 for the numeric tests; missing values become NaN.

    Datetimes become int64 nanoseconds since the epoch (then float64), so a datetime
    column is tested as a numeric one. Booleans become 0/1.
    """
    if column_type == "datetime":
        stamps = pd.to_datetime(series, errors="coerce")
        if isinstance(stamps.dtype, pd.DatetimeTZDtype):
            stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
        mask = stamps.isna().to_numpy()
        ns = stamps.to_numpy(dtype="datetime64[ns]").astype(np.int64).astype(np.float64)
        ns[mask] = np.nan
        return pd.Series(ns, index=series.index)
    try:
        values = pd.to_numeric(series, errors="raise")
    except (ValueError, TypeError) as exc:
        raise InvalidArgument(
            f"column {column!r} is typed {column_type!r} but holds non-numeric values",
            column=column,
        ) from exc
    # to_numpy with na_value handles nullable dtypes (Int64, boolean) whose pd.NA
    # cannot be cast by astype.
    return pd.Series(values.to_numpy(dtype=np.float64, na_value=np.nan), index=series.index)
