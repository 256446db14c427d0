"""The modelloop side of ``benchmarks/tracking.py``; run with the project's interpreter.

    python benchmarks/_modelloop_side.py log --store DIR --out RESULT.json --runs N --steps N
    python benchmarks/_modelloop_side.py search --store DIR --out RESULT.json --search-runs N

Each mode runs in a fresh process on a fresh store and writes its figures as JSON.
"""

from __future__ import annotations

import argparse
import cProfile
import time
from typing import Any

import _workload as w

import modelloop
from modelloop.entities import Metric, Param


def bench_log(store: str, runs: int, steps: int, profile: str | None) -> dict[str, Any]:
    """The fluent idiom: one run per iteration, 10 params, ``log_metric`` per step."""
    modelloop.set_tracking_uri(store)
    modelloop.set_experiment(w.EXPERIMENT)  # creates the store; not timed
    values = w.metric_values(steps)

    # One short run first, untimed, on both sides: first-call costs (imports,
    # context capture caches, the store's first write) are not per-run costs.
    with modelloop.start_run():
        modelloop.log_params(w.run_params(-1))
        for step in range(w.WARMUP_STEPS):
            modelloop.log_metric(w.METRIC_KEY, values[step % steps], step=step)

    profiler = cProfile.Profile() if profile else None
    progress = w.Progress("modelloop log", runs)
    last_run_id = ""
    if profiler is not None:
        profiler.enable()
    start = time.perf_counter()
    for r in range(runs):
        with modelloop.start_run() as run:
            modelloop.log_params(w.run_params(r))
            for step, value in enumerate(values):
                modelloop.log_metric(w.METRIC_KEY, value, step=step)
        last_run_id = run.run_id
        progress.tick(r + 1)
    modelloop.flush()
    elapsed = time.perf_counter() - start
    if profiler is not None and profile:
        profiler.disable()
        profiler.dump_stats(profile)

    client = modelloop.get_client()
    stored = len(client.get_metric_history(last_run_id, w.METRIC_KEY))
    last = client.get_run(last_run_id)
    return {
        "tool": "modelloop",
        "version": modelloop.__version__,
        "store": repr(client.backend),
        "api": "modelloop.start_run + log_params + log_metric(step=) per point",
        "runs": runs,
        "steps": steps,
        "points": runs * steps,
        "elapsed_s": elapsed,
        "points_per_s": runs * steps / elapsed,
        "stored_points_last_run": stored,
        "params_last_run": len(last.params),
        "git_captured": "modelloop.git.commit" in last.tags,
        "environment_captured": "modelloop.python" in last.tags,
    }


def bench_search(store: str, n_runs: int, repeats: int) -> dict[str, Any]:
    """Populate ``n_runs`` runs with log_batch, then time search_runs."""
    client = modelloop.Client(tracking_uri=store)
    eid = client.create_experiment(w.SEARCH_EXPERIMENT)
    progress = w.Progress("modelloop populate", n_runs)
    start = time.perf_counter()
    for i, row in enumerate(w.search_rows(n_runs)):
        run = client.create_run(eid, name=row.name, capture_context=False)
        ts = int(time.time() * 1000)
        client.backend.log_batch(
            run.run_id,
            metrics=[Metric("acc", row.acc, ts, 0), Metric("loss", row.loss, ts, 0)],
            params=[Param(k, val) for k, val in row.params.items()],
            tags=row.tags,
        )
        client.end_run(run.run_id)
        progress.tick(i + 1)
    populate_s = time.perf_counter() - start

    def search() -> list[float]:
        page = client.search_runs(
            [eid],
            filter_string=w.SEARCH_FILTER,
            order_by=w.SEARCH_ORDER_BY,
            max_results=w.SEARCH_MAX_RESULTS,
        )
        return [r.metrics["acc"] for r in page]

    got = search()  # warm-up, untimed
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        search()
        samples.append(time.perf_counter() - t0)
    return {
        "tool": "modelloop",
        "version": modelloop.__version__,
        "store": repr(client.backend),
        "api": "Client.search_runs (list of Run)",
        "search_runs": n_runs,
        "populate_s": populate_s,
        "results": len(got),
        "correct": got == w.expected_top(n_runs),
        **w.summarize_ms(samples),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["log", "search"])
    parser.add_argument("--store", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--search-runs", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--profile", default=None, help="write cProfile stats of the timed loop")
    args = parser.parse_args()
    if args.mode == "log":
        result = bench_log(args.store, args.runs, args.steps, args.profile)
    else:
        result = bench_search(args.store, args.search_runs, args.repeats)
    w.write_result(args.out, result)


if __name__ == "__main__":
    main()
