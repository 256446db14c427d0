"""The demo behind ``make demo``: train, track and compare a few models.

It uses a data set that ships with scikit-learn, so nothing is downloaded.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from modelloop.entities import PromotionRecord
from modelloop.errors import InvalidArgument, NotFound
from modelloop.settings import Settings
from modelloop.tracking.client import Client

EXPERIMENT = "demo-breast-cancer"


def run_demo(
    settings: Settings,
    n_models: int = 6,
    console: Console | None = None,
    *,
    through_server: bool = True,
) -> list[str]:
    """Train ``n_models`` classifiers, track each as a run, print a comparison.

    With ``through_server`` (the default) a tracking server is started on a free
    loopback port over the local store, the tracking goes through it with the HTTP
    backend, and the server is stopped cleanly at the end. Returns the run ids.
    """
    out = console or Console()
    if not through_server:
        return _track(settings, Client(settings=settings), n_models, out)
    from modelloop.backends import open_backend
    from modelloop.server import create_app
    from modelloop.server.background import BackgroundServer

    backend = open_backend(settings)
    try:
        with BackgroundServer(create_app(settings, backend)) as server:
            out.print(f"tracking server listening on {server.url} (stopped when the demo ends)")
            client = Client(settings=settings.replace(tracking_uri=server.url))
            run_ids = _track(settings, client, n_models, out)
    finally:
        backend.close()
    out.print(
        "browse the results again with: modelloop server --db "
        f"{settings.tracking_uri} --port 5000, then "
        "MODELLOOP_TRACKING_URI=http://127.0.0.1:5000 modelloop runs list -e " + EXPERIMENT
    )
    return run_ids


def _track(settings: Settings, client: Client, n_models: int, out: Console) -> list[str]:
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise InvalidArgument(
            "the demo needs scikit-learn: pip install 'modelloop[sklearn]'"
        ) from None
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = load_breast_cancer(as_frame=True).frame
    X, y = frame.drop(columns="target"), frame["target"]
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
    try:
        exp_id = client.get_experiment_by_name(EXPERIMENT).experiment_id
    except NotFound:
        exp_id = client.create_experiment(EXPERIMENT)

    candidates = [
        ("logreg-C0.1", make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=500))),
        ("logreg-C1", make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=500))),
        ("rf-50", RandomForestClassifier(n_estimators=50, random_state=0)),
        ("rf-200-depth6", RandomForestClassifier(n_estimators=200, max_depth=6, random_state=0)),
        ("gbm-100", GradientBoostingClassifier(n_estimators=100, random_state=0)),
        (
            "gbm-50-lr0.2",
            GradientBoostingClassifier(n_estimators=50, learning_rate=0.2, random_state=0),
        ),
    ][:n_models]
    run_ids = []
    for name, model in candidates:
        run = client.create_run(exp_id, name=name)
        client.log_params(run.run_id, _params(model))
        client.log_input(run.run_id, X_train.assign(target=y_train), "breast-cancer", "train")
        client.log_input(run.run_id, X_test.assign(target=y_test), "breast-cancer", "eval")
        started = time.perf_counter()
        model.fit(X_train, y_train)
        fit_seconds = time.perf_counter() - started
        proba = model.predict_proba(X_test)[:, 1]
        pred = (proba >= 0.5).astype(int)
        client.log_metrics(
            run.run_id,
            {
                "accuracy": float(accuracy_score(y_test, pred)),
                "f1": float(f1_score(y_test, pred)),
                "roc_auc": float(roc_auc_score(y_test, proba)),
                "log_loss": float(log_loss(y_test, proba)),
                "fit_seconds": fit_seconds,
            },
        )
        for step, n in enumerate(range(20, len(X_train) + 1, 40)):
            score = model.score(X_train.iloc[:n], y_train.iloc[:n])
            client.log_metric(run.run_id, "train_accuracy_by_rows", float(score), step=step)
        client.log_dict(run.run_id, {"features": list(X.columns)}, "features.json")
        client.log_model(run.run_id, model, "model", input_example=X_test.iloc[:5])
        client.end_run(run.run_id)
        run_ids.append(run.run_id)
        out.print(f"tracked [bold]{name}[/bold] as run {run.run_id}")

    best = client.search_runs(
        [exp_id],
        filter_string=f"attributes.run_id IN ({', '.join(repr(r) for r in run_ids)})",
        order_by=["metrics.roc_auc DESC", "metrics.log_loss ASC"],
    )
    table = Table("rank", "run", "accuracy", "f1", "roc_auc", "log_loss", "fit s", title=EXPERIMENT)
    for rank, r in enumerate(best, 1):
        m = r.metrics
        table.add_row(
            str(rank),
            r.name,
            f"{m['accuracy']:.4f}",
            f"{m['f1']:.4f}",
            f"{m['roc_auc']:.4f}",
            f"{m['log_loss']:.4f}",
            f"{m['fit_seconds']:.2f}",
        )
    out.print(table)
    out.print(
        f"stored in {settings.tracking_uri}; try: modelloop runs compare "
        f"{best[0].run_id} {best[1].run_id}"
        if len(best) > 1
        else ""
    )
    _register_and_promote(client, exp_id, best[0].run_id, X_train, y_train, X_test, y_test, out)
    client.close()
    _serve_champion(settings, X_test, y_test, out)
    from modelloop.demo_monitor import monitor_demo

    monitor_demo(settings, X_train, y_train, DEMO_MODEL, out)
    return run_ids


DEMO_MODEL = "breast-cancer"
DEMO_POLICY = """
target_alias: champion
evaluation:
  dataset: breast-cancer-holdout
  target: target
  model_type: classifier
  slices: ["`mean radius` < 14", "`mean radius` >= 14"]
checks:
  - metric_threshold: {metric: accuracy, min: 0.93}
  - beats_champion: {metric: roc_auc, min_absolute_change: 0.0}
  - slice_gap: {metric: accuracy, max_gap: 0.15}
  - schema_compatible: {}
  - latency_budget: {p95_ms: 100}
  - max_model_size: {max_bytes: 50MB}
"""


def _register_and_promote(
    client: Client,
    exp_id: str,
    best_run_id: str,
    X_train: Any,
    y_train: Any,
    X_test: Any,
    y_test: Any,
    out: Console,
) -> None:
    """Register the best run's model, promote it through a policy, then show a worse
    candidate refused by the gates."""
    from sklearn.tree import DecisionTreeClassifier

    from modelloop.registry.uris import runs_uri

    client.register_dataset("breast-cancer-holdout", X_test.assign(target=y_test))
    best = client.register_model(runs_uri(best_run_id, "model"), DEMO_MODEL)
    client.set_policy(DEMO_MODEL, DEMO_POLICY)
    out.print(f"registered the best run's model as {best.uri}; promotion policy stored")
    _show(client.promote(DEMO_MODEL, best.version, to="champion"), out)

    stump = DecisionTreeClassifier(max_depth=1, random_state=0).fit(X_train, y_train)
    run = client.create_run(exp_id, name="stump-candidate")
    client.log_input(run.run_id, X_train.assign(target=y_train), "breast-cancer", "train")
    info = client.log_model(run.run_id, stump, "model", input_example=X_test.iloc[:5])
    client.end_run(run.run_id)
    worse = client.register_model(info.model_uri, DEMO_MODEL)
    out.print(f"a weaker candidate, {worse.uri}, asks for the champion alias:")
    _show(client.promote(DEMO_MODEL, worse.version, to="champion"), out)
    holder = client.get_model_version_by_alias(DEMO_MODEL, "champion")
    out.print(
        f"champion is still version {holder.version}. See: modelloop models history "
        f"{DEMO_MODEL} --alias champion; modelloop models card {DEMO_MODEL} {holder.version}"
    )


def _serve_champion(settings: Settings, X_test: Any, y_test: Any, out: Console) -> None:
    """Serve the champion on a free loopback port, send it traffic through a real HTTP
    client (MLflow's and the Open Inference Protocol's formats), then traffic that
    drifts, report ground truth for it, stop the server, and read the logged
    predictions back."""
    import httpx

    from modelloop.backends.factory import resolve_stores
    from modelloop.demo_monitor import drifted_traffic
    from modelloop.server.background import BackgroundServer
    from modelloop.serving.app import ServeConfig, build_serving_app
    from modelloop.serving.prediction_log import predictions_root, read_feedback, read_predictions

    config = ServeConfig(models=(f"models:/{DEMO_MODEL}@champion",), max_batch_size=32)
    server = BackgroundServer(build_serving_app(settings, config), lifespan="on")
    url = server.start()
    out.print(f"serving {DEMO_MODEL}@champion on {url} (stopped when the demo ends)")
    columns = [str(c) for c in X_test.columns]
    sent = 0
    try:
        with httpx.Client(base_url=url, timeout=30) as http:
            sent += _send_labelled(http, X_test, y_test, 10)
            row = X_test.iloc[0]
            oip = {
                "inputs": [
                    {"name": c, "shape": [1], "datatype": "FP64", "data": [float(row[c])]}
                    for c in columns
                ]
            }
            http.post(f"/v2/models/{DEMO_MODEL}/infer", json=oip).raise_for_status()
            sent += 1
            sent += _send_labelled(http, *drifted_traffic(X_test, y_test, 256), 16)
    finally:
        server.stop()
    root = predictions_root(resolve_stores(settings.tracking_uri, settings.artifacts_uri)[1])
    logged = read_predictions(root, DEMO_MODEL)
    truth = read_feedback(root, DEMO_MODEL)
    joined = logged.merge(truth, on=["request_id", "row"], how="inner")
    accuracy = float((joined["output"] == joined["ground_truth"]).mean()) if len(joined) else 0.0
    out.print(
        f"sent {sent} requests; {logged['request_id'].nunique()} requests / {len(logged)} rows "
        f"logged to {root} (Parquet), {len(truth)} labels joined back: live accuracy "
        f"{accuracy:.3f} (the last 256 rows drift), "
        f"median latency {logged['latency_ms'].median():.2f} ms"
    )
    table = Table("request", "row", "route", "version", "latency ms", "prediction",
                  title="logged predictions (first 5)")  # fmt: skip
    for rec in logged.head(5).itertuples():
        table.add_row(str(rec.request_id)[:12], str(rec.row), str(rec.route),
                      str(rec.model_version), f"{rec.latency_ms:.2f}", str(rec.output))  # fmt: skip
    out.print(table)
    out.print(
        f"serve it yourself: MODELLOOP_TRACKING_URI={settings.tracking_uri} "
        f"modelloop serve models:/{DEMO_MODEL}@champion --port 8080"
    )


def _send_labelled(http: Any, X: Any, y: Any, size: int) -> int:
    """Send ``X`` to ``/invocations`` in requests of ``size`` rows (MLflow's
    ``dataframe_split``), each followed by its ground truth on ``/feedback``."""
    columns = [str(c) for c in X.columns]
    sent = 0
    for start in range(0, len(X), size):
        chunk = X.iloc[start : start + size]
        body = {"dataframe_split": {"columns": columns, "data": chunk.to_numpy().tolist()}}
        r = http.post("/invocations", json=body)
        r.raise_for_status()
        truth = y.iloc[start : start + size].tolist()
        feedback = {"request_id": r.headers["x-request-id"], "ground_truth": truth}
        http.post("/feedback", json=feedback).raise_for_status()
        sent += 1
    return sent


def _show(record: PromotionRecord, out: Console) -> None:
    table = Table("check", "result", "value", "baseline", title=f"gates for v{record.version}")
    for check in record.checks:
        mark = "[green]PASS[/green]" if check.get("passed") else "[red]FAIL[/red]"
        table.add_row(
            escape(str(check.get("name"))),
            mark,
            _num(check.get("value")),
            _num(check.get("baseline")),
        )
    out.print(table)
    verdict = "[green]promoted[/green]" if record.moved else "[red]refused[/red]"
    out.print(f"{verdict}: {DEMO_MODEL} v{record.version} → {record.alias}")


def _num(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else ("" if value is None else str(value))


def _params(model: object) -> dict[str, str]:
    get = getattr(model, "get_params", None)
    if get is None:
        return {}
    params = get(deep=True)
    flat = {k: v for k, v in params.items() if isinstance(v, int | float | str | bool | None)}
    return {"model": type(model).__name__, **{k: str(v) for k, v in flat.items()}}
