"""modelloop: track, register, gate, deploy, serve, monitor and retrain models.

The fluent API below works on the active run of the current thread::

    import modelloop

    modelloop.set_experiment("churn")
    with modelloop.start_run(run_name="rf"):
        modelloop.log_params({"n_estimators": 200})
        modelloop.log_metric("accuracy", 0.93)

:class:`Client` offers the same operations with explicit run ids and no implicit state.
"""

from modelloop.entities import (
    Experiment,
    Metric,
    ModelVersion,
    RegisteredModel,
    Run,
    RunStatus,
    ViewType,
)
from modelloop.errors import (
    AlreadyExists,
    Conflict,
    InvalidArgument,
    InvalidState,
    ModelloopError,
    NotFound,
    PermissionDenied,
    SignatureMismatch,
    UntrustedModel,
)
from modelloop.registry.fluent import evaluate, load_model, log_model, promote, register_model
from modelloop.settings import Settings, load_settings
from modelloop.tracking.client import Client
from modelloop.tracking.fluent import (
    ActiveRun,
    active_run,
    end_run,
    flush,
    get_client,
    get_tracking_uri,
    log_artifact,
    log_artifacts,
    log_dict,
    log_figure,
    log_input,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    log_text,
    search_runs,
    seed_everything,
    set_experiment,
    set_tag,
    set_tags,
    set_tracking_uri,
    start_run,
)

__version__ = "0.1.0"

__all__ = [
    "ActiveRun",
    "AlreadyExists",
    "Client",
    "Conflict",
    "Experiment",
    "InvalidArgument",
    "InvalidState",
    "Metric",
    "ModelVersion",
    "ModelloopError",
    "NotFound",
    "PermissionDenied",
    "RegisteredModel",
    "Run",
    "RunStatus",
    "Settings",
    "SignatureMismatch",
    "UntrustedModel",
    "ViewType",
    "__version__",
    "active_run",
    "end_run",
    "evaluate",
    "flush",
    "get_client",
    "get_tracking_uri",
    "load_model",
    "load_settings",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "log_text",
    "promote",
    "register_model",
    "search_runs",
    "seed_everything",
    "set_experiment",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
]
