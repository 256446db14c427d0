"""Server benchmark: ``mlflow server`` against ``modelloop server``, both on SQLite, driven
by the same stock ``mlflow`` client with the same workload.

    python benchmarks/mlflow_server.py           # 200 runs (the issue's workload)
    python benchmarks/mlflow_server.py --quick   # 40 runs
    python benchmarks/mlflow_server.py --phase logging --repeat 3

``--phase logging`` stops each client after the logging phase, ``--phase search``
after the searches (the same 200 runs are logged first either way). ``--repeat N``
runs each side N times, alternating MLflow and modelloop (each time a fresh server in
an empty folder), and reports each side's median with its range, and the ratio of
the medians with the range of the ratios of the pairs run back to back: other jobs
on the machine move single numbers a lot.

Workload (``_mlflow_server_client.py``, run from ``benchmarks/.venv-mlflow``): 200 runs,
each one ``log_batch`` of 10 params and 101 metric points, then ``search_runs`` with a
filter and an order, ``get_metric_history``, and an 8 MiB artifact up and down (medians
of repeated calls after a warm-up). Then modelloop's own ``HttpBackend`` sends 100,000
metric points to the modelloop server (buffered ``log_metric`` calls, timed until
``flush()`` returns, i.e. until the server has committed them).

Each server runs with its defaults in its own empty folder: ``mlflow server`` (its
default SQLite store ``mlflow.db`` and artifact proxy) and ``modelloop server --db
FOLDER`` (SQLite). Targets from the issue: logging 30x, search 5x, download 5x faster.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from tracking import REPO_ROOT, _clean_env, ensure_mlflow_venv, say

CLIENT = Path(__file__).resolve().parent / "_mlflow_server_client.py"
TARGETS = {"logging": 30.0, "search": 5.0, "download": 5.0}
HTTP_POINTS_CODE = """
import json, sys, time
from modelloop import Client, Settings
client = Client(settings=Settings(tracking_uri=sys.argv[1], capture_git=False,
                                  capture_environment=False))
run = client.create_run(client.create_experiment("http-points"))
start = time.perf_counter()
for step in range(100_000):
    client.log_metric(run.run_id, "loss", 1.0 / (step + 1), step=step)
client.flush()
took = time.perf_counter() - start
stored = len(client.get_metric_history(run.run_id, "loss"))
client.close()
print(json.dumps({"seconds": took, "stored": stored}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A server subprocess on a free loopback port, stopped with SIGTERM."""

    def __init__(
        self, cmd: list[str], cwd: Path, health: str, log: Path, *, bin_dir: str | None = None
    ) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log, "w", encoding="utf-8")  # noqa: SIM115 - closed in stop()
        args = [a.replace("{port}", str(self.port)) for a in cmd]
        env = _clean_env(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
        if bin_dir is not None:  # tools that start helpers by name (mlflow runs `uvicorn`)
            env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
        self.proc = subprocess.Popen(
            args, cwd=cwd, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited early; see {log}")
            try:
                if httpx.get(self.url + health, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise SystemExit(f"server did not come up; see {log}")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def _client(
    mlflow_python: str, url: str, out: Path, runs: int, phase: str = "all"
) -> dict[str, Any]:
    env = _clean_env(MLFLOW_TRACKING_URI=url, MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
    cmd = [mlflow_python, str(CLIENT), "--out", str(out), "--runs", str(runs), "--phase", phase]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False,
                          cwd=out.parent)  # fmt: skip
    if proc.returncode != 0:
        say(proc.stdout[-2000:] + proc.stderr[-4000:])
        raise SystemExit(f"the mlflow client failed against {url}")
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def _mlflow_side(mlflow_python: str, work: Path, runs: int, phase: str) -> dict[str, Any]:
    say(f"mlflow server (defaults, SQLite) with {runs} runs ...")
    work.mkdir()
    server = Server(
        [mlflow_python, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", "{port}"],
        work, "/health", work / "server.log",
    )  # fmt: skip
    try:
        return _client(mlflow_python, server.url, work / "client.json", runs, phase)
    finally:
        server.stop()


def _modelloop_side(
    mlflow_python: str, work: Path, runs: int, phase: str
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    say(f"modelloop server (SQLite) with {runs} runs ...")
    work.mkdir()
    modelloop_cli = str(Path(sys.executable).with_name("modelloop"))
    server = Server(
        [modelloop_cli, "server", "--host", "127.0.0.1", "--port", "{port}",
         "--db", str(work / "store")],
        REPO_ROOT, "/health", work / "server.log",
    )  # fmt: skip
    try:
        result = _client(mlflow_python, server.url, work / "client.json", runs, phase)
        if phase != "all":
            return result, None
        say("HttpBackend: 100,000 metric points ...")
        http = subprocess.run(
            [sys.executable, "-c", HTTP_POINTS_CODE, server.url],
            capture_output=True, text=True, check=True, cwd=REPO_ROOT,
            env=_clean_env(),
        )  # fmt: skip
        points: dict[str, Any] = json.loads(http.stdout.strip().splitlines()[-1])
        return result, points
    finally:
        server.stop()


#: (label, how to read the number from a client's result, target key)
_ROWS: list[tuple[str, Callable[[dict[str, Any]], float], str]] = [
    ("logging phase (s)", lambda r: float(r["logging_s"]), "logging"),
    ("search_runs (ms)", lambda r: float(r["search"]["median_ms"]), "search"),
    ("get_metric_history (ms)", lambda r: float(r["history"]["median_ms"]), ""),
    ("8 MiB upload (ms)", lambda r: float(r["upload_8mib"]["median_ms"]), ""),
    ("8 MiB download (ms)", lambda r: float(r["download_8mib"]["median_ms"]), "download"),
]


def _ceilings(mlflow: list[dict[str, Any]], modelloop: list[dict[str, Any]]) -> None:
    """The mlflow client's own CPU time against modelloop, per phase: the ratio a
    server that took no time at all would reach."""
    phases = [
        ("logging phase", lambda r: float(r["logging_s"]), lambda r: float(r["client_cpu_s"]), "s"),
        (
            "search_runs",
            lambda r: float(r["search"]["median_ms"]),
            lambda r: float(r["search"]["client_cpu_ms"]),
            "ms",
        ),
    ]
    for label, wall, cpu, unit in phases:
        try:
            theirs = statistics.median(wall(r) for r in mlflow)
            ours = statistics.median(wall(r) for r in modelloop)
            client = statistics.median(cpu(r) for r in modelloop)
        except KeyError:  # a phase that did not run
            continue
        say(
            f"{label}: the mlflow client's own CPU {client:.2f} {unit} of modelloop's "
            f"{ours:.2f} {unit} (the server's share {ours - client:.2f} {unit}); "
            f"a server taking no time would be {theirs / client:.1f}x MLflow"
        )


def _report(mlflow: list[dict[str, Any]], modelloop: list[dict[str, Any]]) -> None:
    many = len(mlflow) > 1
    say(f"\n{'':26}{'MLflow':>12}{'modelloop':>12}{'ratio':>9}{'target':>9}")
    for label, read, target in _ROWS:
        try:
            a = [read(r) for r in mlflow]
            b = [read(r) for r in modelloop]
        except KeyError:  # a phase that stopped before this measurement
            continue
        ma, mb = statistics.median(a), statistics.median(b)
        goal = f"{TARGETS[target]:.0f}x" if target else ""
        say(f"{label:26}{ma:>12.1f}{mb:>12.1f}{ma / mb:>8.1f}x{goal:>9}")
        if many:
            pairs = [x / y for x, y in zip(a, b, strict=True)]
            say(
                f"{'  range':26}{min(a):>5.1f}-{max(a):<6.1f}{min(b):>5.1f}-{max(b):<6.1f}"
                f"  pairs {min(pairs):.1f}x-{max(pairs):.1f}x"
            )
    _ceilings(mlflow, modelloop)
    if "search_hits" in mlflow[0]:
        hits = f"search hits: MLflow {mlflow[0]['search_hits']}, modelloop "
        hits += str(modelloop[0]["search_hits"])
        if "history_points" in mlflow[0]:
            hits += f"; history points: {mlflow[0]['history_points']} / "
            hits += str(modelloop[0]["history_points"])
        say(hits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--phase", choices=("all", "logging", "search"), default="all")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each side, alternating")
    args = parser.parse_args()
    runs = 40 if args.quick else 200
    mlflow_python = str(ensure_mlflow_venv())
    mlflow: list[dict[str, Any]] = []
    modelloop: list[dict[str, Any]] = []
    points: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="modelloop-bench-server-") as tmp:
        work = Path(tmp)
        for i in range(max(1, args.repeat)):
            mlflow.append(_mlflow_side(mlflow_python, work / f"mlflow-{i}", runs, args.phase))
            result, sent = _modelloop_side(mlflow_python, work / f"modelloop-{i}", runs, args.phase)
            modelloop.append(result)
            if sent is not None:
                points.append(sent)
    _report(mlflow, modelloop)
    for sent in points:
        say(
            f"HttpBackend: 100,000 points committed in {sent['seconds']:.2f} s "
            f"({100_000 / sent['seconds']:,.0f} points/s; {sent['stored']:,} stored; "
            "target < 2 s)"
        )
    os.environ.pop("MLFLOW_TRACKING_URI", None)


if __name__ == "__main__":
    main()
