"""The ``lightgbm`` flavor: Boosters and the scikit-learn wrappers, in LightGBM's text format.

Only the Booster is stored (a text file, no pickle). A classifier wrapper's
predictions are rebuilt the way ``LGBMClassifier.predict`` does it: the booster
gives probabilities, the arg-max indexes the stored list of classes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from modelloop.errors import InvalidArgument
from modelloop.models.flavors.base import Flavor, Predictor, safe_member, top_modules

__all__ = ["LightGBMFlavor"]

MODEL_FILE = "model.txt"


class _BoosterPredictor(Predictor):
    """A loaded ``lightgbm.Booster``; ``classes`` set when it came from an LGBMClassifier."""

    def __init__(self, raw: Any, flavor: str, classes: np.ndarray[Any, Any] | None) -> None:
        super().__init__(raw, flavor)
        self.classes = classes

    def predict(self, data: Any) -> Any:
        if self.classes is None:
            return self.raw.predict(data)
        index = np.argmax(self.predict_proba(data), axis=1)
        return self.classes[index]

    @property
    def has_proba(self) -> bool:
        return self.classes is not None

    def predict_proba(self, data: Any) -> Any:
        if self.classes is None:
            return super().predict_proba(data)
        result = self.raw.predict(data)
        if len(self.classes) > 2:
            return result
        # Binary boosters return P(class 1); LGBMClassifier stacks 1 - p beside it.
        return np.vstack((1.0 - result, result)).transpose()


class LightGBMFlavor(Flavor):
    """``lightgbm.Booster``, ``LGBMClassifier``, ``LGBMRegressor``, ``LGBMRanker``."""

    name = "lightgbm"
    extra = "lightgbm"
    distributions = ("lightgbm",)

    def handles(self, model: Any) -> bool:
        return "lightgbm" in top_modules(model)

    def save(self, model: Any, path: Path, *, input_example: Any = None) -> dict[str, Any]:
        lightgbm = self._require("lightgbm")
        config: dict[str, Any] = {
            "model_file": MODEL_FILE,
            "lightgbm_version": str(lightgbm.__version__),
        }
        if isinstance(model, lightgbm.Booster):
            booster, kind = model, "booster"
        elif isinstance(model, lightgbm.LGBMModel):
            booster = model.booster_
            kind = "classifier" if isinstance(model, lightgbm.LGBMClassifier) else "regressor"
            if callable(getattr(model, "objective", None)):
                # With a custom objective the wrapper returns raw scores; the text file
                # cannot carry the Python function, so predictions would differ.
                raise InvalidArgument(
                    "LightGBM models with a custom objective function cannot be saved"
                )
        else:
            raise InvalidArgument(f"cannot save {type(model).__name__} with the lightgbm flavor")
        if kind == "classifier":
            classes = np.asarray(model.classes_)
            config.update(classes=classes.tolist(), classes_dtype=classes.dtype.str)
        booster.save_model(str(path / MODEL_FILE))
        config["model_kind"] = kind
        return config

    def load(self, path: Path, config: dict[str, Any], *, trusted: bool) -> Predictor:
        lightgbm = self._require("lightgbm")
        file = safe_member(path, config.get("model_file", MODEL_FILE))
        return self.wrap(lightgbm.Booster(model_file=str(file)), config)

    def wrap(self, model: Any, config: dict[str, Any]) -> Predictor:
        if type(model).__name__ != "Booster":
            return Predictor(model, self.name)
        classes = None
        if config.get("model_kind") == "classifier":
            # The dtype too, so labels come back as the wrapper's predict returns them.
            classes = np.asarray(
                config["classes"], dtype=np.dtype(config.get("classes_dtype", "O"))
            )
        return _BoosterPredictor(model, self.name, classes)
