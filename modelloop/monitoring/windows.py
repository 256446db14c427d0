"""Reading a deployment's prediction logs window by window, incrementally.

A log file is named ``part-<write time ms>-<id>.parquet`` and every row in it was
served at or before its write time, so a monitor that has scored everything before
``until`` never needs a file written before ``until``: it lists the day partitions
from ``until``'s day on and opens only files written since. Rows that arrive later
than that for an already scored window (more than ``grace`` late) are counted as
late and left out, so a window's results never change once stored.

Time windows are aligned to the epoch (``1d`` windows are UTC days) and scored once
their end is ``grace`` in the past. Row windows take logged rows in file order, N at
a time; the rows left over wait for the next run (only that file is reread).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from modelloop.monitoring.config import WindowSpec
from modelloop.serving.prediction_log import concat_tables

__all__ = ["LogWindow", "WindowReader", "split_log_frame"]


@dataclasses.dataclass(frozen=True)
class LogWindow:
    """One window of logged predictions (``end_ms`` exclusive) and the reader state
    to store once it is scored."""

    start_ms: int
    end_ms: int
    frame: pd.DataFrame
    state: dict[str, Any]
    late_rows: int = 0


def _file_key(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _write_ms(path: str) -> int:
    # part-<time_ms>-<uuid8>.parquet
    try:
        return int(_file_key(path).split("-")[1])
    except (IndexError, ValueError):
        return 0


def _millis(times: pd.Series) -> np.ndarray[Any, np.dtype[np.int64]]:
    values: np.ndarray[Any, np.dtype[np.int64]] = times.dt.as_unit("ms").astype("int64").to_numpy()
    return values


def _day_of(path: str) -> str:
    return path.rsplit("/date=", 1)[-1].split("/", 1)[0]


def _day(ms: int) -> str:
    return pd.Timestamp(ms, unit="ms", tz="UTC").strftime("%Y-%m-%d")


class WindowReader:
    """Closed windows of ``deployment``'s logs under ``root_uri`` after a stored state."""

    def __init__(
        self,
        root_uri: str,
        deployment: str,
        window: WindowSpec,
        *,
        grace_ms: int = 60_000,
        start_ms: int | None = None,
    ) -> None:
        self.fs, root = fsspec.core.url_to_fs(root_uri.rstrip("/"))
        self.folder = f"{root}/deployment={deployment}"
        self.window = window
        self.grace_ms = grace_ms
        self.start_ms = start_ms

    def _files(self, now_ms: int) -> list[str]:
        paths = self.fs.glob(f"{self.folder}/date=*/part-*.parquet")
        # A file named with a time after now - grace may still be joined by a slower
        # writer's earlier-named file: leave both for the next run.
        found = [p for p in paths if _write_ms(p) <= now_ms - self.grace_ms]
        return sorted(found, key=_file_key)

    def _read(self, path: str) -> pa.Table:
        with self.fs.open(path, "rb") as f:
            return pq.read_table(f)

    def windows(self, state: dict[str, Any], now_ms: int) -> Iterator[LogWindow]:
        """The closed windows not scored yet, oldest first; each carries the state to
        store with it. Windows without a logged row are skipped."""
        if self.window.kind == "rows":
            yield from self._row_windows(state, now_ms)
        else:
            yield from self._time_windows(state, now_ms)

    # -- time windows ----------------------------------------------------------------

    def _time_windows(self, state: dict[str, Any], now_ms: int) -> Iterator[LogWindow]:
        size = self.window.size * 1000
        until = state.get("until")
        if until is None and self.start_ms is not None:
            until = self.start_ms - self.start_ms % size
        closed_end = (now_ms - self.grace_ms) // size * size  # windows ending by then
        if until is not None and until >= closed_end:
            return
        first_day = None if until is None else _day(until)
        paths, late = [], 0
        for path in self._files(now_ms):
            if until is not None and _write_ms(path) < until:
                continue  # every row in it was served before ``until``: already scored
            if first_day is not None and _day_of(path) < first_day:
                # Written since, but for a day already scored: all of it is late.
                # The footer says how many rows without reading them.
                with self.fs.open(path, "rb") as f:
                    late += pq.read_metadata(f).num_rows
                continue
            paths.append(path)
        # One day partition at a time (rows are partitioned by the day they were
        # served), so a long backlog never sits in memory whole: after day D every
        # row before D+1 is known, and the windows ending by then are complete.
        by_day: dict[str, list[str]] = {}
        for path in paths:
            by_day.setdefault(_day_of(path), []).append(path)
        low = np.iinfo(np.int64).min if until is None else until
        carry: pd.DataFrame | None = None
        for day in sorted(by_day):
            table = concat_tables([self._read(p) for p in by_day[day]])
            millis = table.column("time").cast(pa.int64()).to_numpy(zero_copy_only=False)
            late += int(np.count_nonzero(millis < low))
            keep = (millis >= low) & (millis < closed_end)
            frame: pd.DataFrame = table.filter(pa.array(keep)).to_pandas()
            if carry is not None and len(carry):
                frame = pd.concat([carry, frame], ignore_index=True)
            if not len(frame):
                continue
            frame = frame.sort_values(["time", "request_id", "row"], kind="stable")
            day_end = int(pd.Timestamp(day, tz="UTC").value // 1_000_000) + 86_400_000
            times = _millis(frame["time"])
            starts = times - times % size
            complete = starts + size <= day_end
            for start in np.unique(starts[complete]):
                rows = frame[starts == start].reset_index(drop=True)
                end = int(start) + size
                yield LogWindow(int(start), end, rows, {"until": end}, late_rows=late)
                late = 0
            carry = frame[~complete]
        if carry is not None and len(carry):
            # Windows longer than a day, or ending after the last logged day: every
            # row is before ``closed_end``, so they are complete too.
            times = _millis(carry["time"])
            starts = times - times % size
            for start in np.unique(starts):
                rows = carry[starts == start].reset_index(drop=True)
                end = int(start) + size
                yield LogWindow(int(start), end, rows, {"until": end}, late_rows=late)
                late = 0

    def read_span(self, start_ms: int, end_ms: int, written_until_ms: int) -> pd.DataFrame:
        """The rows of ``[start_ms, end_ms)`` in files written by ``written_until_ms``
        (the files the window was scored from), with only the columns performance
        needs: ids, time, model version and outputs."""
        first, last = _day(start_ms), _day(end_ms - 1)
        tables = []
        for path in self.fs.glob(f"{self.folder}/date=*/part-*.parquet"):
            written = _write_ms(path)
            if (
                not first <= _day_of(path) <= last
                or not start_ms <= written <= end_ms + self.grace_ms
            ):
                continue
            with self.fs.open(path, "rb") as f:
                parquet = pq.ParquetFile(f)
                wanted = [
                    c
                    for c in parquet.schema_arrow.names
                    if c in ("request_id", "row", "time", "model_name", "model_version")
                    or c == "output"
                    or c.startswith("output.")
                ]
                tables.append(parquet.read(columns=wanted))
        if not tables:
            return pd.DataFrame()
        table = concat_tables(tables)
        millis = table.column("time").cast(pa.int64()).to_numpy(zero_copy_only=False)
        frame: pd.DataFrame = table.filter(
            pa.array((millis >= start_ms) & (millis < end_ms))
        ).to_pandas()
        return frame.reset_index(drop=True)

    # -- row windows -----------------------------------------------------------------

    def _row_windows(self, state: dict[str, Any], now_ms: int) -> Iterator[LogWindow]:
        size = self.window.size
        file_key: str | None = state.get("file")
        offset = int(state.get("offset", 0))
        paths = [p for p in self._files(now_ms) if file_key is None or _file_key(p) >= file_key]
        if self.start_ms is not None:
            paths = [p for p in paths if _write_ms(p) >= self.start_ms]
        pending: list[pd.DataFrame] = []
        # Where each pending row came from, to know where the next window starts.
        origins: list[tuple[str, int, int]] = []  # (file key, first row, rows)
        buffered = 0
        for path in paths:
            key = _file_key(path)
            frame: pd.DataFrame = self._read(path).to_pandas()
            first = offset if key == file_key else 0
            frame = frame.iloc[first:]
            if frame.empty:
                continue
            pending.append(frame)
            origins.append((key, first, len(frame)))
            buffered += len(frame)
            while buffered >= size:
                rows = pd.concat(pending, ignore_index=True) if len(pending) > 1 else pending[0]
                window, rest = rows.iloc[:size], rows.iloc[size:]
                # The next unconsumed row: walk the origins by the rows taken.
                taken = size
                while origins and taken >= origins[0][2]:
                    taken -= origins.pop(0)[2]
                if origins:
                    k, f, n = origins[0]
                    origins[0] = (k, f + taken, n - taken)
                    next_state = {"file": k, "offset": f + taken}
                else:
                    next_state = {"file": key + "\x7f", "offset": 0}  # after this file
                pending = [rest.reset_index(drop=True)] if len(rest) else []
                buffered = len(rest)
                times = _millis(window["time"])
                yield LogWindow(
                    int(times.min()),
                    int(times.max()) + 1,
                    window.reset_index(drop=True),
                    next_state,
                )


def split_log_frame(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The model inputs (``input.x`` -> ``x``) and outputs (``output`` or
    ``output.i`` -> ``prediction`` / ``prediction_i``) of logged rows."""
    inputs = frame[[c for c in frame.columns if c.startswith("input.")]]
    inputs = inputs.rename(columns=lambda c: c[len("input.") :])
    out_cols = [c for c in frame.columns if c == "output" or c.startswith("output.")]
    outputs = frame[out_cols].rename(
        columns=lambda c: "prediction" if c == "output" else "prediction_" + c[len("output.") :]
    )
    return inputs.reset_index(drop=True), outputs.reset_index(drop=True)
