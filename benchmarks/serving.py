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
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--kinds", default=",".join(KINDS))
    args = parser.parse_args()
    seconds = 3.0 if args.quick else 10.0
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
