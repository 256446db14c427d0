"""The MLflow side of ``benchmarks/tracking.py``; run with ``benchmarks/.venv-mlflow``.

    python benchmarks/_mlflow_side.py log --out RESULT.json --runs N --steps N
    python benchmarks/_mlflow_side.py log-batch --out RESULT.json --runs N --steps N
    python benchmarks/_mlflow_side.py search --out RESULT.json --search-runs N

The parent starts it in an empty working directory without MLFLOW_TRACKING_URI, so
MLflow uses its default local store there; the result names the store it used.
Each mode runs in a fresh process on a fresh store and writes its figures as JSON.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import _workload as w
import mlflow
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient


def store_description() -> dict[str, Any]:
    """Which store MLflow picked when nothing was configured."""
    uri = mlflow.get_tracking_uri()
    if uri.startswith("sqlite:"):
        kind = "sqlite (mlflow.db)"
    elif uri.startswith("file:") or "://" not in uri:
        kind = "file store (./mlruns)"
    else:
        kind = uri.split(":", 1)[0]
    files = sorted(os.listdir("."))
    return {"tracking_uri": uri, "store_kind": kind, "cwd_entries": files}


def bench_log(runs: int, steps: int, batch: bool) -> dict[str, Any]:
    """The fluent idiom (``log_metric`` per step), or ``MlflowClient.log_batch`` per run."""
    mlflow.set_experiment(w.EXPERIMENT)  # creates the store; not timed
    client = MlflowClient()
    values = w.metric_values(steps)

    def one_run(r: int, n_steps: int) -> str:
        with mlflow.start_run() as run:
            mlflow.log_params(w.run_params(r))
            run_id = run.info.run_id
            if batch:
                for first in range(0, n_steps, 1000):
                    ts = int(time.time() * 1000)
                    points = [
                        Metric(w.METRIC_KEY, values[s % steps], ts, s)
                        for s in range(first, min(n_steps, first + 1000))
                    ]
                    client.log_batch(run_id, metrics=points)
            else:
                for step in range(n_steps):
                    mlflow.log_metric(w.METRIC_KEY, values[step % steps], step=step)
        return run_id

    # One short run first, untimed, on both sides: first-call costs (imports,
    # context capture caches, the store's first write) are not per-run costs.
    one_run(-1, w.WARMUP_STEPS)

    label = "mlflow log_batch" if batch else "mlflow log_metric"
    progress = w.Progress(label, runs)
    last_run_id = ""
    start = time.perf_counter()
    for r in range(runs):
        last_run_id = one_run(r, steps)
        progress.tick(r + 1)
    elapsed = time.perf_counter() - start

    stored = len(client.get_metric_history(last_run_id, w.METRIC_KEY))
    last = client.get_run(last_run_id)
    api = (
        "mlflow.start_run + log_params + MlflowClient.log_batch (1000 metrics a call)"
        if batch
        else "mlflow.start_run + log_params + log_metric(step=) per point (synchronous)"
    )
    return {
        "tool": "mlflow",
        "version": mlflow.__version__,
        **store_description(),
        "api": api,
        "runs": runs,
        "steps": steps,
        "points": runs * steps,
        "elapsed_s": elapsed,
        "points_per_s": runs * steps / elapsed,
        "stored_points_last_run": stored,
        "params_last_run": len(last.data.params),
        "git_captured": "mlflow.source.git.commit" in last.data.tags,
    }


def bench_search(n_runs: int, repeats: int) -> dict[str, Any]:
    """Populate ``n_runs`` runs with log_batch, then time search_runs."""
    client = MlflowClient()
    eid = client.create_experiment(w.SEARCH_EXPERIMENT)
    progress = w.Progress("mlflow populate", n_runs)
    start = time.perf_counter()
    for i, row in enumerate(w.search_rows(n_runs)):
        run = client.create_run(eid, run_name=row.name)
        run_id = run.info.run_id
        ts = int(time.time() * 1000)
        client.log_batch(
            run_id,
            metrics=[Metric("acc", row.acc, ts, 0), Metric("loss", row.loss, ts, 0)],
            params=[Param(k, val) for k, val in row.params.items()],
            tags=[RunTag(k, val) for k, val in row.tags.items()],
        )
        client.set_terminated(run_id)
        progress.tick(i + 1)
    populate_s = time.perf_counter() - start

    def search() -> list[float]:
        found = client.search_runs(
            [eid],
            filter_string=w.SEARCH_FILTER,
            order_by=w.SEARCH_ORDER_BY,
            max_results=w.SEARCH_MAX_RESULTS,
        )
        return [r.data.metrics["acc"] for r in found]

    got = search()  # warm-up, untimed
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        search()
        samples.append(time.perf_counter() - t0)
    return {
        "tool": "mlflow",
        "version": mlflow.__version__,
        **store_description(),
        "api": "MlflowClient.search_runs (list of Run)",
        "search_runs": n_runs,
        "populate_s": populate_s,
        "results": len(got),
        "correct": got == w.expected_top(n_runs),
        **w.summarize_ms(samples),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["log", "log-batch", "search"])
    parser.add_argument("--out", required=True)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--search-runs", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    if os.environ.get("MLFLOW_TRACKING_URI"):
        parser.error("MLFLOW_TRACKING_URI is set; the benchmark measures MLflow's default store")
    if args.mode == "search":
        result = bench_search(args.search_runs, args.repeats)
    else:
        result = bench_log(args.runs, args.steps, batch=args.mode == "log-batch")
    w.write_result(args.out, result)


if __name__ == "__main__":
    main()
