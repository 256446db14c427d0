"""Model packaging: save a model into a directory, load it back, check its inputs.

``save_model`` writes a self-describing directory (``MODEL.yaml``, the serialized
model in its flavor's format, the input example and pinned requirements);
``load_model_dir`` reads it, or an MLflow model directory, as a
:class:`LoadedModel` whose ``predict`` enforces the signature first.

Importing this package does not import scikit-learn, xgboost, LightGBM, PyTorch or
MLflow: each flavor imports its library when it saves or loads.
"""

from modelloop.models.flavors import FLAVORS, flavor_for
from modelloop.models.manifest import ModelManifest
from modelloop.models.packaging import LoadedModel, load_model_dir, save_model
from modelloop.models.signature import (
    ColSpec,
    Signature,
    TensorSpec,
    enforce_signature,
    infer_signature,
)

__all__ = [
    "FLAVORS",
    "ColSpec",
    "LoadedModel",
    "ModelManifest",
    "Signature",
    "TensorSpec",
    "enforce_signature",
    "flavor_for",
    "infer_signature",
    "load_model_dir",
    "save_model",
]
