"""Drift benchmark: a full data-drift report with modelloop and with Evidently.

    .venv/bin/python benchmarks/drift.py              # 100k x 50 (both), 1M x 100 (modelloop)
    .venv/bin/python benchmarks/drift.py --quick      # 5,000 x 10, both tools (smoke run)
    .venv/bin/python benchmarks/drift.py --rows 200000 --cols 20
    .venv/bin/python benchmarks/drift.py --evidently-large   # Evidently at 1M x 100 too (~1000 s)

Synthetic data (numpy, seeded): 80% numeric columns (normal, log-normal, integer codes
with 3-5 values, some with 1% missing values), 20% categorical (5 to 20 string levels).
In the current set a third of the numeric columns shift by 0.25 to 0.5 std and a third
of the categorical columns change their level probabilities, so both verdicts occur.
Reference and current are written once to Parquet in a temp folder; each tool then
runs in its own fresh process and reads them itself:

* Evidently (0.7, ``benchmarks/.venv-evidently``, created on first use with
  ``python3.11 -m venv`` + ``pip install "evidently>=0.7,<0.8" "pandas<3"``) reads both
  files with pandas and runs ``Report([DataDriftPreset()])`` with a ``DataDefinition``
  giving the column types.
* modelloop fits a ``ReferenceProfile`` on the reference file and scores the current
  file, both read column by column with pyarrow, with the same column types.

Reported per tool: import time, read + compute time (the ratio uses this), peak RSS of
the process (``ru_maxrss``), and how many per-column verdicts agree with Evidently's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
EVIDENTLY_VENV = BENCH_DIR / ".venv-evidently"
EVIDENTLY_SIDE = BENCH_DIR / "_evidently_side.py"
EVIDENTLY_REQUIREMENTS = ["evidently>=0.7,<0.8", "pandas<3", "pyarrow"]
SEED = 20240611


def say(text: str) -> None:
    print(text, flush=True)


def _peak_mib() -> float:
    """This process's peak RSS in MiB.

    Linux's VmHWM, which starts afresh at exec; ``ru_maxrss`` would also count the
    parent's pages at fork time (the driver holds the generated data then).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


# -- data -----------------------------------------------------------------------------


def column_plan(cols: int) -> tuple[list[str], list[str]]:
    """Names of the numeric and categorical columns (80% / 20%, at least one each)."""
    n_cat = max(1, cols // 5) if cols > 1 else 0
    n_num = cols - n_cat
    return [f"num_{i:03d}" for i in range(n_num)], [f"cat_{i:03d}" for i in range(n_cat)]


def write_data(folder: Path, rows: int, cols: int) -> tuple[Path, Path, Path]:
    """Reference and current Parquet files plus the column types, deterministically."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    numeric, categorical = column_plan(cols)
    frames: dict[str, dict[str, Any]] = {"reference": {}, "current": {}}
    for i, name in enumerate(numeric):
        rng = np.random.default_rng([SEED, i])
        shifted = i % 3 == 0
        shift = (0.25 + 0.25 * (i % 2)) if shifted else 0.0
        for side in ("reference", "current"):
            delta = shift if side == "current" else 0.0
            if i % 7 == 6:  # integer codes with few values: Evidently's jensenshannon path
                levels = 3 + i % 3
                probs = np.linspace(1, 2, levels)
                if side == "current" and shifted:
                    probs = probs[::-1]
                values = rng.choice(levels, rows, p=probs / probs.sum()).astype(np.float64)
            elif i % 5 == 4:
                values = rng.lognormal(0.0 + delta, 0.5, rows)
            else:
                scale = 1.0 + i % 4
                values = rng.normal(10.0 * i + delta * scale, scale, rows)
            if i % 4 == 1:  # some missing values
                values[rng.random(rows) < 0.01] = np.nan
            frames[side][name] = values
    for j, name in enumerate(categorical):
        rng = np.random.default_rng([SEED, 10_000 + j])
        levels = np.array([f"level_{k:02d}" for k in range(5 + (j * 7) % 16)])
        base = rng.dirichlet(np.full(levels.size, 5.0))
        for side in ("reference", "current"):
            probs = base
            if side == "current" and j % 3 == 0:
                probs = 0.5 * base + 0.5 * base[::-1]
            frames[side][name] = rng.choice(levels, rows, p=probs / probs.sum())
    paths = []
    for side in ("reference", "current"):
        table = pa.table({name: frames[side][name] for name in numeric + categorical})
        path = folder / f"{side}.parquet"
        pq.write_table(table, path)
        paths.append(path)
        del table
    types = folder / "types.json"
    types.write_text(json.dumps({"numeric": numeric, "categorical": categorical}))
    return paths[0], paths[1], types


# -- modelloop's side (runs in a child process: python drift.py --side modelloop) ------------


def modelloop_side(reference: str, current: str, types_path: str, out: str, profile: bool) -> None:
    start = time.perf_counter()
    from modelloop.monitoring.profile import ReferenceProfile

    imported = time.perf_counter()
    types = json.loads(Path(types_path).read_text())
    column_types = {name: "numeric" for name in types["numeric"]}
    column_types.update({name: "categorical" for name in types["categorical"]})

    def run() -> tuple[Any, float]:
        t0 = time.perf_counter()
        fitted = ReferenceProfile.fit_parquet(reference, column_types=column_types)
        t1 = time.perf_counter()
        return fitted.drift_parquet(current), t1 - t0

    if profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        report, fit_s = profiler.runcall(run)
        stats = pstats.Stats(profiler, stream=sys.stderr)
        stats.sort_stats("tottime").print_stats(15)
    else:
        report, fit_s = run()
    done = time.perf_counter()
    import modelloop

    result = {
        "tool": f"modelloop {getattr(modelloop, '__version__', '')}".strip(),
        "import_s": imported - start,
        "fit_s": fit_s,
        "seconds": done - imported,
        "peak_mib": _peak_mib(),
        "columns": {
            name: {
                "stattest": col.stattest,
                "value": col.value,
                "threshold": col.threshold,
                "drifted": col.drifted,
            }
            for name, col in report.columns.items()
        },
    }
    Path(out).write_text(json.dumps(result))


# -- the Evidently venv ---------------------------------------------------------------


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _has_evidently(python: Path) -> bool:
    if not python.exists():
        return False
    probe = [str(python), "-c", "import evidently, pyarrow"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


def ensure_evidently_venv() -> Path:
    """The Evidently venv's interpreter, creating it and installing Evidently if needed."""
    python = _venv_python(EVIDENTLY_VENV)
    if _has_evidently(python):
        return python
    if not python.exists():
        base = shutil.which("python3.11") or (
            sys.executable if sys.version_info[:2] == (3, 11) else None
        )
        if base is None:
            raise SystemExit("python3.11 not found: it is needed to create the Evidently venv")
        say(f"Creating {EVIDENTLY_VENV.relative_to(REPO_ROOT)} (python3.11 -m venv) ...")
        subprocess.run([base, "-m", "venv", str(EVIDENTLY_VENV)], check=True)
    say("Installing Evidently 0.7 from PyPI into it (first use only) ...")
    pip = [str(python), "-m", "pip", "install", "--quiet", *EVIDENTLY_REQUIREMENTS]
    subprocess.run(pip, check=True)
    if not _has_evidently(python):
        raise SystemExit(f"evidently does not import in {python} after installing it")
    return python


# -- driver ---------------------------------------------------------------------------


def _run_side(cmd: list[str], out: Path, label: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELLOOP_")}
    env["DO_NOT_TRACK"] = "true"  # Evidently's usage telemetry off
    wall = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - wall
    if proc.returncode != 0 or not out.exists():
        say(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"{label} failed (exit {proc.returncode})")
    if proc.stderr.strip() and "--profile" in cmd:
        say(proc.stderr)
    result: dict[str, Any] = json.loads(out.read_text())
    result["process_s"] = wall
    return result


def _agreement(ours: dict[str, Any], theirs: dict[str, Any]) -> tuple[int, list[str]]:
    agree, differ = 0, []
    for name, col in ours["columns"].items():
        other = theirs["columns"].get(name)
        if other is None:
            differ.append(f"{name}: not in Evidently's report")
        elif bool(col["drifted"]) == bool(other["drifted"]):
            agree += 1
        else:
            differ.append(
                f"{name}: modelloop {col['stattest']}={col['value']} drifted={col['drifted']}"
                f" | Evidently {other['stattest']}={other['value']} drifted={other['drifted']}"
            )
    return agree, differ


def _value_gap(ours: dict[str, Any], theirs: dict[str, Any]) -> tuple[float, int]:
    """Largest relative gap between the two tools' values, and tests that differ."""
    gap, other_test = 0.0, 0
    for name, col in ours["columns"].items():
        other = theirs["columns"].get(name)
        if other is None or col["value"] is None:
            continue
        if other["stattest"] != col["stattest"]:
            other_test += 1
            continue
        scale = max(abs(other["value"]), 1e-300)
        gap = max(gap, abs(col["value"] - other["value"]) / scale)
    return gap, other_test


def bench_size(
    rows: int, cols: int, *, evidently: bool, profile: bool, keep: bool
) -> list[dict[str, Any]]:
    folder = Path(tempfile.mkdtemp(prefix=f"drift-{rows}x{cols}-"))
    try:
        say(f"\n== {rows:,} rows x {cols} columns: writing Parquet to {folder} ...")
        t0 = time.perf_counter()
        reference, current, types = write_data(folder, rows, cols)
        sizes = sum(p.stat().st_size for p in (reference, current)) / 2**20
        say(f"   data written in {time.perf_counter() - t0:.1f} s ({sizes:.0f} MiB on disk)")
        files = ["--reference", str(reference), "--current", str(current), "--types", str(types)]
        rows_out: list[dict[str, Any]] = []
        out = folder / "modelloop.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--side", "modelloop", *files]
        say("   modelloop ...")
        ours = _run_side([*cmd, "--out", str(out)], out, "modelloop")
        rows_out.append({"rows": rows, "cols": cols, **ours})
        if profile:  # a separate, untimed run: cProfile slows it and its RSS is not comparable
            say("   modelloop under cProfile (untimed) ...")
            out = folder / "modelloop-profile.json"
            _run_side([*cmd, "--out", str(out), "--profile"], out, "modelloop --profile")
        if evidently:
            python = ensure_evidently_venv()
            out = folder / "evidently.json"
            say("   Evidently ...")
            cmd = [str(python), str(EVIDENTLY_SIDE), *files, "--out", str(out)]
            theirs = _run_side(cmd, out, "Evidently")
            agree, differ = _agreement(ours, theirs)
            gap, other_test = _value_gap(ours, theirs)
            rows_out[0].update(
                agree=agree, differ=differ, ratio=theirs["seconds"] / ours["seconds"]
            )
            rows_out[0].update(value_gap=gap, other_test=other_test)
            rows_out.append({"rows": rows, "cols": cols, **theirs})
        return rows_out
    finally:
        if keep:
            say(f"   kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def print_table(results: list[dict[str, Any]]) -> None:
    say(
        f"\n{'rows x cols':>15}  {'tool':<18} {'import s':>8} {'read+compute s':>14}"
        f" {'peak MiB':>9} {'speed-up':>9}  verdicts agree"
    )
    for r in results:
        size = f"{r['rows']:,} x {r['cols']}"
        ratio = f"{r['ratio']:.1f}x" if "ratio" in r else ""
        agree = f"{r['agree']}/{len(r['columns'])}" if "agree" in r else ""
        say(
            f"{size:>15}  {r['tool']:<18} {r['import_s']:>8.2f} {r['seconds']:>14.2f}"
            f" {r['peak_mib']:>9.0f} {ratio:>9}  {agree}"
        )
    for r in results:
        if r.get("differ"):
            say(f"\nDisagreements at {r['rows']:,} x {r['cols']}:")
            for line in r["differ"]:
                say(f"  {line}")
        if "value_gap" in r:
            say(
                f"\n{r['rows']:,} x {r['cols']}: largest relative value gap (same test) "
                f"{r['value_gap']:.2e}; columns with a different test: {r['other_test']}"
            )
        if "fit_s" in r:
            say(
                f"{r['rows']:,} x {r['cols']}: modelloop fit {r['fit_s']:.2f} s, "
                f"drift {r['seconds'] - r['fit_s']:.2f} s"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, help="rows per data set (one size only)")
    parser.add_argument("--cols", type=int, help="columns (one size only)")
    parser.add_argument("--quick", action="store_true", help="5,000 x 10 smoke run")
    parser.add_argument("--no-evidently", action="store_true", help="modelloop only")
    parser.add_argument(
        "--evidently-large", action="store_true", help="also run Evidently at 1M x 100"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile modelloop's run")
    parser.add_argument("--keep", action="store_true", help="keep the Parquet files")
    parser.add_argument("--json", help="also write the results to this file")
    # internal: one side's process
    parser.add_argument("--side", choices=["modelloop"], help=argparse.SUPPRESS)
    parser.add_argument("--reference", help=argparse.SUPPRESS)
    parser.add_argument("--current", help=argparse.SUPPRESS)
    parser.add_argument("--types", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side == "modelloop":
        modelloop_side(args.reference, args.current, args.types, args.out, args.profile)
        return

    if args.quick:
        sizes = [(5_000, 10, True)]
    elif args.rows or args.cols:
        sizes = [(args.rows or 100_000, args.cols or 50, True)]
    else:
        sizes = [(100_000, 50, True), (1_000_000, 100, args.evidently_large)]
    results: list[dict[str, Any]] = []
    for rows, cols, with_evidently in sizes:
        results += bench_size(
            rows,
            cols,
            evidently=with_evidently and not args.no_evidently,
            profile=args.profile,
            keep=args.keep,
        )
    print_table(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
