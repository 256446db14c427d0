"""Buffered metric logging: points are validated at once and written in bulk."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence

from modelloop.entities import Metric

WriteFn = Callable[[str, Sequence[Metric]], None]

# Points per transaction when flushing one run's backlog.
WRITE_CHUNK = 50_000


class MetricBuffer:
    """Collects metric points per run and writes them with ``write(run_id, points)``.

    Writes happen when ``max_points`` are buffered, when ``max_age`` seconds have
    passed since the last write (checked on the next ``add``), on ``flush()``, at
    the end of a run and at interpreter exit. When ``flush()`` returns, every point
    added before the call is committed.
    """

    def __init__(self, write: WriteFn, max_points: int = 10_000, max_age: float = 5.0) -> None:
        self._write = write
        self._max_points = max(1, max_points)
        self._max_age = max_age
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._pending: dict[str, list[Metric]] = defaultdict(list)
        self._count = 0
        self._last_flush = time.monotonic()

    def __len__(self) -> int:
        return self._count

    def add(self, run_id: str, points: Sequence[Metric]) -> None:
        """Buffer already-validated points; may trigger a write."""
        with self._lock:
            self._pending[run_id].extend(points)
            self._count += len(points)
            due = (
                self._count >= self._max_points
                or time.monotonic() - self._last_flush >= self._max_age
            )
        if due:
            self.flush()

    def flush(self, run_id: str | None = None) -> int:
        """Write buffered points (of one run, or all); returns how many were written.

        If a run's points are refused (say the run was deleted meanwhile), the error
        is raised after the other runs' points are written; the refused points are
        dropped, since retrying cannot make them valid.
        """
        with self._flush_lock:
            with self._lock:
                if run_id is None:
                    batch = dict(self._pending)
                    self._pending.clear()
                else:
                    batch = {run_id: self._pending.pop(run_id)} if run_id in self._pending else {}
                taken = sum(len(p) for p in batch.values())
                self._count -= taken
                self._last_flush = time.monotonic()
            error: BaseException | None = None
            for rid, points in batch.items():
                try:
                    for start in range(0, len(points), WRITE_CHUNK):
                        self._write(rid, points[start : start + WRITE_CHUNK])
                except Exception as exc:
                    error = error or exc
            if error is not None:
                raise error
            return taken

    def discard(self, run_id: str) -> int:
        """Drop a run's buffered points without writing them; returns how many."""
        with self._lock:
            points = self._pending.pop(run_id, [])
            self._count -= len(points)
            return len(points)
