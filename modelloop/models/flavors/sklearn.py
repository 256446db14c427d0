"""The ``sklearn`` flavor: any scikit-learn estimator, stored with skops (no pickle).

skops only rebuilds types it trusts (scikit-learn, numpy, scipy, ...). A model that
references other types still saves, but loading it needs the caller's opt-in, as
does the cloudpickle fallback used when skops cannot serialize the estimator.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelloop.models.flavors.base import (
    Flavor,
    Predictor,
    require,
    safe_member,
    top_modules,
    untrusted,
)

__all__ = ["SklearnFlavor", "load_skops", "load_pickle"]

#: scikit-learn's own fitted-state containers that skops leaves out of its default
#: trusted set, reviewed one by one: each is rebuilt from arrays and numbers by its
#: ``__setstate__``, none calls back into code named by the file. Trusting them lets
#: tree ensembles, histogram gradient boosting and MLPs load without an opt-in;
#: anything else unknown still needs ``trusted=True``.
SKLEARN_STATE_TYPES = frozenset(
    {
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
        "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    }
)

SKOPS_FILE = "model.skops"
PICKLE_FILE = "model.pkl"


def load_skops(file: Path, *, trusted: bool, flavor: str = "sklearn") -> Any:
    """Load a skops file, refusing (unless ``trusted``) types skops does not trust by default."""
    sio = require("skops.io", "sklearn", flavor)
    found: list[str] = list(sio.get_untrusted_types(file=file))
    untrusted_types = [t for t in found if t not in SKLEARN_STATE_TYPES]
    if untrusted_types and not trusted:
        raise untrusted(
            f"model file '{file.name}' references types skops does not trust by default: "
            f"{', '.join(untrusted_types)}"
        )
    # The allow-list is computed from the file itself, so it only matters once the caller
    # has opted in; a list stored next to the model (MLflow's skops_trusted_types) is not used.
    return sio.load(file, trusted=found or None)


def load_pickle(file: Path, *, trusted: bool) -> Any:
    """Unpickle ``file`` with cloudpickle, only when the caller trusts it."""
    if not trusted:
        raise untrusted(f"model file '{file.name}' is a pickle")
    import cloudpickle  # type: ignore[import-untyped]

    with file.open("rb") as fh:
        return cloudpickle.load(fh)


class SklearnFlavor(Flavor):
    """scikit-learn estimators, pipelines and column transformers."""

    name = "sklearn"
    extra = "sklearn"
    distributions = ("scikit-learn", "skops")

    def handles(self, model: Any) -> bool:
        if "sklearn" not in top_modules(model):
            return False
        return any(c.__name__ == "BaseEstimator" for c in type(model).__mro__)

    def save(self, model: Any, path: Path, *, input_example: Any = None) -> dict[str, Any]:
        sklearn = self._require("sklearn")
        sio = self._require("skops.io")
        config: dict[str, Any] = {"sklearn_version": str(sklearn.__version__)}
        target = path / SKOPS_FILE
        try:
            sio.dump(model, target)
            # skops writes some objects (lambdas, local functions) it cannot read back; load
            # once to be sure. Trusting the file's types is fine here: they come from the
            # object already in this process.
            sio.load(target, trusted=sio.get_untrusted_types(file=target) or None)
        except Exception:  # skops raises assorted errors for objects it cannot represent
            target.unlink(missing_ok=True)
            import cloudpickle

            with (path / PICKLE_FILE).open("wb") as fh:
                cloudpickle.dump(model, fh)
            config.update(model_file=PICKLE_FILE, serialization="pickle")
            return config
        config.update(model_file=SKOPS_FILE, serialization="skops")
        return config

    def load(self, path: Path, config: dict[str, Any], *, trusted: bool) -> Predictor:
        file = safe_member(path, config.get("model_file", SKOPS_FILE))
        if config.get("serialization", "skops") == "pickle":
            return Predictor(load_pickle(file, trusted=trusted), self.name)
        return Predictor(load_skops(file, trusted=trusted), self.name)
