"""Serving: the inference server (Open Inference Protocol v2 and MLflow's
``/invocations``), adaptive batching, hot reload of aliased models, prediction
logging and metrics.

The names below load lazily: ``modelloop.tracking`` imports parts of this package,
so importing the server stack here eagerly would make that import circular.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelloop.serving.app import (
        ServeConfig,
        build_serving_app,
        create_serving_app,
        create_serving_app_from_environment,
    )
    from modelloop.serving.batching import BatchSettings
    from modelloop.serving.slots import ModelServer, ServedModel, load_served_model

__all__ = [
    "BatchSettings",
    "ModelServer",
    "ServeConfig",
    "ServedModel",
    "build_serving_app",
    "create_serving_app",
    "create_serving_app_from_environment",
    "load_served_model",
]

_HOMES = {
    "BatchSettings": "batching",
    "ModelServer": "slots",
    "ServeConfig": "app",
    "ServedModel": "slots",
    "build_serving_app": "app",
    "create_serving_app": "app",
    "create_serving_app_from_environment": "app",
    "load_served_model": "slots",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'modelloop.serving' has no attribute {name!r}")
    return getattr(importlib.import_module(f"modelloop.serving.{home}"), name)
