"""Serving benchmark: ``mlflow models serve`` against ``modelloop serve``, side by side.

    python benchmarks/serving.py             # 10 s per measurement
    python benchmarks/serving.py --quick     # 3 s per measurement

For a LogisticRegression and a HistGradientBoostingClassifier (breast-cancer data,
30 features), each tool serves the same model from its own format: MLflow's scoring
server (``mlflow models serve --env-manager local``, run from
``benchmarks/.venv-mlflow``) and ``modelloop serve``. A closed-loop load generator
(``_loadgen.py``, its own process, keep-alive connections) posts the same one-row
``dataframe_split`` body to ``/invocations`` at concurrency 1, 8 and 64 and reports
requests/s and p50/p99 latency. modelloop runs with batching on, with prediction
logging on and off (at concurrency 64), and its Open Inference Protocol route is
measured too. In-process ``predict`` of one row is the floor.

Targets from the issue: >= 10x MLflow's throughput at concurrency 64 (batching on);
p50 at concurrency 1 within 1 ms of in-process predict; logging on within 10% of off.

    python benchmarks/serving.py --logging-only [--reps 5] [--seconds 10]

measures only the cost of prediction logging, without MLflow: two ``modelloop serve``
processes (logging on, logging off) stay up side by side, and runs against them are
interleaved, alternating which goes first, ``--reps`` times at concurrency 64 and 8,
so machine noise shows as spread instead of as a bias. After each logging-on run the
benchmark waits ``--settle`` seconds, so that run's last flush lands in its own
account, not in the next run. It reports every pair, the median cost with its range,
the server's CPU time per request (less sensitive to other jobs than throughput), and
checks that the log holds exactly one row per request answered. ``--together`` loads
both servers at the same time instead: on a machine other jobs keep busy, both then see
the same interference, and the throughput ratio shows the relative CPU cost.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mlflow_server import Server
from tracking import REPO_ROOT, _clean_env, ensure_mlflow_venv, say

BENCH = Path(__file__).resolve().parent
LOADGEN = BENCH / "_loadgen.py"
KINDS = ("logreg", "hgb")

TRAIN = """
import sys
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
kind = sys.argv[1]
frame = load_breast_cancer(as_frame=True).frame
X, y = frame.drop(columns="target"), frame["target"]
model = (make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)) if kind == "logreg"
         else HistGradientBoostingClassifier(max_iter=100, random_state=0)).fit(X, y)
"""
MLFLOW_SAVE = (
    TRAIN
    + """
import mlflow.sklearn
tree = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"
trusted = [tree] if kind == "hgb" else None
mlflow.sklearn.save_model(model, sys.argv[2], input_example=X.head(2), skops_trusted_types=trusted)
"""
)
MODELLOOP_SAVE = (
    TRAIN
    + """
import json, statistics, time
from modelloop import Client, Settings
client = Client(settings=Settings(tracking_uri=sys.argv[2], capture_git=False,
                                  capture_environment=False))
run = client.create_run(client.create_experiment(kind))
info = client.log_model(run.run_id, model, "model", input_example=X.head(2),
                        registered_model_name=f"bench-{kind}")
client.end_run(run.run_id)
loaded = client.load_model(f"models:/bench-{kind}/1", trusted=True)
row = X.head(1)
def timed(fn):
    for _ in range(50): fn()
    xs = []
    for _ in range(500):
        t = time.perf_counter(); fn(); xs.append(time.perf_counter() - t)
    return statistics.median(xs) * 1000
print(json.dumps({"floor_ms": timed(lambda: loaded.predict(row)),
                  "raw_ms": timed(lambda: model.predict(row))}))
"""
)


def _body() -> bytes:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame.drop(columns="target").head(1)
    split = {"columns": list(frame.columns), "data": frame.to_numpy().tolist()}
    return json.dumps({"dataframe_split": split}).encode()


def _oip_body() -> bytes:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame.drop(columns="target").head(1)
    inputs = [
        {"name": str(c), "shape": [1], "datatype": "FP64", "data": [float(frame[c].iloc[0])]}
        for c in frame.columns
    ]
    return json.dumps({"inputs": inputs}).encode()


def _load(url: str, body: Path, concurrency: int, seconds: float, out: Path) -> dict[str, Any]:
    cmd = [sys.executable, str(LOADGEN), "--url", url, "--body-file", str(body), "--seconds",
           str(seconds), "--concurrency", str(concurrency), "--out", str(out)]  # fmt: skip
    subprocess.run(cmd, check=True)
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def _row(label: str, r: dict[str, Any]) -> None:
    say(f"  {label:44}{r['rps']:>10,.0f}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}{r['errors']:>8}")


def _save_modelloop(kind: str, store: Path) -> dict[str, float]:
    saved = subprocess.run([sys.executable, "-c", MODELLOOP_SAVE, kind, str(store)],
                           check=True, capture_output=True, text=True, cwd=REPO_ROOT,
                           env=_clean_env())  # fmt: skip
    floor: dict[str, float] = json.loads(saved.stdout.strip().splitlines()[-1])
    return floor


def _modelloop_server(store: Path, kind: str, logging: str, work: Path) -> Server:
    modelloop_cli = str(Path(sys.executable).with_name("modelloop"))
    flag = "--log-predictions" if logging == "on" else "--no-log-predictions"
    return Server(
        [modelloop_cli, "--tracking-uri", str(store), "serve",
         f"models:/bench-{kind}/1", "--host", "127.0.0.1", "--port", "{port}",
         "--trusted", "--max-batch-size", "64", flag],
        REPO_ROOT, "/ping", work / f"modelloop-serve-{kind}-{logging}.log",
    )  # fmt: skip


def _logged_rows(store: Path) -> int:
    """Prediction rows stored under ``store`` (from the Parquet footers)."""
    import pyarrow.parquet as pq

    from modelloop.backends.factory import resolve_stores
    from modelloop.serving.prediction_log import predictions_root

    root = Path(predictions_root(resolve_stores(str(store))[1]).removeprefix("file://"))
    files = list(root.glob("deployment=*/date=*/part-*.parquet"))
    return sum(pq.ParquetFile(p).metadata.num_rows for p in files)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (Linux ``/proc``; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _spread(costs: list[float]) -> str:
    return (
        f"median {statistics.median(costs) * 100:+.1f}% "
        f"(min {min(costs) * 100:+.1f}%, max {max(costs) * 100:+.1f}%, n={len(costs)})"
    )


def _loads_at_once(urls: dict[str, str], body: Path, c: int, seconds: float,
                   work: Path) -> dict[str, dict[str, Any]]:  # fmt: skip
    """One load generator per URL, all running at the same time."""
    procs = {}
    for which, url in urls.items():
        out = work / f"r-{which}.json"
        cmd = [sys.executable, str(LOADGEN), "--url", url, "--body-file", str(body),
               "--seconds", str(seconds), "--concurrency", str(c), "--out", str(out)]  # fmt: skip
        procs[which] = (subprocess.Popen(cmd), out)
    results = {}
    for which, (proc, out) in procs.items():
        if proc.wait() != 0:
            raise SystemExit(f"the load generator failed against {urls[which]}")
        results[which] = json.loads(out.read_text())
    return results


def _pair(
    servers: dict[str, Server], body: Path, c: int, seconds: float, settle: float,
    work: Path, first: str, together: bool,
) -> tuple[dict[str, dict[str, Any]], dict[str, float]]:  # fmt: skip
    """One logging-on and one logging-off measurement: load results and server CPU
    microseconds per answered request, both by "on"/"off"."""
    urls = {w: f"{srv.url}/invocations" for w, srv in servers.items()}
    before = {w: _cpu_seconds(srv.proc.pid) for w, srv in servers.items()}
    used: dict[str, float] = {}
    if together:
        results = _loads_at_once(urls, body, c, seconds, work)
        time.sleep(settle)  # the logging server's last flush is its own cost
        used = {w: _cpu_seconds(srv.proc.pid) - before[w] for w, srv in servers.items()}
    else:
        results = {}
        for which in (first, "off" if first == "on" else "on"):
            results[which] = _load(urls[which], body, c, seconds, work / "r.json")
            if which == "on":
                time.sleep(settle)
            used[which] = _cpu_seconds(servers[which].proc.pid) - before[which]
    cpu = {w: used[w] / max(1, int(results[w]["answered"])) * 1e6 for w in results}
    return results, cpu


def logging_cost(
    kinds: list[str], seconds: float, reps: int, settle: float, together: bool = False
) -> bool:
    """Interleaved (or simultaneous) logging-on/off runs; True when every median cost
    is under 10% and the log holds one row per request answered."""
    ok = True
    with tempfile.TemporaryDirectory(prefix="modelloop-bench-logging-") as tmp:
        work = Path(tmp)
        body = work / "body.json"
        body.write_bytes(_body())
        for kind in kinds:
            store = work / f"store-{kind}"
            say(f"\n{kind}: training and saving ...")
            _save_modelloop(kind, store)
            servers = {w: _modelloop_server(store, kind, w, work) for w in ("on", "off")}
            costs: dict[int, list[float]] = {64: [], 8: []}
            extra_cpu: dict[int, list[float]] = {64: [], 8: []}
            answered = 0
            try:
                for which, server in servers.items():  # first requests pay one-off costs
                    r = _load(f"{server.url}/invocations", body, 8, 2.0, work / "r.json")
                    answered += int(r["answered"]) if which == "on" else 0
                time.sleep(settle)
                how = "at the same time" if together else "one after the other"
                say(f"  logging on and off servers loaded {how}, {seconds:g} s each")
                say(f"  {'rep':>4}{'c':>4}{'on req/s':>12}{'off req/s':>12}{'cost':>9}"
                    f"{'on CPU us/req':>15}{'off CPU us/req':>16}")  # fmt: skip
                for rep in range(reps):
                    for c in costs:
                        first = "on" if rep % 2 == 0 else "off"
                        res, cpu = _pair(servers, body, c, seconds, settle, work, first, together)
                        answered += int(res["on"]["answered"])
                        cost = 1 - res["on"]["rps"] / res["off"]["rps"]
                        costs[c].append(cost)
                        extra_cpu[c].append(cpu["on"] / cpu["off"] - 1)
                        on, off = f"{res['on']['rps']:>12,.0f}", f"{res['off']['rps']:>12,.0f}"
                        say(f"  {rep:>4}{c:>4}{on}{off}{cost * 100:>+8.1f}%"
                            f"{cpu['on']:>15.0f}{cpu['off']:>16.0f}")  # fmt: skip
            finally:
                for server in servers.values():
                    server.stop()  # the logging server flushes on shutdown
            logged = _logged_rows(store)
            for c, values in costs.items():
                say(f"  {kind} c={c}: throughput cost {_spread(values)}; "
                    f"server CPU per request {_spread(extra_cpu[c])}")  # fmt: skip
                ok = ok and statistics.median(values) < 0.10
            complete = "ok" if logged == answered else "MISMATCH"
            say(f"  {kind}: {logged:,} rows logged for {answered:,} requests answered: {complete}")
            ok = ok and logged == answered
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--logging-only", action="store_true",
                        help="only logging on vs off, interleaved (no MLflow)")  # fmt: skip
    parser.add_argument("--reps", type=int, default=5, help="pairs per level (--logging-only)")
    parser.add_argument("--settle", type=float, default=6.0,
                        help="pause after a logging-on run (--logging-only)")  # fmt: skip
    parser.add_argument("--seconds", type=float, default=None, help="seconds per measurement")
    together = "load the on and off servers at the same time (--logging-only)"
    parser.add_argument("--together", action="store_true", help=together)
    args = parser.parse_args()
    seconds = args.seconds or (3.0 if args.quick else 10.0)
    if args.logging_only:
        ok = logging_cost(args.kinds.split(","), seconds, args.reps, args.settle, args.together)
        raise SystemExit(0 if ok else 1)
    mlflow_python = str(ensure_mlflow_venv())
    modelloop_cli = str(Path(sys.executable).with_name("modelloop"))
    with tempfile.TemporaryDirectory(prefix="modelloop-bench-serving-") as tmp:
        work = Path(tmp)
        body, oip = work / "body.json", work / "oip.json"
        body.write_bytes(_body())
        oip.write_bytes(_oip_body())
        store = work / "store"
        for kind in args.kinds.split(","):
            say(f"\n{kind}: training and saving with both tools ...")
            mf_dir = work / f"mlflow-{kind}"
            subprocess.run([mlflow_python, "-c", MLFLOW_SAVE, kind, str(mf_dir)], check=True,
                           env=_clean_env(MLFLOW_DISABLE_TELEMETRY="true"), cwd=work)  # fmt: skip
            saved = subprocess.run([sys.executable, "-c", MODELLOOP_SAVE, kind, str(store)],
                                   check=True, capture_output=True, text=True, cwd=REPO_ROOT,
                                   env=_clean_env())  # fmt: skip
            floor = json.loads(saved.stdout.strip().splitlines()[-1])
            results: dict[str, dict[str, Any]] = {}
            server = Server(
                [mlflow_python, "-m", "mlflow", "models", "serve", "-m", str(mf_dir), "-h",
                 "127.0.0.1", "-p", "{port}", "--env-manager", "local"],
                work, "/ping", work / f"mlflow-serve-{kind}.log",
                bin_dir=str(Path(mlflow_python).parent),
            )  # fmt: skip
            try:
                for c in (1, 8, 64):
                    results[f"mlflow c={c}"] = _load(
                        f"{server.url}/invocations", body, c, seconds, work / "r.json"
                    )
            finally:
                server.stop()
            for logging in ("on", "off"):
                flag = "--log-predictions" if logging == "on" else "--no-log-predictions"
                server = Server(
                    [modelloop_cli, "--tracking-uri", str(store), "serve",
                     f"models:/bench-{kind}/1", "--host", "127.0.0.1", "--port", "{port}",
                     "--trusted", "--max-batch-size", "64", flag],
                    REPO_ROOT, "/ping", work / f"modelloop-serve-{kind}-{logging}.log",
                )  # fmt: skip
                try:
                    levels = (1, 8, 64) if logging == "on" else (64,)
                    for c in levels:
                        results[f"modelloop logging {logging} c={c}"] = _load(
                            f"{server.url}/invocations", body, c, seconds, work / "r.json"
                        )
                    if logging == "on":
                        results["modelloop OIP /v2 infer c=64"] = _load(
                            f"{server.url}/v2/models/bench-{kind}/infer", oip, 64, seconds,
                            work / "r.json",
                        )  # fmt: skip
                finally:
                    server.stop()
            say(f"\n{kind}: in-process predict of one row: modelloop {floor['floor_ms']:.3f} ms "
                f"(signature checked), raw sklearn {floor['raw_ms']:.3f} ms")  # fmt: skip
            say(f"  {'':44}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
            for label, r in results.items():
                _row(label, r)
            mf64, ml64 = results["mlflow c=64"], results["modelloop logging on c=64"]
            off64 = results["modelloop logging off c=64"]
            say(f"  throughput at c=64: {ml64['rps'] / mf64['rps']:.1f}x MLflow (target 10x)")
            gap = results["modelloop logging on c=1"]["p50_ms"] - floor["floor_ms"]
            say(f"  p50 at c=1 minus in-process predict: {gap:.2f} ms (target < 1 ms)")
            cost = 1 - ml64["rps"] / off64["rps"]
            say(f"  logging on vs off at c=64: {cost * 100:+.1f}% throughput cost (target < 10%)")


if __name__ == "__main__":
    main()
