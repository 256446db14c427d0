"""The ``sklearn`` flavor: any scikit-learn estimator, stored with skops (no pickle).

skops only rebuilds types it trusts (scikit-learn, numpy, scipy, ...). A model that
references other types still saves, but loading it needs the caller's opt-in, as
does the cloudpickle fallback used when skops cannot serialize the estimator.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from modelloop.errors import DataCorrupted
from modelloop.models.flavors.base import (
    Flavor,
    Predictor,
    require,
    safe_member,
    top_modules,
    untrusted,
)

__all__ = ["SklearnFlavor", "load_skops", "load_pickle"]

#: skops leaves ``Tree`` (the node storage of decision trees, random forests, extra
#: trees and gradient boosting) out of its trusted set because scikit-learn indexes
#: its node arrays without bounds checks: a crafted file could make ``predict`` read
#: out of bounds. modelloop loads it and then checks every node (children after their
#: parent and inside the tree, features inside the input) before handing the model
#: out, so those models load safely without an opt-in. Other unknown types still
#: need ``trusted=True``.
CHECKED_TYPES = frozenset({"sklearn.tree._tree.Tree"})

SKOPS_FILE = "model.skops"
PICKLE_FILE = "model.pkl"


def load_skops(file: Path, *, trusted: bool, flavor: str = "sklearn") -> Any:
    """Load a skops file, refusing (unless ``trusted``) types skops does not trust by default."""
    sio = require("skops.io", "sklearn", flavor)
    found: list[str] = list(sio.get_untrusted_types(file=file))
    untrusted_types = [t for t in found if t not in CHECKED_TYPES]
    if untrusted_types and not trusted:
        raise untrusted(
            f"model file '{file.name}' references types skops does not trust by default: "
            f"{', '.join(untrusted_types)}"
        )
    # The allow-list is computed from the file itself, so it only matters once the caller
    # has opted in; a list stored next to the model (MLflow's skops_trusted_types) is not used.
    model = sio.load(file, trusted=found or None)
    if not trusted:
        check_trees(model, file.name)
    return model


def _trees(obj: Any, seen: set[int]) -> list[Any]:
    """Every scikit-learn ``Tree`` reachable from ``obj`` (estimators, lists, dicts)."""
    if id(obj) in seen or isinstance(obj, (str, bytes, int, float, bool, type(None))):
        return []
    seen.add(id(obj))
    if type(obj).__module__ == "sklearn.tree._tree" and type(obj).__name__ == "Tree":
        return [obj]
    children: list[Any] = []
    if isinstance(obj, dict):
        children = list(obj.values())
    elif isinstance(obj, (list, tuple)):
        children = list(obj)
    elif isinstance(obj, np.ndarray) and obj.dtype.kind == "O":
        children = list(obj.ravel())
    elif hasattr(obj, "__dict__") and type(obj).__module__.split(".")[0] == "sklearn":
        children = list(vars(obj).values())
    return [tree for child in children for tree in _trees(child, seen)]


def check_trees(model: Any, where: str) -> None:
    """Refuse a model whose tree nodes point outside the tree or the input, or back
    up the tree (which would make ``predict`` read out of bounds or loop)."""
    for tree in _trees(model, set()):
        n = int(tree.node_count)
        left, right = np.asarray(tree.children_left), np.asarray(tree.children_right)
        feature = np.asarray(tree.feature)
        index = np.arange(n)
        leaf = left == -1
        problems = []
        if len(left) != n or len(right) != n or len(feature) != n:
            problems.append("node arrays do not match the node count")
        elif not np.array_equal(leaf, right == -1):
            problems.append("a node has exactly one child")
        elif np.any(~leaf & ((left <= index) | (left >= n) | (right <= index) | (right >= n))):
            problems.append("a child index is out of range or not after its parent")
        elif np.any(~leaf & ((feature < 0) | (feature >= int(tree.n_features)))):
            problems.append("a split feature is out of range")
        elif np.asarray(tree.value).shape[0] != n:
            problems.append("the value array does not match the node count")
        if problems:
            raise DataCorrupted(
                f"model file '{where}' holds an invalid decision tree: {problems[0]}"
            )


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
