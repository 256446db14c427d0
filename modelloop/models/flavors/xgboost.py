"""The ``xgboost`` flavor: Boosters and the scikit-learn wrappers, in xgboost's UBJSON format.

The native format holds only trees and parameters (no pickle), so loading is safe.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelloop.errors import DataCorrupted, InvalidArgument
from modelloop.models.flavors.base import Flavor, Predictor, safe_member, top_modules

__all__ = ["XGBoostFlavor"]

MODEL_FILE = "model.ubj"


class _BoosterPredictor(Predictor):
    """A raw Booster predicts from a DMatrix; build one from the DataFrame/ndarray."""

    def predict(self, data: Any) -> Any:
        import xgboost

        return self.raw.predict(xgboost.DMatrix(data))

    @property
    def has_proba(self) -> bool:
        return False


class XGBoostFlavor(Flavor):
    """``xgboost.Booster``, ``XGBClassifier``, ``XGBRegressor``, ``XGBRanker``, ..."""

    name = "xgboost"
    extra = "xgboost"
    distributions = ("xgboost",)

    def handles(self, model: Any) -> bool:
        return "xgboost" in top_modules(model)

    def save(self, model: Any, path: Path, *, input_example: Any = None) -> dict[str, Any]:
        xgboost = self._require("xgboost")
        # Reload through the nearest public xgboost class, so a user subclass still loads.
        model_class = next(
            (
                c.__name__
                for c in type(model).__mro__
                if c.__module__.startswith("xgboost") and getattr(xgboost, c.__name__, None) is c
            ),
            None,
        )
        if model_class is None or not hasattr(model, "save_model"):
            raise InvalidArgument(f"cannot save {type(model).__name__} with the xgboost flavor")
        model.save_model(str(path / MODEL_FILE))
        return {
            "model_file": MODEL_FILE,
            "model_class": model_class,
            "xgboost_version": str(xgboost.__version__),
        }

    def load(self, path: Path, config: dict[str, Any], *, trusted: bool) -> Predictor:
        xgboost = self._require("xgboost")
        file = safe_member(path, config.get("model_file", MODEL_FILE))
        model_class = str(config.get("model_class", "Booster"))
        cls = getattr(xgboost, model_class, None)
        if not isinstance(cls, type) or not hasattr(cls, "load_model"):
            raise DataCorrupted(f"unknown xgboost model class {model_class!r}")
        model = cls()
        model.load_model(str(file))
        return self.wrap(model, config)

    def wrap(self, model: Any, config: dict[str, Any]) -> Predictor:
        if type(model).__name__ == "Booster":
            return _BoosterPredictor(model, self.name)
        return Predictor(model, self.name)
