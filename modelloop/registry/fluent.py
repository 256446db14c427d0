"""The fluent model API: ``modelloop.log_model`` (into the active run),
``load_model``, ``register_model``, ``evaluate`` and ``promote``, on the client of
:mod:`modelloop.tracking.fluent`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelloop.tracking.fluent import _client, _run_id

if TYPE_CHECKING:
    import pandas as pd

    from modelloop.entities import ModelVersion, PromotionRecord
    from modelloop.models import LoadedModel
    from modelloop.registry.client import ModelInfo
    from modelloop.registry.evaluation import ModelType
    from modelloop.registry.gates import Policy
    from modelloop.registry.promotion import Evaluation

__all__ = ["evaluate", "load_model", "log_model", "promote", "register_model"]


def log_model(
    model: Any,
    name: str,
    *,
    input_example: Any = None,
    signature: Any = None,
    flavor: str | None = None,
    requirements: list[str] | None = None,
    registered_model_name: str | None = None,
) -> ModelInfo:
    """Package ``model`` into the active run's artifacts under ``name``: manifest,
    serialised model, signature (inferred from ``input_example`` when not given),
    input example and requirements. With ``registered_model_name`` it is also
    registered as that model's next version."""
    return _client().log_model(
        _run_id(),
        model,
        name,
        input_example=input_example,
        signature=signature,
        flavor=flavor,
        requirements=requirements,
        registered_model_name=registered_model_name,
    )


def load_model(model_uri: str, *, trusted: bool | None = None) -> LoadedModel:
    """Load a model from ``models:/NAME/VERSION``, ``models:/NAME@ALIAS``,
    ``runs:/RUN_ID/PATH`` or a local folder. Its ``predict`` enforces the signature.
    Pickle-based formats need ``trusted=True`` (or the ``trust_pickled_models``
    setting)."""
    return _client().load_model(model_uri, trusted=trusted)


def register_model(model_uri: str, name: str, *, description: str = "") -> ModelVersion:
    """Register a logged model (``runs:/RUN_ID/PATH``) as the next version of ``name``."""
    return _client().register_model(model_uri, name, description=description)


def evaluate(
    model_uri: str,
    data: pd.DataFrame | str,
    target: str,
    *,
    model_type: ModelType = "classifier",
    slices: list[Any] | tuple[Any, ...] = (),
    trusted: bool | None = None,
) -> Evaluation:
    """Score a model on a DataFrame (or a registered evaluation dataset): standard
    metrics overall and per slice plus p50/p95 latency, logged as an evaluation run
    linked to the model version and the dataset digest."""
    return _client().evaluate(
        model_uri, data, target, model_type=model_type, slices=slices, trusted=trusted
    )


def promote(
    name: str,
    version: int | str,
    *,
    to: str = "champion",
    policy: Policy | dict[str, Any] | str | Path | None = None,
    force: bool = False,
    reason: str = "",
) -> PromotionRecord:
    """Move alias ``to`` onto a version if the model's promotion policy passes; the
    verdict is stored either way (see :meth:`modelloop.Client.promote`)."""
    return _client().promote(name, version, to=to, policy=policy, force=force, reason=reason)
