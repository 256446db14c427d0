"""Model flavors: how each kind of model object is saved and loaded.

Detection never imports a heavy library: it looks at the classes in the model's
MRO. Order matters: the xgboost and LightGBM scikit-learn wrappers are also
scikit-learn estimators but are stored in their native formats.
"""

from __future__ import annotations

from typing import Any

from modelloop.errors import InvalidArgument
from modelloop.models.flavors.base import Flavor, Predictor
from modelloop.models.flavors.lightgbm import LightGBMFlavor
from modelloop.models.flavors.python import PythonFlavor
from modelloop.models.flavors.pytorch import PyTorchFlavor
from modelloop.models.flavors.sklearn import SklearnFlavor
from modelloop.models.flavors.xgboost import XGBoostFlavor

__all__ = ["FLAVORS", "Flavor", "Predictor", "flavor_for", "get_flavor"]

# Detection order (see the module docstring); "python" is the catch-all.
FLAVORS: dict[str, Flavor] = {
    f.name: f
    for f in (XGBoostFlavor(), LightGBMFlavor(), PyTorchFlavor(), SklearnFlavor(), PythonFlavor())
}


def flavor_for(model: Any) -> str:
    """The name of the flavor :func:`~modelloop.models.save_model` picks for ``model``."""
    for flavor in FLAVORS.values():
        if flavor.handles(model):
            return flavor.name
    raise InvalidArgument(
        f"cannot save a {type(model).__name__}: it is not a scikit-learn, xgboost, LightGBM or "
        "PyTorch model and has no predict method"
    )


def get_flavor(name: str) -> Flavor:
    """The flavor called ``name``."""
    try:
        return FLAVORS[name]
    except KeyError:
        raise InvalidArgument(
            f"unknown model flavor {name!r}; known flavors: {', '.join(FLAVORS)}"
        ) from None
