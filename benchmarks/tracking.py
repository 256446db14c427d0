"""Tracking benchmark: modelloop against MLflow's default local store, side by side.

    python benchmarks/tracking.py            # the full benchmark (make bench)
    python benchmarks/tracking.py --quick    # a smoke run of a minute or two

Workloads (each in a fresh process, on a fresh store in a fresh temp folder):

* logging: runs of 10 params and ``--steps`` metric points, logged with each tool's
  fluent idiom (``start_run`` / ``log_params`` / ``log_metric(step=)`` per point).
  modelloop logs the full ``--runs``; MLflow's synchronous ``log_metric`` is far slower,
  so it runs ``--mlflow-runs`` runs and its throughput is extrapolated. MLflow's
  ``MlflowClient.log_batch`` (1000 points a call) is measured as a second variant.
* search: ``--search-runs`` runs (metrics acc and loss, 10 params, 2 tags) are stored
  with each tool's ``log_batch``, then ``search_runs`` with a metric filter, a param
  filter and an order is timed ``--repeats`` times after one warm-up call.

MLflow is installed from PyPI into ``benchmarks/.venv-mlflow`` on first use (never into
the project's venv) and runs in an empty working directory with no MLFLOW_* variables,
so it picks its default store; the report names the store it used. Both tools keep
their default git and environment capture: the MLflow side records the git state of
its script's checkout, the modelloop side runs from the repository root so it records
the same checkout.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import _workload as w

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
MLFLOW_VENV = BENCH_DIR / ".venv-mlflow"
MLFLOW_SIDE = BENCH_DIR / "_mlflow_side.py"
MODELLOOP_SIDE = BENCH_DIR / "_modelloop_side.py"

LOG_TARGET_RATIO = 50.0
SEARCH_TARGET_MS = 50.0

FULL = {
    "runs": 1000,
    "steps": 1000,
    "mlflow_runs": 10,
    "mlflow_batch_runs": 100,
    "search_runs": 10_000,
    "repeats": 20,
}
QUICK = {
    "runs": 50,
    "steps": 1000,
    "mlflow_runs": 3,
    "mlflow_batch_runs": 10,
    "search_runs": 1000,
    "repeats": 20,
}


def say(text: str) -> None:
    print(text, flush=True)


# the MLflow virtualenv --------------------------------------------------------


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _has_mlflow(python: Path) -> bool:
    if not python.exists():
        return False
    probe = subprocess.run(
        [str(python), "-c", "import mlflow"], capture_output=True, check=False, cwd=BENCH_DIR
    )
    return probe.returncode == 0


def _base_python() -> str:
    """A Python 3.11 to build the MLflow venv with (the project's own version)."""
    found = shutil.which("python3.11")
    if found:
        return found
    if sys.version_info[:2] == (3, 11):
        return sys.executable
    raise SystemExit("python3.11 not found: it is needed to create benchmarks/.venv-mlflow")


def ensure_mlflow_venv() -> Path:
    """The MLflow venv's interpreter, creating the venv and installing MLflow if needed."""
    python = _venv_python(MLFLOW_VENV)
    if _has_mlflow(python):
        return python
    if not python.exists():
        say(f"Creating {MLFLOW_VENV.relative_to(REPO_ROOT)} (python3.11 -m venv) ...")
        subprocess.run([_base_python(), "-m", "venv", str(MLFLOW_VENV)], check=True)
    say("Installing mlflow from PyPI into it (first use only; a few minutes) ...")
    env = _clean_env()
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True, env=env
    )
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "mlflow"], check=True, env=env)
    if not _has_mlflow(python):
        raise SystemExit(f"mlflow does not import in {python} after installing it")
    return python


# running one side -------------------------------------------------------------


def _clean_env(**extra: str) -> dict[str, str]:
    """This environment without MLFLOW_* and MODELLOOP_* settings, plus ``extra``."""
    env = {k: val for k, val in os.environ.items() if not k.startswith(("MLFLOW_", "MODELLOOP_"))}
    env.update(extra)
    return env


class Bench:
    """Runs the sides as subprocesses in folders under one temp work folder."""

    def __init__(self, work: Path, mlflow_python: Path | None) -> None:
        self.work = work
        self.mlflow_python = mlflow_python
        self.count = 0
        # An empty config file: a modelloop.toml in the repository cannot change the setup.
        self.empty_config = work / "empty-modelloop.toml"
        self.empty_config.write_text("", encoding="utf-8")

    def _run(
        self, label: str, cmd: list[str], cwd: Path, env: dict[str, str], out: Path
    ) -> dict[str, Any]:
        log = self.work / f"{out.stem}.log"
        say(f"  {label} ...")
        start = time.perf_counter()
        # Everything the side prints goes to its log; its progress lines are echoed.
        with (
            open(log, "w", encoding="utf-8") as fh,
            subprocess.Popen(
                cmd,
                cwd=cwd,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
            ) as proc,
        ):
            assert proc.stdout is not None
            for line in proc.stdout:
                fh.write(line)
                if line.startswith(w.PROGRESS_PREFIX):
                    say(f"    {line.rstrip()}")
            returncode = proc.wait()
        took = time.perf_counter() - start
        if returncode != 0 or not out.exists():
            tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-30:]
            say("\n".join(f"    | {line}" for line in tail))
            raise SystemExit(f"{label} failed (exit {returncode}); log: {log}")
        say(f"  {label}: done in {took:.1f}s")
        result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
        return result

    def _next(self, name: str) -> tuple[Path, Path]:
        self.count += 1
        folder = self.work / f"{self.count:02d}-{name}"
        folder.mkdir()
        return folder, self.work / f"{self.count:02d}-{name}.json"

    def modelloop(self, label: str, mode: str, args: Sequence[str]) -> dict[str, Any]:
        folder, out = self._next(f"modelloop-{mode}")
        cmd = [sys.executable, str(MODELLOOP_SIDE), mode, "--store", str(folder / "store")]
        cmd += ["--out", str(out), *args]
        env = _clean_env(MODELLOOP_CONFIG=str(self.empty_config))
        return self._run(label, cmd, REPO_ROOT, env, out)

    def mlflow(self, label: str, mode: str, args: Sequence[str]) -> dict[str, Any]:
        assert self.mlflow_python is not None
        folder, out = self._next(f"mlflow-{mode}")
        cmd = [str(self.mlflow_python), str(MLFLOW_SIDE), mode, "--out", str(out), *args]
        # No MLFLOW_TRACKING_URI and an empty cwd: MLflow's default store. Telemetry is
        # off (it would only try to reach the network in the background).
        env = _clean_env(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
        return self._run(label, cmd, folder, env, out)


# reporting --------------------------------------------------------------------


def _num(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def _ratio(value: float) -> str:
    return f"{value:,.0f}x" if value >= 100 else f"{value:,.1f}x"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * wd for wd in widths))
    return "\n".join(lines)


def _print_profile(path: Path, runs: int, steps: int) -> None:
    say(f"\nmodelloop logging profile ({runs} runs x {steps} steps, under cProfile):")
    stats = pstats.Stats(str(path))
    stats.sort_stats("cumulative").print_stats(25)
    stats.sort_stats("tottime").print_stats(15)
    sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Benchmark modelloop tracking against MLflow's default local store.",
    )
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument("--runs", type=int, help="modelloop logging runs (1000)")
    parser.add_argument("--steps", type=int, help="metric steps per run (1000)")
    parser.add_argument("--mlflow-runs", type=int, help="MLflow log_metric runs (10)")
    parser.add_argument("--mlflow-batch-runs", type=int, help="MLflow log_batch runs (100)")
    parser.add_argument("--search-runs", type=int, help="runs in each search store (10000)")
    parser.add_argument("--repeats", type=int, help="timed search_runs calls (20)")
    parser.add_argument("--only", choices=["log", "search"], help="run one workload")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also profile modelloop's logging loop (an extra, untimed pass) and print hot spots",
    )
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    parser.add_argument("--keep", action="store_true", help="keep the temp stores and logs")
    parser.add_argument(
        "--fail-on-miss", action="store_true", help="exit 1 when a target is not met"
    )
    args = parser.parse_args(argv)
    sizes = dict(QUICK if args.quick else FULL)
    for key in sizes:
        if getattr(args, key) is not None:
            sizes[key] = getattr(args, key)
    runs, steps = sizes["runs"], sizes["steps"]
    do_log = args.only in (None, "log")
    do_search = args.only in (None, "search")

    mlflow_python = ensure_mlflow_venv()
    work = Path(tempfile.mkdtemp(prefix="modelloop-bench-"))
    bench = Bench(work, mlflow_python)
    results: dict[str, Any] = {"sizes": sizes}
    say(f"Work folder: {work}  (2 sides, each mode in a fresh process and store)")
    started = time.perf_counter()
    try:
        if do_log:
            say(f"\nLogging: {steps} steps + 10 params per run")
            size = ["--steps", str(steps)]
            results["modelloop_log"] = bench.modelloop(
                f"modelloop  fluent log_metric, {runs} runs", "log", ["--runs", str(runs), *size]
            )
            n = sizes["mlflow_runs"]
            results["mlflow_log"] = bench.mlflow(
                f"MLflow     fluent log_metric, {n} runs", "log", ["--runs", str(n), *size]
            )
            n = sizes["mlflow_batch_runs"]
            results["mlflow_log_batch"] = bench.mlflow(
                f"MLflow     log_batch, {n} runs", "log-batch", ["--runs", str(n), *size]
            )
        if do_search:
            n = sizes["search_runs"]
            say(f"\nSearch: {n} runs per store, {sizes['repeats']} timed calls after a warm-up")
            search_args = ["--search-runs", str(n), "--repeats", str(sizes["repeats"])]
            results["modelloop_search"] = bench.modelloop(
                "modelloop  populate + search_runs", "search", search_args
            )
            results["mlflow_search"] = bench.mlflow(
                "MLflow     populate + search_runs", "search", search_args
            )
        profile_path: Path | None = None
        profile_runs = min(runs, 100)
        if args.profile and do_log:
            say("\nProfiling modelloop's logging loop (extra pass, not part of the figures)")
            profile_path = work / "modelloop-log.prof"
            bench.modelloop(
                f"modelloop  profiled (cProfile on), {profile_runs} runs",
                "log",
                [
                    "--runs",
                    str(profile_runs),
                    "--steps",
                    str(steps),
                    "--profile",
                    str(profile_path),
                ],
            )
        total = time.perf_counter() - started
        results["total_s"] = total
        ok = report(results, sizes, total)
        if profile_path is not None:
            _print_profile(profile_path, profile_runs, steps)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
            say(f"\nFigures written to {args.json}")
    finally:
        if args.keep:
            say(f"\nStores and logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if ok or not args.fail_on_miss else 1


def report(results: dict[str, Any], sizes: dict[str, int], total: float) -> bool:
    """Print the details and the summary table; True when every target is met."""
    say("\n" + "=" * 78)
    any_side = next(iter(r for k, r in results.items() if k.startswith("mlflow")), None)
    ml_side = next(iter(r for k, r in results.items() if k.startswith("modelloop")), None)
    say(f"Machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, {sys.platform}")
    if ml_side:
        say(f"modelloop {ml_side['version']}: {ml_side['store']}")
    if any_side:
        say(
            f"MLflow {any_side['version']}: default store = {any_side['store_kind']}"
            f" ({any_side['tracking_uri']})"
        )
    rows = [["workload", "modelloop", "MLflow", "ratio", "target", "met?"]]
    met: list[bool] = []
    notes: list[str] = []

    ml = results.get("modelloop_log")
    mf = results.get("mlflow_log")
    mb = results.get("mlflow_log_batch")
    if ml and mf and mb:
        for side in (ml, mf, mb):
            say(
                f"  {side['tool']:<9} {side['api']}: {side['runs']} runs x {side['steps']}"
                f" = {side['points']:,} points in {side['elapsed_s']:.2f}s"
                f" -> {_num(side['points_per_s'])} points/s"
                f" (stored {side['stored_points_last_run']} points and"
                f" {side['params_last_run']} params in the last run;"
                f" git captured: {side['git_captured']})"
            )
        points = ml["points"]
        label = f"log {ml['runs']:,} runs x {ml['steps']:,} steps + 10 params"
        ratio = ml["points_per_s"] / mf["points_per_s"]
        ok = ratio >= LOG_TARGET_RATIO
        met.append(ok)
        rows.append(
            [
                f"{label}, points/s (MLflow log_metric)",
                _num(ml["points_per_s"]),
                _num(mf["points_per_s"]) + " *",
                _ratio(ratio),
                f">= {LOG_TARGET_RATIO:.0f}x",
                "yes" if ok else "NO",
            ]
        )
        ratio_b = ml["points_per_s"] / mb["points_per_s"]
        rows.append(
            [
                f"{label}, points/s (MLflow log_batch)",
                _num(ml["points_per_s"]),
                _num(mb["points_per_s"]) + " *",
                _ratio(ratio_b),
                "-",
                "-",
            ]
        )
        rows.append(
            [
                f"{label}, wall time (s)",
                f"{ml['elapsed_s']:,.1f}",
                f"{points / mf['points_per_s']:,.0f} *",
                _ratio(ratio),
                "-",
                "-",
            ]
        )
        notes.append(
            f"* MLflow extrapolated: log_metric measured on {mf['runs']} runs x {mf['steps']}"
            f" steps ({mf['points']:,} points, {mf['elapsed_s']:.1f}s), log_batch on"
            f" {mb['runs']} runs x {mb['steps']} steps ({mb['points']:,} points,"
            f" {mb['elapsed_s']:.1f}s); modelloop ran all {points:,} points."
        )
    ms = results.get("modelloop_search")
    fs = results.get("mlflow_search")
    if ms and fs:
        for side in (ms, fs):
            say(
                f"  {side['tool']:<9} {side['api']}: {side['search_runs']:,} runs stored in"
                f" {side['populate_s']:.1f}s; {len(side['samples_ms'])} searches:"
                f" median {side['median_ms']:.1f} ms, p95 {side['p95_ms']:.1f} ms,"
                f" min {side['min_ms']:.1f} ms, max {side['max_ms']:.1f} ms;"
                f" {side['results']} results, correct order: {side['correct']}"
            )
        label = f"search_runs over {ms['search_runs']:,} runs"
        ratio = fs["median_ms"] / ms["median_ms"]
        ok = ms["median_ms"] < SEARCH_TARGET_MS and ms["correct"]
        met.append(ok)
        rows.append(
            [
                f"{label}, median ms",
                f"{ms['median_ms']:.1f}",
                f"{fs['median_ms']:.1f}",
                _ratio(ratio),
                f"< {SEARCH_TARGET_MS:.0f} ms",
                "yes" if ok else "NO",
            ]
        )
        rows.append(
            [
                f"{label}, p95 ms",
                f"{ms['p95_ms']:.1f}",
                f"{fs['p95_ms']:.1f}",
                _ratio(fs["p95_ms"] / ms["p95_ms"]),
                "-",
                "-",
            ]
        )
        if not (ms["correct"] and fs["correct"]):
            notes.append("! a search returned other runs than expected (see 'correct order').")
    notes.append("ratio = how many times modelloop is faster than MLflow.")
    if any(sizes[k] != FULL[k] for k in ("runs", "steps", "search_runs")):
        notes.append("! sizes differ from the full benchmark: the targets are set for those.")
    say(
        f"search: {w.SEARCH_FILTER!r}, order_by={w.SEARCH_ORDER_BY},"
        f" max_results={w.SEARCH_MAX_RESULTS}\n"
    )
    say(_table(rows))
    for note in notes:
        say(note)
    say(f"Total benchmark time: {total:.0f}s")
    return all(met)


if __name__ == "__main__":
    sys.exit(main())
