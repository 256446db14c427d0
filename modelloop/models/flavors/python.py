"""The ``python`` flavor: any object with a ``predict`` method, stored with cloudpickle.

Unpickling runs code chosen by whoever wrote the file, so loading always needs the
caller's explicit opt-in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelloop.models.flavors.base import Flavor, Predictor, safe_member
from modelloop.models.flavors.sklearn import load_pickle

__all__ = ["PythonFlavor"]

PICKLE_FILE = "model.pkl"


class PythonFlavor(Flavor):
    """Plain Python objects with ``predict`` (and optionally ``predict_proba``)."""

    name = "python"
    distributions = ("cloudpickle",)

    def handles(self, model: Any) -> bool:
        return callable(getattr(model, "predict", None))

    def save(self, model: Any, path: Path, *, input_example: Any = None) -> dict[str, Any]:
        import cloudpickle  # type: ignore[import-untyped]

        with (path / PICKLE_FILE).open("wb") as fh:
            cloudpickle.dump(model, fh)
        return {"model_file": PICKLE_FILE, "serialization": "pickle"}

    def load(self, path: Path, config: dict[str, Any], *, trusted: bool) -> Predictor:
        file = safe_member(path, config.get("model_file", PICKLE_FILE))
        return Predictor(load_pickle(file, trusted=trusted), self.name)
