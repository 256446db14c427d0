"""Server benchmark: ``mlflow server`` against ``modelloop server``, both on SQLite, driven
by the same stock ``mlflow`` client with the same workload.

    python benchmarks/mlflow_server.py           # 200 runs (the issue's workload)
    python benchmarks/mlflow_server.py --quick   # 40 runs

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
import subprocess
import sys
import tempfile
import time
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


def _client(mlflow_python: str, url: str, out: Path, runs: int) -> dict[str, Any]:
    env = _clean_env(MLFLOW_TRACKING_URI=url, MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
    cmd = [mlflow_python, str(CLIENT), "--out", str(out), "--runs", str(runs)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False,
                          cwd=out.parent)  # fmt: skip
    if proc.returncode != 0:
        say(proc.stdout[-2000:] + proc.stderr[-4000:])
        raise SystemExit(f"the mlflow client failed against {url}")
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    runs = 40 if args.quick else 200
    mlflow_python = str(ensure_mlflow_venv())
    modelloop_cli = str(Path(sys.executable).with_name("modelloop"))

    with tempfile.TemporaryDirectory(prefix="modelloop-bench-server-") as tmp:
        work = Path(tmp)
        (work / "mlflow").mkdir()
        (work / "modelloop").mkdir()
        results: dict[str, dict[str, Any]] = {}
        say(f"mlflow server (defaults, SQLite) with {runs} runs ...")
        server = Server(
            [mlflow_python, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", "{port}"],
            work / "mlflow", "/health", work / "mlflow.log",
        )  # fmt: skip
        try:
            results["mlflow"] = _client(mlflow_python, server.url, work / "mlflow.json", runs)
        finally:
            server.stop()
        say(f"modelloop server (SQLite) with {runs} runs ...")
        server = Server(
            [modelloop_cli, "server", "--host", "127.0.0.1", "--port", "{port}",
             "--db", str(work / "modelloop" / "store")],
            REPO_ROOT, "/health", work / "modelloop.log",
        )  # fmt: skip
        try:
            results["modelloop"] = _client(mlflow_python, server.url, work / "ml.json", runs)
            say("HttpBackend: 100,000 metric points ...")
            http = subprocess.run(
                [sys.executable, "-c", HTTP_POINTS_CODE, server.url],
                capture_output=True, text=True, check=True, cwd=REPO_ROOT,
                env=_clean_env(),
            )  # fmt: skip
            points = json.loads(http.stdout.strip().splitlines()[-1])
        finally:
            server.stop()

    mf, ml = results["mlflow"], results["modelloop"]
    rows = [
        ("logging phase (s)", mf["logging_s"], ml["logging_s"], "logging"),
        ("search_runs (ms)", mf["search"]["median_ms"], ml["search"]["median_ms"], "search"),
        ("get_metric_history (ms)", mf["history"]["median_ms"], ml["history"]["median_ms"], ""),
        ("8 MiB upload (ms)", mf["upload_8mib"]["median_ms"], ml["upload_8mib"]["median_ms"], ""),
        (
            "8 MiB download (ms)",
            mf["download_8mib"]["median_ms"],
            ml["download_8mib"]["median_ms"],
            "download",
        ),
    ]
    say(f"\n{'':26}{'MLflow':>12}{'modelloop':>12}{'ratio':>9}{'target':>9}")
    for label, a, b, target in rows:
        goal = f"{TARGETS[target]:.0f}x" if target else ""
        say(f"{label:26}{a:>12.1f}{b:>12.1f}{a / b:>8.1f}x{goal:>9}")
    say(
        f"search hits: MLflow {mf['search_hits']}, modelloop {ml['search_hits']}; history "
        f"points: {mf['history_points']} / {ml['history_points']}"
    )
    say(
        f"HttpBackend: 100,000 points committed in {points['seconds']:.2f} s "
        f"({100_000 / points['seconds']:,.0f} points/s; {points['stored']:,} stored; target < 2 s)"
    )
    os.environ.pop("MLFLOW_TRACKING_URI", None)


if __name__ == "__main__":
    main()
