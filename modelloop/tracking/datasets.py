"""Dataset fingerprints for ``log_input``: a content digest, a schema and a column profile."""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from modelloop.entities.dataset import Dataset
from modelloop.errors import InvalidArgument

__all__ = ["PROFILE_ROW_LIMIT", "SUPPORTED_EXTENSIONS", "fingerprint"]

SUPPORTED_EXTENSIONS = (".csv", ".json", ".jsonl", ".parquet", ".pq")

# A file with more rows than this is profiled on its first rows only; the profile then
# carries a "profile_rows" entry saying how many rows it describes.
PROFILE_ROW_LIMIT = 100_000

_CHUNK_BYTES = 1024 * 1024
_TOP_VALUES = 10
_COUNT_CHUNK_ROWS = 1_000_000


def fingerprint(
    data: pd.DataFrame | npt.NDArray[Any] | str | os.PathLike[str],
    name: str | None = None,
) -> Dataset:
    """Fingerprint a DataFrame, a 1-D or 2-D NumPy array, or a data file.

    The digest is a sha256 of the content: for in-memory data, of the column names,
    the dtypes and pandas' row hashes (so equal data gives equal digests and row
    order matters; the index is ignored); for a file (.csv, .json, .jsonl, .parquet,
    .pq), of its bytes. ``name`` defaults to the file's stem or ``"dataframe"``.
    """
    if name is not None and (not isinstance(name, str) or not name):
        raise InvalidArgument(f"dataset name must be a non-empty string, got {name!r}")
    if isinstance(data, pd.DataFrame):
        return _from_frame(data, name or "dataframe", "pandas", "dataframe")
    if isinstance(data, np.ndarray):
        return _from_frame(_array_frame(data), name or "dataframe", "numpy", "ndarray")
    if isinstance(data, str | os.PathLike):
        return _from_file(Path(os.fspath(data)), name)
    raise InvalidArgument(
        "a dataset must be a pandas DataFrame, a numpy array or a path to a "
        f"{', '.join(SUPPORTED_EXTENSIONS)} file, got {type(data).__name__}"
    )


# in-memory data ----------------------------------------------------------------


def _array_frame(array: npt.NDArray[Any]) -> pd.DataFrame:
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2:
        raise InvalidArgument(
            f"a numpy dataset must be 1-D or 2-D, got an array of shape {array.shape}"
        )
    return pd.DataFrame(array, columns=[str(i) for i in range(array.shape[1])])


def _from_frame(frame: pd.DataFrame, name: str, source: str, source_type: str) -> Dataset:
    frame = _string_columns(frame)
    return Dataset(
        digest=_frame_digest(frame),
        name=name,
        source=source,
        source_type=source_type,
        num_rows=len(frame),
        schema=_schema(frame),
        profile=_profile(frame),
    )


def _string_columns(frame: pd.DataFrame) -> pd.DataFrame:
    names = [str(c) for c in frame.columns]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise InvalidArgument(f"dataset column names must be unique, repeated: {dupes}")
    return frame.set_axis(names, axis=1)


def _frame_digest(frame: pd.DataFrame) -> str:
    # Names and dtypes go in explicitly: pandas' row hashes cover the values only, so
    # a renamed column or an int column turned float would otherwise hash the same.
    header = json.dumps([[column, str(dtype)] for column, dtype in frame.dtypes.items()])
    digest = hashlib.sha256(header.encode())
    digest.update(b"\0")
    digest.update(_row_hashes(frame).astype("<u8", copy=False).tobytes())
    return digest.hexdigest()


def _row_hashes(frame: pd.DataFrame) -> npt.NDArray[np.integer[Any]]:
    try:
        hashes = pd.util.hash_pandas_object(frame, index=False)
    except (TypeError, ValueError):
        # Unhashable cells (lists, dicts): hash every object column by its cells'
        # repr instead. The same data always takes this same path, so digests of
        # equal data still agree.
        objects = {str(c): frame[c].map(repr) for c in frame.columns if frame[c].dtype == object}
        hashes = pd.util.hash_pandas_object(frame.assign(**objects), index=False)
    return hashes.to_numpy(dtype=np.uint64)


# files -------------------------------------------------------------------------


def _from_file(path: Path, name: str | None) -> Dataset:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS:
        raise InvalidArgument(
            f"cannot fingerprint {str(path)!r}: unsupported file type {suffix or '(none)'!r}; "
            f"supported: {', '.join(SUPPORTED_EXTENSIONS)}"
        )
    path = path.resolve()
    if not path.is_file():
        what = "is not a file" if path.exists() else "does not exist"
        raise InvalidArgument(f"dataset file {str(path)!r} {what}", path=str(path))
    digest = _file_digest(path)
    try:
        if suffix in (".parquet", ".pq"):
            head, schema, num_rows = _read_parquet(path)
        else:
            head, num_rows = _read_text(path, suffix)
            schema = _schema(head)
    except (ValueError, pa.ArrowException) as exc:
        # pandas' parser and empty-data errors, JSON decode and Arrow errors are all
        # ValueErrors: the file's content is not what its extension promises.
        raise InvalidArgument(
            f"cannot read dataset file {str(path)!r} as {suffix[1:]}: {exc}", path=str(path)
        ) from exc
    profile = _profile(head)
    if len(head) < num_rows:
        profile["profile_rows"] = {"rows": len(head), "total_rows": num_rows}
    return Dataset(
        digest=digest,
        name=name or path.stem,
        source=str(path),
        source_type="file",
        num_rows=num_rows,
        schema=schema,
        profile=profile,
    )


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    buffer = bytearray(_CHUNK_BYTES)
    view = memoryview(buffer)
    with path.open("rb") as f:
        while n := f.readinto(buffer):
            digest.update(view[:n])
    return digest.hexdigest()


def _read_parquet(path: Path) -> tuple[pd.DataFrame, dict[str, str], int]:
    """The first PROFILE_ROW_LIMIT rows, the schema and the row count from the footer."""
    with pq.ParquetFile(path) as parquet:
        num_rows = int(parquet.metadata.num_rows)
        arrow_schema = parquet.schema_arrow
        schema = _schema(_string_columns(arrow_schema.empty_table().to_pandas()))
        batches = []
        read = 0
        for batch in parquet.iter_batches(batch_size=min(PROFILE_ROW_LIMIT, 65_536)):
            batches.append(batch)
            read += batch.num_rows
            if read >= PROFILE_ROW_LIMIT:
                break
    table = pa.Table.from_batches(batches, schema=arrow_schema).slice(0, PROFILE_ROW_LIMIT)
    return _string_columns(table.to_pandas()), schema, num_rows


def _read_text(path: Path, suffix: str) -> tuple[pd.DataFrame, int]:
    """The first PROFILE_ROW_LIMIT rows of a CSV, JSON or JSON-lines file, and its row count."""
    limit = PROFILE_ROW_LIMIT
    if suffix == ".csv":
        # low_memory=False: one dtype per column over all rows read, and no DtypeWarning.
        frame = pd.read_csv(path, nrows=limit + 1, low_memory=False)
        if len(frame) > limit:
            # Only the parser knows where rows end (quoted fields may hold newlines).
            with pd.read_csv(path, usecols=[0], dtype=str, chunksize=_COUNT_CHUNK_ROWS) as chunks:
                total = sum(len(chunk) for chunk in chunks)
        else:
            total = len(frame)
    elif suffix == ".jsonl":
        frame = pd.read_json(path, lines=True, nrows=limit + 1)
        # One record per non-blank line, by definition of the format.
        total = _count_nonblank_lines(path) if len(frame) > limit else len(frame)
    else:  # a JSON document has to be parsed whole
        frame = pd.read_json(path)
        total = len(frame)
    return _string_columns(frame.iloc[:limit]), total


def _count_nonblank_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for line in f if line.strip())


# schema and profile -------------------------------------------------------------


def _schema(frame: pd.DataFrame) -> dict[str, str]:
    return {str(column): str(dtype) for column, dtype in frame.dtypes.items()}


def _profile(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    return {str(column): _column_profile(frame[column]) for column in frame.columns}


def _column_profile(column: pd.Series[Any]) -> dict[str, Any]:
    rows = len(column)
    count = int(column.count())
    stats: dict[str, Any] = {
        "count": count,
        "missing": rows - count,
        "missing_share": (rows - count) / rows if rows else None,
    }
    dtype = column.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype):
        present = column.dropna()
        stats["distinct"] = int(present.nunique())
        stats["min"] = present.min().isoformat() if len(present) else None
        stats["max"] = present.max().isoformat() if len(present) else None
    elif pd.api.types.is_numeric_dtype(dtype) and not (
        pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_complex_dtype(dtype)
    ):
        stats.update(_numeric_stats(column))
    else:  # bool, categorical, strings, objects, timedeltas, ...
        stats.update(_top_values(column))
    return stats


def _numeric_stats(column: pd.Series[Any]) -> dict[str, Any]:
    values = np.asarray(column.dropna().to_numpy() if column.hasnans else column.to_numpy())
    if values.dtype == object:  # e.g. a nullable integer column that still held NA
        values = values.astype(np.float64)
    if values.dtype.kind == "f":
        values = values[~np.isnan(values)]
    n = len(values)
    if n == 0:
        return {"distinct": 0, "min": None, "max": None, "mean": None, "std": None, "p50": None}
    # One sort answers min, max, median and the distinct count; it is several times
    # faster than pandas' hash-table nunique on a column of distinct floats.
    ordered = np.sort(values)
    half = n // 2
    p50 = float(ordered[half]) if n % 2 else (float(ordered[half - 1]) + float(ordered[half])) / 2
    with np.errstate(all="ignore"):  # inf values give nan/inf, reported as None below
        mean = float(np.mean(values, dtype=np.float64))
        std = float(np.std(values, ddof=1, dtype=np.float64)) if n > 1 else None
    return {
        "distinct": int(np.count_nonzero(ordered[1:] != ordered[:-1])) + 1,
        "min": _finite(float(ordered[0])),
        "max": _finite(float(ordered[-1])),
        "mean": _finite(mean),
        "std": _finite(std),
        "p50": _finite(p50),
    }


def _top_values(column: pd.Series[Any]) -> dict[str, Any]:
    try:
        counts = column.value_counts(dropna=True)
    except TypeError:  # unhashable cells such as lists
        counts = column.dropna().map(str).value_counts()
    counts = counts[counts > 0]  # a categorical lists its unused categories too
    return {
        "distinct": len(counts),
        "top": [[str(value), int(n)] for value, n in counts.head(_TOP_VALUES).items()],
    }


def _finite(value: float | None) -> float | None:
    """JSON has no NaN or infinity: an undefined statistic is None."""
    return value if value is not None and math.isfinite(value) else None
