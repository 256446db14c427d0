"""Registry benchmark: modelloop against MLflow's model registry, side by side.

    python benchmarks/registry.py            # 10,000 versions, 7 cold loads a side
    python benchmarks/registry.py --quick    # 1,000 versions, 3 cold loads a side

1. Scaling: register versions of one model up to each checkpoint (100, 1,000,
   10,000), and at each time alias resolution (``models:/NAME@champion``), lookup
   of a random version and "latest version" (median of 300 calls). These must not
   grow with the number of versions. MLflow's registry (its default store, sqlite
   ``mlflow.db``) gets the same treatment up to ``--mlflow-versions``.
2. Cold load: each tool logs and registers the same RandomForest (100 trees, the
   breast-cancer data), then fresh processes time importing the tool and loading
   the model by its ``models:/`` URI: ``modelloop.load_model`` (skops, no pickle)
   against ``mlflow.pyfunc.load_model`` (MLflow 3's default, also skops for sklearn).

MLflow runs from ``benchmarks/.venv-mlflow`` (created on first use, as for
``tracking.py``), in an empty working directory with no MLFLOW_* variables.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from tracking import REPO_ROOT, _clean_env, ensure_mlflow_venv, say

SIDE = Path(__file__).resolve().parent / "_registry_side.py"


def _side(python: str, mode: str, cwd: Path, out: Path, *args: str) -> dict[str, Any]:
    env = _clean_env(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
    cmd = [python, str(SIDE), mode, "--out", str(out), *args]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not out.exists():
        say(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"{mode} failed (exit {proc.returncode})")
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def _table(name: str, result: dict[str, Any], keys: list[str]) -> None:
    say(f"\n{name}: register {result['register_per_s']:,.0f} versions/s")
    say(f"  {'versions':>9}  " + "  ".join(f"{k + ' median µs':>18}" for k in keys))
    for cp in result["checkpoints"]:
        cells = "  ".join(f"{cp[k]['median_us']:>18,.0f}" for k in keys)
        say(f"  {cp['versions']:>9,}  {cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--versions", default=None, help="checkpoints, e.g. 100,1000,10000")
    parser.add_argument("--mlflow-versions", default=None, help="MLflow's checkpoints")
    parser.add_argument("--loads", type=int, default=None, help="cold loads per side")
    args = parser.parse_args()
    versions = args.versions or ("100,1000" if args.quick else "100,1000,10000")
    mlflow_versions = args.mlflow_versions or ("100,1000" if args.quick else "100,1000,10000")
    loads = args.loads or (3 if args.quick else 7)
    mlflow_python = str(ensure_mlflow_venv())
    ours = sys.executable

    with tempfile.TemporaryDirectory(prefix="modelloop-bench-registry-") as tmp:
        work = Path(tmp)
        ml_dir, mf_dir = work / "modelloop", work / "mlflow"
        ml_dir.mkdir()
        mf_dir.mkdir()

        say(f"registering up to {versions} versions with modelloop ...")
        ml_reg = _side(
            ours,
            "modelloop-registry",
            REPO_ROOT,
            work / "ml-reg.json",
            "--store",
            str(ml_dir / "registry"),
            "--versions",
            versions,
        )
        say(f"registering up to {mlflow_versions} versions with MLflow ...")
        mf_reg = _side(
            mlflow_python,
            "mlflow-registry",
            mf_dir,
            work / "mf-reg.json",
            "--versions",
            mlflow_versions,
        )
        _table("modelloop", ml_reg, ["alias", "version", "uri", "latest"])
        _table(f"MLflow ({mf_reg['tracking_uri']})", mf_reg, ["alias", "version", "latest"])
        first, last = ml_reg["checkpoints"][0], ml_reg["checkpoints"][-1]
        growth = last["alias"]["median_us"] / first["alias"]["median_us"]
        say(
            f"\nmodelloop alias resolution at {last['versions']:,} vs {first['versions']:,} "
            f"versions: {growth:.2f}x"
        )
        common = {cp["versions"] for cp in mf_reg["checkpoints"]} & {
            cp["versions"] for cp in ml_reg["checkpoints"]
        }
        for n in sorted(common):
            a = next(cp for cp in ml_reg["checkpoints"] if cp["versions"] == n)
            b = next(cp for cp in mf_reg["checkpoints"] if cp["versions"] == n)
            alias = b["alias"]["median_us"] / a["alias"]["median_us"]
            lookup = b["version"]["median_us"] / a["version"]["median_us"]
            say(
                f"  at {n:,} versions: alias {alias:.1f}x, version lookup {lookup:.1f}x "
                "faster than MLflow"
            )

        say("\nlogging the same RandomForest with both tools ...")
        store = str(ml_dir / "models")
        ml_saved = _side(ours, "modelloop-save", REPO_ROOT, work / "ml-save.json", "--store", store)
        mf_saved = _side(mlflow_python, "mlflow-save", mf_dir, work / "mf-save.json")
        ml_loads, ml_torch_loads, mf_loads = [], [], []
        for i in range(loads):
            ml_loads.append(
                _side(
                    ours,
                    "modelloop-load",
                    REPO_ROOT,
                    work / f"ml-l{i}.json",
                    "--store",
                    store,
                    "--uri",
                    ml_saved["uri"],
                    "--hide-torch",
                )
            )
            ml_torch_loads.append(
                _side(
                    ours,
                    "modelloop-load",
                    REPO_ROOT,
                    work / f"mlt-l{i}.json",
                    "--store",
                    store,
                    "--uri",
                    ml_saved["uri"],
                )
            )
            mf_loads.append(
                _side(
                    mlflow_python,
                    "mlflow-load",
                    mf_dir,
                    work / f"mf-l{i}.json",
                    "--uri",
                    mf_saved["uri"],
                )
            )
        same = ml_loads[0]["prediction"] == mf_loads[0]["prediction"]

        def med(rows: list[dict[str, Any]], key: str) -> float:
            return statistics.median(r[key] for r in rows)

        say(
            f"\ncold load of {ml_saved['uri']} ({ml_saved['size'] / 1e6:.1f} MB), median of "
            f"{loads} fresh processes each:"
        )
        say(f"  {'':12}{'import s':>10}{'load s':>10}{'total s':>10}")
        for label, rows in (
            ("modelloop", ml_loads),
            ("MLflow", mf_loads),
            ("modelloop*", ml_torch_loads),
        ):
            total = med(rows, "import_s") + med(rows, "load_s")
            say(
                f"  {label:12}{med(rows, 'import_s'):>10.3f}{med(rows, 'load_s'):>10.3f}"
                f"{total:>10.3f}"
            )
        ratio_load = med(mf_loads, "load_s") / med(ml_loads, "load_s")
        ratio_total = (med(mf_loads, "import_s") + med(mf_loads, "load_s")) / (
            med(ml_loads, "import_s") + med(ml_loads, "load_s")
        )
        say(f"  load_model: modelloop {ratio_load:.2f}x MLflow; import+load {ratio_total:.2f}x")
        say(f"  predictions on 50 rows identical across the two tools: {same}")
        say(
            "  (* with torch importable, as in the project's dev venv: scikit-learn imports it "
            "when skops lists its estimators; the MLflow venv has no torch, so the first two "
            "rows compare like with like)"
        )


if __name__ == "__main__":
    main()
