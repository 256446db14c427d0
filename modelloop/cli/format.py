"""Formatting helpers for CLI tables."""

from __future__ import annotations

import datetime as dt
import math


def fmt_time(ms: int | None) -> str:
    """Milliseconds since the epoch as local ``YYYY-MM-DD HH:MM:SS``."""
    if ms is None:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def fmt_duration(start: int, end: int | None) -> str:
    """A run's duration, e.g. ``1.5s`` or ``3m 02s``."""
    if end is None:
        return ""
    seconds = (end - start) / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m {secs:02d}s"


def fmt_value(value: object) -> str:
    """Metrics with 6 significant digits; everything else as text."""
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.6g}"
    return "" if value is None else str(value)
