"""The client half of ``benchmarks/mlflow_server.py``: the stock ``mlflow`` client
(run from ``benchmarks/.venv-mlflow``) against whichever server
``MLFLOW_TRACKING_URI`` names. Writes its timings as JSON.

    MLFLOW_TRACKING_URI=http://127.0.0.1:PORT python _mlflow_server_client.py --out R.json

``--phase logging`` stops after the logging phase, ``--phase search`` after the
searches (the runs are logged first either way); the default runs everything.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

PARAMS = 10
POINTS = 101
ARTIFACT_BYTES = 8 * 1024 * 1024


def _median_ms(fn: Any, repeats: int) -> dict[str, float]:
    """Median and min wall time of ``fn`` after a warm-up, and the median of the
    client's own CPU time in it (what no server can take away)."""
    fn()  # warm-up
    times = []
    cpu = []
    for _ in range(repeats):
        cpu_start = time.process_time()
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - cpu_start) * 1000)
    return {
        "median_ms": statistics.median(times),
        "min_ms": min(times),
        "client_cpu_ms": statistics.median(cpu),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--phase", choices=("all", "logging", "search"), default="all")
    args = parser.parse_args()
    client = MlflowClient()
    exp = client.create_experiment(f"bench-{os.getpid()}")
    base = int(time.time() * 1000)

    # logging: one log_batch per run (10 params + 101 points), as the issue states
    run_ids = []
    cpu_start = time.process_time()
    start = time.perf_counter()
    for i in range(args.runs):
        run = client.create_run(exp, run_name=f"r{i}")
        rid = run.info.run_id
        params = [Param(f"p{k}", "x" if (i + k) % 2 == 0 else f"v{i % 7}") for k in range(PARAMS)]
        metrics = [Metric("m", ((i * 37 + s) % 101) / 100.0, base + s, s) for s in range(POINTS)]
        client.log_batch(rid, metrics=metrics, params=params)
        client.set_terminated(rid)
        run_ids.append(rid)
    logging_s = time.perf_counter() - start
    # The client's own CPU time in the phase: what no server can take away.
    client_cpu_s = time.process_time() - cpu_start
    result: dict[str, Any] = {
        "runs": args.runs,
        "logging_s": logging_s,
        "client_cpu_s": client_cpu_s,
    }
    if args.phase == "logging":
        Path(args.out).write_text(json.dumps(result), encoding="utf-8")
        return

    found = client.search_runs(
        [exp], "metrics.m > 0.5 and params.p0 = 'x'", order_by=["metrics.m DESC"], max_results=100
    )
    search = _median_ms(
        lambda: client.search_runs(
            [exp],
            "metrics.m > 0.5 and params.p0 = 'x'",
            order_by=["metrics.m DESC"],
            max_results=100,
        ),
        args.repeats,
    )
    result.update(search_hits=len(found), search=search)
    if args.phase == "search":
        Path(args.out).write_text(json.dumps(result), encoding="utf-8")
        return
    history_points = len(client.get_metric_history(run_ids[0], "m"))
    history = _median_ms(lambda: client.get_metric_history(run_ids[7], "m"), args.repeats)

    with tempfile.TemporaryDirectory() as tmp:
        blob = Path(tmp) / "blob.bin"
        data = os.urandom(ARTIFACT_BYTES)
        blob.write_bytes(data)
        target = run_ids[0]
        upload = _median_ms(lambda: client.log_artifact(target, str(blob), "big"), 3)
        counter = iter(range(1000))

        def download() -> None:
            dest = Path(tmp) / f"d{next(counter)}"
            dest.mkdir()
            got = client.download_artifacts(target, "big/blob.bin", str(dest))
            assert hashlib.sha256(Path(got).read_bytes()).digest() == hashlib.sha256(data).digest()

        down = _median_ms(download, args.repeats)

    result.update(
        history_points=history_points, history=history, upload_8mib=upload, download_8mib=down
    )
    Path(args.out).write_text(json.dumps(result), encoding="utf-8")


if __name__ == "__main__":
    main()
