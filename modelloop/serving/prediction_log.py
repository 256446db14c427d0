"""Prediction logging: every served prediction (sampled if asked) as Parquet files.

The inference server calls :meth:`PredictionLogger.log` on the request path, so it
only appends references to a buffer; a daemon thread turns the buffered requests
into one Arrow table per day (:mod:`modelloop.serving.prediction_log_tables`, kept
cheap because it shares the GIL with the server) and writes one Parquet file per
flush and day under

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
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from modelloop.errors import InvalidArgument
from modelloop.serving.prediction_log_tables import (
    FEEDBACK_COLUMNS,
    PREDICTION_COLUMNS,
    TIME_TYPE,
    Feedback,
    Request,
    concat_tables,
    day_of,
    feedback_table,
    ordered,
    requests_table,
    split_by_day,
)

if TYPE_CHECKING:
    from modelloop.settings import Settings

__all__ = [
    "FEEDBACK_COLUMNS",
    "PREDICTION_COLUMNS",
    "PredictionLogger",
    "concat_tables",
    "predictions_root",
    "read_feedback",
    "read_predictions",
]

log = logging.getLogger(__name__)

_TYPES = dict(row=pa.int32(), time=TIME_TYPE, latency_ms=pa.float64(), ground_truth=pa.null())

# Converting every 1,000 rows rather than at each 10,000-row write measured 0.3 to 2
# points less extra server CPU per request with logging on (benchmarks/serving.py
# --logging-only --together): request frames die younger, convert while still cached.
_CONVERT_ROWS = 1_000
_live: weakref.WeakSet[PredictionLogger] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    # Buffered rows would die with the daemon thread at interpreter exit.
    for logger in list(_live):
        logger.close()


def predictions_root(artifacts_uri: str) -> str:
    """Where prediction logs live for an artifact store root (its ``predictions/``)."""
    return artifacts_uri.rstrip("/") + "/predictions"


def predictions_root_for(settings: Settings, hint: str) -> str:
    """Where the store of ``settings`` keeps prediction logs. A remote tracking server
    does not say where its artifact store is, so then the ``artifacts_uri`` setting
    must (``InvalidArgument`` ending with ``hint`` otherwise)."""
    from modelloop.backends.factory import resolve_stores

    artifacts = settings.artifacts_uri
    if not artifacts:
        if settings.tracking_uri.startswith(("http://", "https://")):
            raise InvalidArgument(
                "prediction logs live in the artifact store: set the artifacts_uri setting "
                f"(MODELLOOP_ARTIFACTS_URI) to the server's artifact root{hint}"
            )
        artifacts = resolve_stores(settings.tracking_uri, settings.artifacts_uri)[1]
    return predictions_root(artifacts)


def _sampled(request_id: str, rate: float) -> bool:
    # A hash, not random(): every worker process and the feedback path decide the
    # same way for one request id, so sampled predictions still get their ground truth.
    digest = hashlib.blake2b(request_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") < rate * 2**64


class PredictionLogger:
    """Buffered, sampled prediction and feedback logging to Parquet.

    ``log`` and ``log_feedback`` never block on I/O and never raise; failures are
    logged and counted in ``errors``. A background thread converts buffered requests
    to Arrow every 1,000 rows and writes them (one file per day) every
    ``max_seconds`` or as soon as ``max_rows`` prediction rows are waiting. Inputs
    and outputs are kept by reference until converted, so callers must not mutate
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
        self._requests: list[Request] = []
        self._feedback: list[Feedback] = []
        self._pending_rows = 0
        # Requests are converted in small batches, while their frames are still warm in
        # the CPU caches and before they age through the garbage collector's
        # generations; the compact Arrow tables wait for the write (max_rows/max_seconds).
        self._convert_rows = min(max_rows, _CONVERT_ROWS)
        self._converted: list[tuple[str, pa.Table, int]] = []  # (day, table, requests)
        self._converted_rows = 0
        self._last_write = time.monotonic()
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
                if self._closed or self._pending_rows + self._converted_rows >= self._cap_rows:
                    self.dropped += 1
                    return
                self._requests.append(r)
                self._pending_rows += rows
                full = self._pending_rows >= self._convert_rows
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
        return self._step(write=True)

    def _step(self, *, write: bool) -> int:
        """Convert the buffered requests; with ``write``, also write all converted rows
        and the buffered feedback."""
        with self._write_lock:
            with self._lock:
                requests, self._requests = self._requests, []
                feedback: list[Feedback] = []
                if write:
                    feedback, self._feedback = self._feedback, []
                self._pending_rows = 0
            if requests:
                self._convert(requests)
            written = self._write_converted() if write else 0
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
            due = self._last_write + self.max_seconds
            self._wake.wait(max(0.0, due - time.monotonic()))
            self._wake.clear()
            if self._closed:
                return  # close() does the final flush in the caller's thread
            try:
                write = (
                    time.monotonic() >= self._last_write + self.max_seconds
                    or self._converted_rows + self._pending_rows >= self.max_rows
                )
                self._step(write=write)
            except Exception:  # keep the thread alive whatever went wrong
                self._count_error("prediction log flush failed")

    def _count_error(self, what: str) -> None:
        with self._lock:
            self.errors += 1
        log.exception("%s (deployment %s)", what, self.deployment)

    def _convert(self, requests: list[Request]) -> None:
        for day, reqs in split_by_day(requests, 7, self._bad_request).items():
            try:
                table, good = requests_table(reqs, self.deployment, self._bad_request)
            except Exception:  # bad requests are sorted out inside: this is unexpected
                with self._lock:
                    self.dropped += len(reqs)
                self._count_error("cannot convert predictions for logging")
                continue
            if table is not None:
                self._converted.append((day, table, good))
                with self._lock:
                    self._converted_rows += table.num_rows

    def _write_converted(self) -> int:
        self._last_write = time.monotonic()
        by_day: dict[str, list[tuple[pa.Table, int]]] = {}
        for day, table, good in self._converted:
            by_day.setdefault(day, []).append((table, good))
        self._converted = []
        with self._lock:
            self._converted_rows = 0
        written = 0
        for day, parts in by_day.items():
            good = sum(g for _, g in parts)
            try:
                table = ordered(concat_tables([t for t, _ in parts]))
            except Exception:
                with self._lock:
                    self.dropped += good
                self._count_error("cannot combine converted predictions")
                continue
            if self._write(f"deployment={self.deployment}/date={day}", table, good):
                written += table.num_rows
                with self._lock:
                    self.requests_logged += good
                    self.rows_logged += table.num_rows
        return written

    def _bad_request(self, req: Request) -> None:
        with self._lock:
            self.dropped += 1
        self._count_error(f"cannot log request {req[0]!r}")

    def _write_feedback(self, feedback: list[Feedback]) -> None:
        for day, items in split_by_day(feedback, 2, self._bad_feedback).items():
            try:
                table = feedback_table(items)
            except Exception:
                with self._lock:
                    self.dropped += len(items)
                self._count_error("cannot convert feedback for logging")
                continue
            self._write(f"deployment={self.deployment}/feedback/date={day}", table, len(items))

    def _bad_feedback(self, item: Feedback) -> None:
        with self._lock:
            self.dropped += 1
        self._count_error(f"cannot log feedback for request {item[0]!r}")

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


# -- reading ----------------------------------------------------------------------------------


def _read(
    root_uri: str, folder: str, fixed: Sequence[str], since_ms: int | None, until_ms: int | None
) -> pd.DataFrame:
    fs, root = fsspec.core.url_to_fs(root_uri.rstrip("/"))
    files = sorted(fs.glob(f"{root}/{folder}/date=*/part-*.parquet"))
    # Skip whole days outside the window by their partition name.
    first = day_of(since_ms) if since_ms is not None else ""
    last = day_of(until_ms) if until_ms is not None else "~"  # "~" sorts after any date
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


def read_feedback(root_uri: str, deployment: str, *, since_ms: int | None = None) -> pd.DataFrame:
    """Logged ground truth of ``deployment`` (request_id, row, time, ground_truth), all
    of it or that received since ``since_ms``; merge with :func:`read_predictions` on
    ``request_id`` and ``row``."""
    folder = f"deployment={deployment}/feedback"
    return _read(root_uri, folder, FEEDBACK_COLUMNS, since_ms, None)
