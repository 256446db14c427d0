"""Data quality of a current window against a reference: missing values, categories
never seen in the reference, numbers outside the reference range, constant columns,
and violations of the model's signature. Each is a number per column (a share of
rows), so a monitor can store it per window and alert on it."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from modelloop.errors import InvalidArgument, SignatureMismatch
from modelloop.monitoring.column_types import ColumnType, infer_column_types

__all__ = ["ColumnQuality", "DataQuality", "data_quality"]


@dataclasses.dataclass(frozen=True)
class ColumnQuality:
    """One column's quality figures in the current window (shares are in [0, 1];
    ``None`` where a figure does not apply to the column's type)."""

    column: str
    column_type: ColumnType
    rows: int
    missing_share: float
    reference_missing_share: float
    new_category_share: float | None
    new_categories: tuple[str, ...]
    out_of_range_share: float | None
    constant: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        out = dataclasses.asdict(self)
        out["new_categories"] = list(self.new_categories)
        return out


@dataclasses.dataclass(frozen=True)
class DataQuality:
    """Every column's figures, the columns the current window lacks or adds, and the
    share of rows that fail the model's signature (when one was given)."""

    columns: dict[str, ColumnQuality]
    missing_columns: tuple[str, ...]
    extra_columns: tuple[str, ...]
    signature_violation_share: float | None
    signature_error: str | None

    def metrics(self) -> dict[str, float]:
        """Flat metric names (``missing_share[age]``, ...) for storage and alert rules."""
        out: dict[str, float] = {}
        for name, q in self.columns.items():
            out[f"missing_share[{name}]"] = q.missing_share
            if q.new_category_share is not None:
                out[f"new_category_share[{name}]"] = q.new_category_share
            if q.out_of_range_share is not None:
                out[f"out_of_range_share[{name}]"] = q.out_of_range_share
            out[f"constant[{name}]"] = float(q.constant)
        out["missing_columns"] = float(len(self.missing_columns))
        if self.signature_violation_share is not None:
            out["signature_violation_share"] = self.signature_violation_share
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "columns": {k: v.to_dict() for k, v in self.columns.items()},
            "missing_columns": list(self.missing_columns),
            "extra_columns": list(self.extra_columns),
            "signature_violation_share": self.signature_violation_share,
            "signature_error": self.signature_error,
        }


def _missing(series: pd.Series) -> pd.Series:
    mask = series.isna()
    if pd.api.types.is_float_dtype(series.dtype):
        mask |= np.isinf(series.to_numpy(dtype=float, na_value=np.nan))
    return mask


def _share(count: int, total: int) -> float:
    return count / total if total else 0.0


def _numbers(values: pd.Series, column_type: ColumnType) -> pd.Series:
    if column_type == "datetime":
        return pd.to_datetime(values).astype("int64")
    return pd.to_numeric(values, errors="coerce")


def _column(
    name: str, column_type: ColumnType, reference: pd.Series, current: pd.Series
) -> ColumnQuality:
    ref_missing = _missing(reference)
    cur_missing = _missing(current)
    ref_values = reference[~ref_missing]
    cur_values = current[~cur_missing]
    rows = len(current)
    new_share: float | None = None
    new_categories: tuple[str, ...] = ()
    out_of_range: float | None = None
    if column_type in ("categorical", "boolean"):
        known = set(ref_values.astype(str).unique())
        as_text = cur_values.astype(str)
        unseen = ~as_text.isin(known)
        new_share = _share(int(unseen.sum()), rows)
        new_categories = tuple(sorted(as_text[unseen].unique())[:20])
    elif column_type in ("numeric", "datetime") and len(ref_values):
        ref_num = _numbers(ref_values, column_type)
        cur_num = _numbers(cur_values, column_type)
        low, high = ref_num.min(), ref_num.max()
        outside = (cur_num < low) | (cur_num > high)
        out_of_range = _share(int(outside.sum()), rows)
    constant = len(cur_values) > 0 and cur_values.nunique(dropna=True) <= 1
    return ColumnQuality(
        column=name,
        column_type=column_type,
        rows=rows,
        missing_share=_share(int(cur_missing.sum()), rows),
        reference_missing_share=_share(int(ref_missing.sum()), len(reference)),
        new_category_share=new_share,
        new_categories=new_categories,
        out_of_range_share=out_of_range,
        constant=bool(constant),
    )


def data_quality(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    column_types: Mapping[str, str] | None = None,
    signature: Any = None,
    signature_frame: pd.DataFrame | None = None,
) -> DataQuality:
    """Quality figures of ``current`` against ``reference``, column by column.

    ``signature`` (a :class:`~modelloop.models.Signature`) adds the share of rows
    that the model would refuse (checked row by row only when the whole window
    fails, so a clean window costs one check), in ``signature_frame`` when given
    (the raw rows, when ``current`` was cleaned), else in ``current``."""
    if not isinstance(reference, pd.DataFrame) or not isinstance(current, pd.DataFrame):
        raise InvalidArgument("data quality needs two pandas DataFrames")
    chosen = list(columns) if columns is not None else [str(c) for c in reference.columns]
    unknown = [c for c in chosen if c not in reference.columns]
    if unknown:
        raise InvalidArgument(f"column(s) not in the reference: {', '.join(unknown)}")
    missing_columns = tuple(c for c in chosen if c not in current.columns)
    extra_columns = tuple(str(c) for c in current.columns if c not in reference.columns)
    present = [c for c in chosen if c in current.columns]
    types = infer_column_types(reference, present, column_types)
    result = {c: _column(c, types[c], reference[c], current[c]) for c in present}
    checked = current if signature_frame is None else signature_frame
    share, error = _signature_violations(signature, checked)
    return DataQuality(result, missing_columns, extra_columns, share, error)


def _signature_violations(signature: Any, current: pd.DataFrame) -> tuple[float | None, str | None]:
    if signature is None or len(current) == 0:
        return None, None
    from modelloop.models.signature import enforce_signature

    try:
        enforce_signature(signature, current)
        return 0.0, None
    except SignatureMismatch as exc:
        first_error = exc.message
    bad = 0
    for i in range(len(current)):
        try:
            enforce_signature(signature, current.iloc[i : i + 1])
        except SignatureMismatch:
            bad += 1
    return bad / len(current), first_error
