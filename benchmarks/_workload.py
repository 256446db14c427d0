"""The workload both sides of the tracking benchmark run, so that they log identical data.

Imported by ``_modelloop_side.py`` (project venv) and ``_mlflow_side.py`` (the MLflow
venv): standard library only.
"""

from __future__ import annotations

import json
import math
import random
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

N_PARAMS = 10
METRIC_KEY = "loss"
EXPERIMENT = "bench-logging"
SEARCH_EXPERIMENT = "bench-search"
SEARCH_FILTER = "metrics.acc > 0.5 AND params.p0 = 'x'"
SEARCH_ORDER_BY = ["metrics.acc DESC"]
SEARCH_MAX_RESULTS = 100
SEARCH_SEED = 20240601
WARMUP_STEPS = 10
PROGRESS_PREFIX = "[progress]"
PROGRESS_EVERY_S = 30.0


def run_params(run_index: int) -> dict[str, str]:
    """The 10 params every logging run records."""
    return {f"p{i}": f"value-{i}-{run_index % 7}" for i in range(N_PARAMS)}


def metric_values(steps: int) -> list[float]:
    """The metric series of one run (precomputed: producing values is not timed)."""
    return [1.0 / (step + 1) + 0.01 * math.sin(step) for step in range(steps)]


@dataclass(frozen=True)
class SearchRow:
    """One run of the search data set."""

    name: str
    acc: float
    loss: float
    params: dict[str, str]
    tags: dict[str, str]


def search_rows(n: int) -> Iterator[SearchRow]:
    """``n`` runs with metrics acc and loss, 10 params (p0 is 'x' or 'y') and 2 tags."""
    rng = random.Random(SEARCH_SEED)
    for i in range(n):
        acc = rng.random()
        loss = rng.random()
        params = {"p0": "x" if rng.random() < 0.5 else "y"}
        params.update({f"p{j}": f"v{rng.randrange(10)}" for j in range(1, N_PARAMS)})
        tags = {"team": rng.choice(["vision", "nlp", "tabular"]), "bench": "search"}
        yield SearchRow(f"search-{i}", acc, loss, params, tags)


def expected_top(n: int) -> list[float]:
    """The acc values the benchmark search must return, best first."""
    accs = [r.acc for r in search_rows(n) if r.acc > 0.5 and r.params["p0"] == "x"]
    return sorted(accs, reverse=True)[:SEARCH_MAX_RESULTS]


def summarize_ms(samples: Sequence[float]) -> dict[str, Any]:
    """Median, p95, min and max of durations given in seconds, as milliseconds."""
    ms = sorted(s * 1000.0 for s in samples)
    p95_index = min(len(ms) - 1, max(0, math.ceil(0.95 * len(ms)) - 1))
    return {
        "median_ms": statistics.median(ms),
        "p95_ms": ms[p95_index],
        "min_ms": ms[0],
        "max_ms": ms[-1],
        "samples_ms": ms,
    }


class Progress:
    """Occasional progress lines on stderr (the parent keeps them in a log file)."""

    def __init__(self, label: str, total: int) -> None:
        self.label = label
        self.total = total
        self.start = time.perf_counter()
        self.last = self.start

    def tick(self, done: int) -> None:
        now = time.perf_counter()
        if now - self.last >= PROGRESS_EVERY_S or done == self.total:
            self.last = now
            took = now - self.start
            print(
                f"{PROGRESS_PREFIX} {self.label}: {done}/{self.total} after {took:.0f}s",
                file=sys.stderr,
                flush=True,
            )


def write_result(path: str, result: dict[str, Any]) -> None:
    """Write a side's result as JSON for the parent process."""
    Path(path).write_text(json.dumps(result, indent=2), encoding="utf-8")
