"""One side of ``benchmarks/registry.py``; the modes starting with ``mlflow-`` run in
``benchmarks/.venv-mlflow``, the others in the project's venv.

    python _registry_side.py modelloop-registry --store DIR --versions 100,1000,10000 --out R.json
    python _registry_side.py mlflow-registry --versions 100,1000 --out R.json
    python _registry_side.py modelloop-save --store DIR --out R.json
    python _registry_side.py mlflow-save --out R.json
    python _registry_side.py modelloop-load --store DIR --uri URI --out R.json
    python _registry_side.py mlflow-load --uri URI --out R.json

Each mode runs in a fresh process and writes its figures as JSON. The load modes
time the import of the tool and the ``load_model`` call separately, from a cold
process: what a serving process pays to start.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

LOOKUPS = 300
MODEL = "bench-model"


def _median_us(fn: Callable[[], object], n: int = LOOKUPS) -> dict[str, float]:
    fn()  # warm the code path (and the connection pool)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e6)
    times.sort()
    return {"median_us": statistics.median(times), "p95_us": times[int(0.95 * (n - 1))]}


def _training_data() -> tuple[Any, Any]:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    return frame.drop(columns="target"), frame["target"]


def _model() -> Any:
    from sklearn.ensemble import RandomForestClassifier

    X, y = _training_data()
    return RandomForestClassifier(n_estimators=100, random_state=0).fit(X, y), X


# modelloop ------------------------------------------------------------------------


def modelloop_registry(store: str, checkpoints: list[int]) -> dict[str, Any]:
    from modelloop import Client, Settings
    from modelloop.registry.uris import resolve_model_uri

    client = Client(
        settings=Settings(tracking_uri=store, capture_git=False, capture_environment=False)
    )
    backend = client.backend
    backend.create_registered_model(MODEL)
    rng = random.Random(0)
    out: dict[str, Any] = {"checkpoints": []}
    registered = 0
    register_seconds = 0.0
    for target in checkpoints:
        start = time.perf_counter()
        while registered < target:
            backend.create_model_version(MODEL, f"runs:/{'0' * 32}/model")
            registered += 1
        register_seconds += time.perf_counter() - start
        backend.set_model_alias(MODEL, "champion", rng.randint(1, registered))
        out["checkpoints"].append(
            {
                "versions": registered,
                "alias": _median_us(lambda: backend.get_model_version_by_alias(MODEL, "champion")),
                "version": _median_us(
                    lambda n=registered: backend.get_model_version(MODEL, rng.randint(1, n))
                ),
                "uri": _median_us(lambda: resolve_model_uri(backend, f"models:/{MODEL}@champion")),
                "latest": _median_us(lambda: backend.get_latest_model_version(MODEL)),
            }
        )
        print(f"progress: modelloop {registered} versions", flush=True)
    out["register_per_s"] = registered / register_seconds
    client.close()
    return out


def modelloop_save(store: str) -> dict[str, Any]:
    import modelloop

    modelloop.set_tracking_uri(store)
    model, X = _model()
    with modelloop.start_run():
        info = modelloop.log_model(
            model, "model", input_example=X.head(5), registered_model_name=MODEL
        )
    modelloop.get_client().close()
    assert info.version is not None
    return {"uri": f"models:/{MODEL}/{info.version.version}", "size": info.manifest.size_bytes}


class _NoTorch:
    """An import hook that makes ``import torch`` fail as if it were not installed."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}")


def modelloop_load(store: str, uri: str, hide_torch: bool) -> dict[str, Any]:
    if hide_torch:
        # The project's venv has torch (a dev extra); MLflow's has not. skops lists
        # sklearn's estimators at import, and sklearn then imports torch if present,
        # which alone costs over a second. Hiding it gives both sides the same packages.
        sys.meta_path.insert(0, _NoTorch())
    t0 = time.perf_counter()
    import modelloop

    t1 = time.perf_counter()
    modelloop.set_tracking_uri(store)
    model = modelloop.load_model(uri)
    t2 = time.perf_counter()
    X, _ = _training_data()
    prediction = model.predict(X.head(50)).tolist()
    return {"import_s": t1 - t0, "load_s": t2 - t1, "prediction": prediction}


# MLflow ----------------------------------------------------------------------------


def mlflow_registry(checkpoints: list[int]) -> dict[str, Any]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    client.create_registered_model(MODEL)
    rng = random.Random(0)
    out: dict[str, Any] = {"checkpoints": [], "tracking_uri": client.tracking_uri}
    registered = 0
    register_seconds = 0.0
    for target in checkpoints:
        start = time.perf_counter()
        while registered < target:
            client.create_model_version(MODEL, "file:///tmp/none/model")
            registered += 1
        register_seconds += time.perf_counter() - start
        client.set_registered_model_alias(MODEL, "champion", str(rng.randint(1, registered)))
        out["checkpoints"].append(
            {
                "versions": registered,
                "alias": _median_us(lambda: client.get_model_version_by_alias(MODEL, "champion")),
                "version": _median_us(
                    lambda n=registered: client.get_model_version(MODEL, str(rng.randint(1, n)))
                ),
                "latest": _median_us(
                    lambda: client.search_model_versions(
                        f"name = '{MODEL}'", max_results=1, order_by=["version_number DESC"]
                    )
                ),
            }
        )
        print(f"progress: mlflow {registered} versions", flush=True)
    out["register_per_s"] = registered / register_seconds
    return out


def mlflow_save() -> dict[str, Any]:
    import mlflow

    model, X = _model()
    with mlflow.start_run():
        # MLflow 3 stores sklearn models with skops too, and asks for the tree type to
        # be trusted explicitly (modelloop checks the nodes instead).
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            input_example=X.head(5),
            registered_model_name=MODEL,
            skops_trusted_types=["sklearn.tree._tree.Tree"],
        )
    return {
        "uri": f"models:/{MODEL}/{info.registered_model_version}",
        "tracking_uri": mlflow.get_tracking_uri(),
    }


def mlflow_load(uri: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    import mlflow.pyfunc

    t1 = time.perf_counter()
    model = mlflow.pyfunc.load_model(uri)
    t2 = time.perf_counter()
    X, _ = _training_data()
    prediction = [int(v) for v in model.predict(X.head(50))]
    return {"import_s": t1 - t0, "load_s": t2 - t1, "prediction": prediction}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode")
    parser.add_argument("--store", default="")
    parser.add_argument("--versions", default="100,1000")
    parser.add_argument("--uri", default="")
    parser.add_argument("--out", required=True)
    parser.add_argument("--hide-torch", action="store_true")
    args = parser.parse_args(argv)
    checkpoints = [int(v) for v in args.versions.split(",")]
    modes: dict[str, Callable[[], dict[str, Any]]] = {
        "modelloop-registry": lambda: modelloop_registry(args.store, checkpoints),
        "modelloop-save": lambda: modelloop_save(args.store),
        "modelloop-load": lambda: modelloop_load(args.store, args.uri, args.hide_torch),
        "mlflow-registry": lambda: mlflow_registry(checkpoints),
        "mlflow-save": mlflow_save,
        "mlflow-load": lambda: mlflow_load(args.uri),
    }
    result = modes[args.mode]()
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump(result, fh)


if __name__ == "__main__":
    main(sys.argv[1:])
