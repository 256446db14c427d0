"""Buffered prediction-log requests to Arrow tables (the logger's background thread).

This runs in the server's process while the event loop answers requests, and it holds
the GIL for everything that is not a C call, so its cost per request comes straight
off serving throughput. For the benchmark's one-row, 30-column requests the flush
used to cost 13 us of CPU per request in isolation (~30 us inside a loaded server,
whose event loop spends ~650 us per request): mostly ``Index.tolist()`` on
Arrow-backed column names, per-request date formatting and pandas dtype lookups. Here
a request costs a few attribute reads and two C calls (6-7 us in isolation): column
names are compared as Arrow arrays against the previous request's, days come from
integer division, dtypes are inspected once per flush and column set, and a group of
same-shaped requests becomes one ``np.concatenate`` plus whole lists handed to Arrow.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from modelloop.errors import InvalidArgument

__all__ = [
    "concat_tables",
    "day_of",
    "feedback_table",
    "ordered",
    "requests_table",
    "split_by_day",
]

TIME_TYPE = pa.timestamp("ms", tz="UTC")
# The fixed leading columns of a prediction log, followed by input.* and output*.
_FIXED = "request_id row time deployment route model_name model_version latency_ms"
PREDICTION_COLUMNS = tuple(_FIXED.split())
FEEDBACK_COLUMNS = ("request_id", "row", "time", "ground_truth")
# (request_id, route, model_name, model_version, inputs, outputs, latency_ms, time_ms)
Request = tuple[str, str, str, str, Any, Any, float, int]
# (request_id, ground_truth, time_ms)
Feedback = tuple[str, Any, int]
_DAY_MS = 86_400_000
# A group's key: how its inputs are stored, their column names, dtype, output shape.
_Key = tuple[Any, ...]


def day_of(time_ms: float) -> str:
    """The UTC date (``YYYY-MM-DD``) of a time in milliseconds since the epoch."""
    return datetime.fromtimestamp(time_ms / 1000, tz=UTC).strftime("%Y-%m-%d")


def split_by_day(
    items: Sequence[Any], time_index: int, on_bad: Callable[[Any], None]
) -> dict[str, list[Any]]:
    """``items`` by the UTC day of their ``item[time_index]`` (milliseconds), in order;
    an item whose time is not a number goes to ``on_bad`` (from an except block)."""
    times = [item[time_index] for item in items]
    try:
        first, last = min(times) // _DAY_MS, max(times) // _DAY_MS
        if first == last:  # the usual flush: no per-item date formatting
            return {day_of(times[0]): list(items)}
    except Exception:  # noqa: S110 - sorted out item by item below
        pass
    days: dict[int, list[Any]] = defaultdict(list)
    for item, t in zip(items, times, strict=True):
        try:
            days[int(t // _DAY_MS)].append(item)
        except Exception:
            on_bad(item)
    by_day: dict[str, list[Any]] = {}
    for day, group in sorted(days.items()):
        try:
            by_day[day_of(day * _DAY_MS)] = group
        except Exception:  # out of datetime's range
            for item in group:
                on_bad(item)
    return by_day


class _ColumnTokens:
    """Small ints standing for the distinct column-name lists met in one flush.

    Every request's DataFrame has its own ``Index`` object, and turning an Arrow-backed
    one into Python strings costs ~8 us; comparing it as an Arrow array against the
    previous request's names costs ~1.5 us, and consecutive requests nearly always
    have the same columns. Only names that differ from the previous request's are
    listed and looked up."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[Any, ...], int] = {}
        self._last: pd.Index | None = None
        self._last_names: pa.Array | None = None
        self._last_token = -1
        self.names: list[list[Any]] = []  # by token

    def token(self, columns: pd.Index) -> int:
        if columns is self._last:
            return self._last_token
        names: pa.Array | None
        try:
            names = pa.array(columns.array)  # .array: skips the Index wrapper, ~2x faster
        except (pa.ArrowException, TypeError, ValueError):  # mixed-type or nested names
            names = None
        last = self._last_names
        if names is None or last is None or not names.equals(last):
            listed = columns.tolist()
            key = tuple(listed)
            if key not in self._tokens:
                self._tokens[key] = len(self.names)
                self.names.append(listed)
            self._last_token = self._tokens[key]
        self._last, self._last_names = columns, names
        return self._last_token


def _numeric(dtype: np.dtype[Any]) -> bool:
    return dtype.kind in "biuf"


class _Grouper:
    """Sorts the requests of one day into groups that convert together."""

    def __init__(self) -> None:
        self.columns = _ColumnTokens()
        self.groups: dict[_Key, list[tuple[Request, Any, np.ndarray[Any, Any]]]] = {}
        self._numeric_names: dict[int, bool] = {}  # by column token

    def add(self, req: Request) -> None:
        """Files ``req`` under its group; raises (for this request only) if it is bad."""
        inputs, out = req[4], np.asarray(req[5])
        if isinstance(inputs, pd.DataFrame):
            token = self.columns.token(inputs.columns)
            fast = self._numeric_names.get(token)
            if fast is None:
                # The first frame with these names decides whether they take the numeric
                # fast path (dtypes is slow: once per flush and names, not per request).
                dtypes = set(inputs.dtypes)
                first = dtypes.pop() if len(dtypes) == 1 else None
                # Extension dtypes (nullable Int64, categories, text) go through pandas.
                fast = isinstance(first, np.dtype) and _numeric(first)
                self._numeric_names[token] = fast
            values: Any = inputs.to_numpy() if fast else inputs
            if fast and _numeric(values.dtype):
                key: _Key = ("frame", token, values.dtype.str)
            else:  # mixed dtypes, or text in a frame whose first one was numeric
                values = inputs
                key = ("pandas", token, None)
        elif isinstance(inputs, np.ndarray) and _numeric(inputs.dtype) and inputs.ndim >= 1:
            values = inputs.reshape(len(inputs), -1) if inputs.ndim != 2 else inputs
            key = ("array", values.shape[1], values.dtype.str)
        else:
            values = _input_frame(inputs)
            key = ("pandas", tuple(values.columns.tolist()), None)
        rows = len(values)
        if out.ndim == 0 or out.shape[0] != rows:
            raise InvalidArgument(
                f"request {req[0]!r}: {rows} input rows but outputs of shape {out.shape}"
            )
        self.groups.setdefault((*key, out.ndim, out.shape[1:]), []).append((req, values, out))


def requests_table(
    reqs: Sequence[Request], deployment: str, on_bad: Callable[[Request], None]
) -> tuple[pa.Table | None, int]:
    """One table for requests of one day and the number of requests in it; a request
    that cannot be converted is left out and passed to ``on_bad`` (in an except
    block, so it can log the exception)."""
    grouper = _Grouper()
    for req in reqs:
        try:
            grouper.add(req)
        except Exception:
            on_bad(req)
    tables: list[pa.Table] = []
    good = 0
    for key, group in grouper.groups.items():
        try:
            tables.append(_group_table(key, group, grouper.columns, deployment))
            good += len(group)
        except Exception:
            # Isolate the request(s) that do not convert; keep the rest.
            for member in group:
                try:
                    tables.append(_group_table(key, [member], grouper.columns, deployment))
                    good += 1
                except Exception:
                    on_bad(member[0])
    if not tables:
        return None, 0
    return ordered(concat_tables(tables)), good


def ordered(table: pa.Table) -> pa.Table:
    """``table`` with the fixed columns first, then inputs, then outputs (whatever order
    its parts came in)."""
    rest = sorted(table.column_names[len(PREDICTION_COLUMNS) :], key=lambda c: c[0] != "i")
    return table.select([*PREDICTION_COLUMNS, *rest])


def _strings(values: Sequence[Any]) -> pa.Array:
    try:
        return pa.array(values, pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # e.g. a version given as an int
        return pa.array([str(v) for v in values], pa.string())


def _group_table(
    key: _Key,
    group: list[tuple[Request, Any, np.ndarray[Any, Any]]],
    columns: _ColumnTokens,
    deployment: str,
) -> pa.Table:
    reqs, inputs, outputs = zip(*group, strict=True)
    ids, routes, names, versions, _, _, latencies, times = zip(*reqs, strict=True)
    counts = np.fromiter((len(v) for v in inputs), dtype=np.int64, count=len(inputs))
    n = int(counts.sum())
    one_row_each = n == len(group)

    def spread(values: Sequence[Any], dtype: Any = object) -> Any:
        # One row per request (the common case): no repeat needed.
        return values if one_row_each else np.repeat(np.asarray(values, dtype=dtype), counts)

    if one_row_each:
        row = np.zeros(n, dtype=np.int32)
    else:
        starts = np.repeat(np.cumsum(counts) - counts, counts)
        row = (np.arange(n, dtype=np.int64) - starts).astype(np.int32)
    millis = np.repeat(np.asarray(times).astype(np.int64), counts)
    table: dict[str, pa.Array | pa.ChunkedArray] = {
        "request_id": _strings(spread(ids)),
        "row": pa.array(row, pa.int32()),
        "time": pa.array(millis, TIME_TYPE),
        "deployment": pa.repeat(pa.scalar(deployment, pa.string()), n),
        "route": _strings(spread(routes)),
        "model_name": _strings(spread(names)),
        "model_version": _strings(spread(versions)),
        "latency_ms": pa.array(np.repeat(np.asarray(latencies, np.float64), counts)),
    }
    kind = key[0]
    if kind in ("frame", "array"):
        matrix = np.concatenate(inputs) if len(inputs) > 1 else inputs[0]
        labels = columns.names[key[1]] if kind == "frame" else range(matrix.shape[1])
        # Rows of the transpose are contiguous: Arrow takes them without a strided copy.
        by_column = np.ascontiguousarray(matrix.T)
        for i, name in enumerate(labels):
            table[f"input.{name}"] = pa.array(by_column[i])
    else:
        frame = pd.concat(inputs, ignore_index=True) if len(inputs) > 1 else inputs[0]
        feats = pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)
        for name, column in zip(frame.columns, feats.columns, strict=True):
            table[f"input.{name}"] = column
    out = np.concatenate(outputs) if len(outputs) > 1 else outputs[0]
    if out.ndim == 1:
        table["output"] = pa.array(out)
    else:
        out = np.ascontiguousarray(out.reshape(n, -1).T)
        for i in range(out.shape[0]):
            table[f"output.{i}"] = pa.array(out[i])
    return pa.table(table)


def _input_frame(inputs: Any) -> pd.DataFrame:
    if isinstance(inputs, pd.DataFrame):
        return inputs
    if isinstance(inputs, np.ndarray):
        array = inputs.reshape(len(inputs), -1) if inputs.ndim != 2 else inputs
        return pd.DataFrame(array, columns=[str(i) for i in range(array.shape[1])])
    return pd.DataFrame(inputs)  # dict of columns or list of records


def _as_list(truth: Any) -> list[Any]:
    if isinstance(truth, np.ndarray | pd.Series):
        truth = np.asarray(truth).tolist()  # a 0-d array gives a plain scalar
    return list(truth) if isinstance(truth, list | tuple) else [truth]


def feedback_table(items: Sequence[Feedback]) -> pa.Table:
    """One feedback table (one row per ground-truth value) for items of one day."""
    flat = [(r, i, t, v) for r, truth, t in items for i, v in enumerate(_as_list(truth))]
    try:
        truths = pa.array([v for *_, v in flat])
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # Mixed types (e.g. labels as ints and strings): keep them, as text.
        truths = pa.array([None if v is None else str(v) for *_, v in flat], pa.string())
    ids = pa.array([r for r, *_ in flat], pa.string())
    rows = pa.array([i for _, i, *_ in flat], pa.int32())
    times = pa.array([t for _, _, t, _ in flat], TIME_TYPE)
    return pa.table([ids, rows, times, truths], names=list(FEEDBACK_COLUMNS))


def concat_tables(tables: Sequence[pa.Table]) -> pa.Table:
    """Tables with different columns as one (missing -> null, int+float -> float);
    a column whose types cannot be reconciled (int in one, text in another) becomes text."""
    if len(tables) == 1:
        return tables[0]
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        pass
    kinds: dict[str, set[pa.DataType]] = defaultdict(set)
    for field in (f for t in tables for f in t.schema if not pa.types.is_null(f.type)):
        kinds[field.name].add(field.type)
    conflicts = {name for name, types in kinds.items() if len(types) > 1}
    fixed = []
    for table in tables:
        for name in conflicts & set(table.column_names):
            i = table.column_names.index(name)
            text = [None if v is None else str(v) for v in table.column(i).to_pylist()]
            table = table.set_column(i, name, pa.array(text, pa.string()))
        fixed.append(table)
    return pa.concat_tables(fixed, promote_options="permissive")
