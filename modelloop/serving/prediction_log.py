"""Prediction logging: every served prediction (sampled if asked) as Parquet files.

The inference server calls :meth:`PredictionLogger.log` on the request path, so it
only appends references to a buffer; a daemon thread turns the buffered requests
into one Arrow table per day and writes one Parquet file per flush and day under

    <root>/deployment=<name>/date=<YYYY-MM-DD>/part-<time_ms>-<uuid8>.parquet
    <root>/deployment=<name>/feedback/date=<YYYY-MM-DD>/part-<time_ms>-<uuid8>.parquet

``root`` is a local folder or any fsspec URI (``s3://bucket/predictions``). Files
appear whole (temp name + rename locally; remote object stores publish on close),
so a reader never sees half a file.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import logging
import threading
import time
import uuid
import weakref
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from modelloop.errors import InvalidArgument

__all__ = [
    "FEEDBACK_COLUMNS",
    "PREDICTION_COLUMNS",
    "PredictionLogger",
    "predictions_root",
    "read_feedback",
    "read_predictions",
]

log = logging.getLogger(__name__)

TIME_TYPE = pa.timestamp("ms", tz="UTC")
# The fixed leading columns of a prediction log, followed by input.* and output*.
_FIXED = "request_id row time deployment route model_name model_version latency_ms"
PREDICTION_COLUMNS = tuple(_FIXED.split())
FEEDBACK_COLUMNS = ("request_id", "row", "time", "ground_truth")
_TYPES = dict(row=pa.int32(), time=TIME_TYPE, latency_ms=pa.float64(), ground_truth=pa.null())
# (request_id, route, model_name, model_version, inputs, outputs, latency_ms, time_ms)
_Request = tuple[str, str, str, str, Any, Any, float, int]
# (request_id, ground_truth, time_ms)
_Feedback = tuple[str, Any, int]

_live: weakref.WeakSet[PredictionLogger] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    # Buffered rows would die with the daemon thread at interpreter exit.
    for logger in list(_live):
        logger.close()


def predictions_root(artifacts_uri: str) -> str:
    """Where prediction logs live for an artifact store root (its ``predictions/``)."""
    return artifacts_uri.rstrip("/") + "/predictions"


def _day(time_ms: int) -> str:
    return datetime.fromtimestamp(time_ms / 1000, tz=UTC).strftime("%Y-%m-%d")


def _sampled(request_id: str, rate: float) -> bool:
    # A hash, not random(): every worker process and the feedback path decide the
    # same way for one request id, so sampled predictions still get their ground truth.
    digest = hashlib.blake2b(request_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") < rate * 2**64


class PredictionLogger:
    """Buffered, sampled prediction and feedback logging to Parquet.

    ``log`` and ``log_feedback`` never block on I/O and never raise; failures are
    logged and counted in ``errors``. A background thread flushes every
    ``max_seconds`` or as soon as ``max_rows`` prediction rows are buffered. Inputs
    and outputs are kept by reference until the flush, so callers must not mutate
    them after logging. Counters (``requests_logged``, ``rows_logged``,
    ``files_written``, ``errors``, ``dropped``) count what reached storage.
    """

    def __init__(
        self,
        root_uri: str,
        *,
        deployment: str,
        sample_rate: float = 1.0,
        max_rows: int = 10_000,
        max_seconds: float = 5.0,
    ) -> None:
        if not deployment or any(c in deployment for c in "/\\=") or deployment.startswith("."):
            raise InvalidArgument(f"invalid deployment name {deployment!r} for a log partition")
        if not 0.0 <= sample_rate <= 1.0:
            raise InvalidArgument(f"sample_rate must be within [0, 1], got {sample_rate}")
        if max_rows < 1 or max_seconds <= 0:
            raise InvalidArgument("max_rows must be >= 1 and max_seconds > 0")
        self.root_uri = root_uri.rstrip("/")
        self.deployment = deployment
        self.sample_rate = float(sample_rate)
        self.max_rows = max_rows
        self.max_seconds = float(max_seconds)
        self.requests_logged = self.rows_logged = self.files_written = self.errors = 0
        self.dropped = 0  # requests not stored: overflow, after close, conversion/write failure
        self._lock = threading.Lock()
        self._requests: list[_Request] = []
        self._feedback: list[_Feedback] = []
        self._pending_rows = 0
        # Storage down or too slow: drop (and count) rather than grow without bound.
        self._cap_rows = max(10 * max_rows, 100_000)
        self._write_lock = threading.Lock()  # one drain+write at a time: flush() is complete
        self._wake = threading.Event()
        self._closed = False
        self._thread = threading.Thread(
            target=self._run, name=f"prediction-log-{deployment}", daemon=True
        )
        self._thread.start()
        _live.add(self)

    def log(
        self,
        *,
        request_id: str,
        route: str,
        model_name: str,
        model_version: str,
        inputs: pd.DataFrame | np.ndarray[Any, Any],
        outputs: np.ndarray[Any, Any],
        latency_ms: float,
        time_ms: int,
    ) -> None:
        """Buffer one request's predictions (O(1): references only, no conversion)."""
        try:
            if self.sample_rate < 1.0 and not _sampled(request_id, self.sample_rate):
                return
            rows = len(inputs)
            r = (request_id, route, model_name, model_version, inputs, outputs, latency_ms, time_ms)
            with self._lock:
                if self._closed or self._pending_rows >= self._cap_rows:
                    self.dropped += 1
                    return
                self._requests.append(r)
                self._pending_rows += rows
                full = self._pending_rows >= self.max_rows
            if full:
                self._wake.set()
        except Exception:
            self._count_error("could not buffer a prediction for logging")

    def log_feedback(self, request_id: str, ground_truth: object, time_ms: int) -> None:
        """Buffer the ground truth of an earlier request (a list: one per prediction row).

        Feedback is sampled like predictions (same request ids), so it always has
        predictions to join to."""
        try:
            if self.sample_rate < 1.0 and not _sampled(request_id, self.sample_rate):
                return
            with self._lock:
                if self._closed:
                    self.dropped += 1
                    return
                self._feedback.append((request_id, ground_truth, time_ms))
        except Exception:
            self._count_error("could not buffer feedback for logging")

    def flush(self) -> int:
        """Write everything buffered now (blocking); returns the prediction rows written.

        Does not raise: a failed write is logged, counted in ``errors`` and its rows
        are dropped (counted in ``dropped``)."""
        with self._write_lock:
            with self._lock:
                requests, self._requests = self._requests, []
                feedback, self._feedback = self._feedback, []
                self._pending_rows = 0
            written = self._write_requests(requests) if requests else 0
            if feedback:
                self._write_feedback(feedback)
            return written

    def close(self) -> None:
        """Flush what is buffered and stop the background thread (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._wake.set()
        if self._thread is not threading.current_thread():
            self._thread.join()
        self.flush()
        _live.discard(self)

    def _run(self) -> None:
        while True:
            self._wake.wait(self.max_seconds)
            self._wake.clear()
            if self._closed:
                return  # close() does the final flush in the caller's thread
            try:
                self.flush()
            except Exception:  # keep the thread alive whatever went wrong
                self._count_error("prediction log flush failed")

    def _count_error(self, what: str) -> None:
        with self._lock:
            self.errors += 1
        log.exception("%s (deployment %s)", what, self.deployment)

    def _write_requests(self, requests: list[_Request]) -> int:
        by_day: dict[str, list[_Request]] = defaultdict(list)
        for req in requests:
            by_day[_day(req[7])].append(req)
        written = 0
        for day, reqs in by_day.items():
            table, good = self._requests_table(reqs)
            if table is None:
                continue
            if self._write(f"deployment={self.deployment}/date={day}", table, len(reqs)):
                written += table.num_rows
                with self._lock:
                    self.requests_logged += good
                    self.rows_logged += table.num_rows
        return written

    def _requests_table(self, reqs: list[_Request]) -> tuple[pa.Table | None, int]:
        """One table for requests of one day; bad requests are counted and left out."""
        # Requests with the same input columns and output width are converted together
        # (one concat, vectorised metadata) instead of one DataFrame per request.
        groups: dict[tuple[Any, ...], list[_Request]] = defaultdict(list)
        for req in reqs:
            groups[_shape_key(req[4], req[5])].append(req)
        tables: list[pa.Table] = []
        good = 0
        for group in groups.values():
            try:
                tables.append(self._group_table(group))
                good += len(group)
            except Exception:
                # Isolate the request(s) that do not convert; keep the rest.
                for req in group:
                    try:
                        tables.append(self._group_table([req]))
                        good += 1
                    except Exception:
                        with self._lock:
                            self.dropped += 1
                        self._count_error(f"cannot log request {req[0]!r}")
        if not tables:
            return None, 0
        table = concat_tables(tables)
        # Fixed columns, then inputs, then outputs, whatever order the groups came in.
        rest = sorted(table.column_names[len(PREDICTION_COLUMNS) :], key=lambda c: c[0] != "i")
        return table.select([*PREDICTION_COLUMNS, *rest]), good

    def _group_table(self, group: list[_Request]) -> pa.Table:
        inputs = [_input_frame(r[4]) for r in group]
        outputs = [np.asarray(r[5]) for r in group]
        counts = np.fromiter((len(f) for f in inputs), dtype=np.int64, count=len(group))
        for req, frame, out in zip(group, inputs, outputs, strict=True):
            if out.ndim == 0 or out.shape[0] != len(frame):
                raise InvalidArgument(
                    f"request {req[0]!r}: {len(frame)} input rows but outputs of shape {out.shape}"
                )
        n = int(counts.sum())
        starts = np.repeat(np.cumsum(counts) - counts, counts)
        row = (np.arange(n, dtype=np.int64) - starts).astype(np.int32)
        columns: dict[str, pa.Array] = {
            "request_id": pa.array(np.repeat([r[0] for r in group], counts), pa.string()),
            "row": pa.array(row, pa.int32()),
            "time": pa.array(np.repeat([r[7] for r in group], counts).astype(np.int64), TIME_TYPE),
            "deployment": pa.array(np.repeat(self.deployment, n), pa.string()),
            "route": pa.array(np.repeat([r[1] for r in group], counts), pa.string()),
            "model_name": pa.array(np.repeat([r[2] for r in group], counts), pa.string()),
            "model_version": pa.array(np.repeat([str(r[3]) for r in group], counts), pa.string()),
            "latency_ms": pa.array(np.repeat([float(r[6]) for r in group], counts), pa.float64()),
        }
        first_dtypes = set(inputs[0].dtypes)
        arrays = [f.to_numpy() for f in inputs] if len(first_dtypes) == 1 else []
        dtype = arrays[0].dtype if arrays else None
        if (
            dtype is not None
            and dtype.kind in "biuf"
            and first_dtypes == {dtype}
            and all(a.dtype == dtype for a in arrays)
        ):
            # One numeric dtype throughout (the usual tabular model): one 2-D
            # concatenation instead of a pandas concat of many small frames, which
            # would hold the GIL long enough to slow the server down.
            matrix = np.concatenate(arrays)
            for i, name in enumerate(inputs[0].columns):
                columns[f"input.{name}"] = pa.array(matrix[:, i])
        else:
            frame = pd.concat(inputs, ignore_index=True) if len(inputs) > 1 else inputs[0]
            feats = pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)
            for name, column in zip(frame.columns, feats.columns, strict=True):
                columns[f"input.{name}"] = column
        out = np.concatenate(outputs) if len(outputs) > 1 else outputs[0]
        if out.ndim == 1:
            columns["output"] = pa.array(out)
        else:
            out = out.reshape(n, -1)
            for i in range(out.shape[1]):
                columns[f"output.{i}"] = pa.array(out[:, i])
        return pa.table(columns)

    def _write_feedback(self, feedback: list[_Feedback]) -> None:
        by_day: dict[str, list[_Feedback]] = defaultdict(list)
        for item in feedback:
            by_day[_day(item[2])].append(item)
        for day, items in by_day.items():
            flat = [(r, i, t, v) for r, truth, t in items for i, v in enumerate(_as_list(truth))]
            try:
                truths = pa.array([v for *_, v in flat])
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                # Mixed types (e.g. labels as ints and strings): keep them, as text.
                truths = pa.array([None if v is None else str(v) for *_, v in flat], pa.string())
            ids = pa.array([r for r, *_ in flat], pa.string())
            rows = pa.array([i for _, i, *_ in flat], pa.int32())
            times = pa.array([t for _, _, t, _ in flat], TIME_TYPE)
            table = pa.table([ids, rows, times, truths], names=list(FEEDBACK_COLUMNS))
            self._write(f"deployment={self.deployment}/feedback/date={day}", table, len(items))

    def _write(self, partition: str, table: pa.Table, requests: int) -> bool:
        """Write ``table`` as one new file in ``partition``; False (counted) on failure."""
        try:
            fs, root = fsspec.core.url_to_fs(self.root_uri)
            folder = f"{root}/{partition}"
            name = f"part-{int(time.time() * 1000)}-{uuid.uuid4().hex[:8]}.parquet"
            fs.makedirs(folder, exist_ok=True)
            if isinstance(fs, LocalFileSystem):
                # Readers glob part-*.parquet, so the dot-name is invisible until renamed.
                tmp = f"{folder}/.{name}.tmp"
                try:
                    with fs.open(tmp, "wb") as f:
                        pq.write_table(table, f)
                    fs.mv(tmp, f"{folder}/{name}")
                finally:
                    with contextlib.suppress(OSError):
                        fs.rm(tmp)  # still there only when something failed
            else:
                # Object stores publish an object only when its upload completes.
                with fs.open(f"{folder}/{name}", "wb") as f:
                    pq.write_table(table, f)
        except Exception:
            with self._lock:
                self.dropped += requests
            self._count_error(f"cannot write prediction log under {self.root_uri!r}")
            return False
        with self._lock:
            self.files_written += 1
        return True


def _shape_key(inputs: Any, outputs: Any) -> tuple[Any, ...]:
    # Index.tolist() is several times cheaper than iterating the (Arrow-backed) Index.
    cols = tuple(inputs.columns.tolist()) if isinstance(inputs, pd.DataFrame) else None
    shape = np.shape(inputs)[1:] if cols is None else ()
    return (cols, shape, np.ndim(outputs), np.shape(outputs)[1:])


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


# -- reading ----------------------------------------------------------------------------------


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


def _read(
    root_uri: str, folder: str, fixed: Sequence[str], since_ms: int | None, until_ms: int | None
) -> pd.DataFrame:
    fs, root = fsspec.core.url_to_fs(root_uri.rstrip("/"))
    files = sorted(fs.glob(f"{root}/{folder}/date=*/part-*.parquet"))
    # Skip whole days outside the window by their partition name.
    first = _day(since_ms) if since_ms is not None else ""
    last = _day(until_ms) if until_ms is not None else "~"  # "~" sorts after any date
    tables = []
    for path in files:
        if not first <= path.rsplit("/date=", 1)[-1].split("/", 1)[0] <= last:
            continue
        with fs.open(path, "rb") as f:
            tables.append(pq.read_table(f))
    if not tables:
        return _empty(fixed)
    table = concat_tables(tables)
    if since_ms is not None or until_ms is not None:
        millis = table.column("time").cast(pa.int64()).to_numpy(zero_copy_only=False)
        low = np.iinfo(np.int64).min if since_ms is None else since_ms
        high = np.iinfo(np.int64).max if until_ms is None else until_ms
        table = table.filter(pa.array((millis >= low) & (millis < high)))
    frame: pd.DataFrame = table.to_pandas()
    return frame.sort_values(["time", "request_id", "row"], kind="stable").reset_index(drop=True)


def _empty(fixed: Sequence[str]) -> pd.DataFrame:
    schema = pa.schema([(c, _TYPES.get(c, pa.string())) for c in fixed])
    frame: pd.DataFrame = schema.empty_table().to_pandas()
    return frame


def read_predictions(
    root_uri: str, deployment: str, *, since_ms: int | None = None, until_ms: int | None = None
) -> pd.DataFrame:
    """All logged prediction rows of ``deployment`` with ``since_ms <= time < until_ms``,
    sorted by time, request id and row (empty frame with the fixed columns if none)."""
    return _read(root_uri, f"deployment={deployment}", PREDICTION_COLUMNS, since_ms, until_ms)


def read_feedback(root_uri: str, deployment: str) -> pd.DataFrame:
    """All logged ground truth of ``deployment`` (request_id, row, time, ground_truth);
    merge with :func:`read_predictions` on ``request_id`` and ``row``."""
    return _read(root_uri, f"deployment={deployment}/feedback", FEEDBACK_COLUMNS, None, None)
