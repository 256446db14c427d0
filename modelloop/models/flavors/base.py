"""The protocol every flavor implements, and the helpers they share.

A flavor knows one kind of model object: how to recognise it (without importing its
library: detection looks at class names in the MRO), how to write it into a
directory, and how to load it back as a :class:`Predictor`. Heavy libraries are
imported inside the methods so that ``import modelloop.models`` stays light.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

from modelloop.errors import DataCorrupted, InvalidState, MissingDependency, UntrustedModel

__all__ = [
    "TRUST_ENV_VAR",
    "Flavor",
    "Predictor",
    "class_names",
    "require",
    "safe_member",
    "top_modules",
    "untrusted",
]

#: The environment variable of the ``trust_pickled_models`` setting (read by the
#: settings table, never here: ``load_model_dir`` takes ``trusted`` explicitly).
TRUST_ENV_VAR = "MODELLOOP_TRUST_PICKLED_MODELS"


def require(module: str, extra: str, flavor: str) -> ModuleType:
    """Import ``module`` or raise MissingDependency naming the pip extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependency(
            f"the {flavor} model flavor needs the '{module.split('.')[0]}' package, which is "
            f"not installed: pip install 'modelloop[{extra}]'",
            module=module,
            extra=extra,
        ) from exc


def untrusted(what: str) -> UntrustedModel:
    """The error for a model whose loading would run code from the model files."""
    return UntrustedModel(
        f"{what}. Loading it would unpickle the file, which can run arbitrary code, so "
        "modelloop does not do it by default. If you trust where this model comes from, "
        f"pass trusted=True to load_model (or set {TRUST_ENV_VAR}=true)."
    )


def class_names(obj: Any) -> set[str]:
    """``module.QualName`` of every class in ``type(obj)``'s MRO (no imports needed)."""
    return {f"{c.__module__}.{c.__qualname__}" for c in type(obj).__mro__}


def top_modules(obj: Any) -> set[str]:
    """The top-level package of every class in ``type(obj)``'s MRO."""
    return {c.__module__.split(".")[0] for c in type(obj).__mro__}


class Predictor:
    """A loaded model behind one calling convention: ``predict`` and maybe ``predict_proba``.

    The base class calls the object's own methods; flavors whose native object needs
    its input converted first (an xgboost Booster, a torch module) override them.
    """

    def __init__(self, raw: Any, flavor: str) -> None:
        self.raw = raw
        self.flavor = flavor

    def predict(self, data: Any) -> Any:
        """The model's predictions for ``data`` (already signature-checked)."""
        return self.raw.predict(data)

    @property
    def has_proba(self) -> bool:
        """Whether :meth:`predict_proba` is available."""
        return callable(getattr(self.raw, "predict_proba", None))

    def predict_proba(self, data: Any) -> Any:
        """Class probabilities, for classifiers."""
        if not self.has_proba:
            raise InvalidState(f"this {self.flavor} model has no predict_proba")
        return self.raw.predict_proba(data)


class Flavor(ABC):
    """One way of saving and loading a kind of model object."""

    name: ClassVar[str]
    extra: ClassVar[str | None] = None  # the pip extra that installs the library
    distributions: ClassVar[tuple[str, ...]] = ()  # libraries to pin in requirements.txt

    @abstractmethod
    def handles(self, model: Any) -> bool:
        """Whether ``model`` is an object of this flavor (checked without importing)."""

    @abstractmethod
    def save(self, model: Any, path: Path, *, input_example: Any = None) -> dict[str, Any]:
        """Write ``model`` into the existing directory ``path``; return the flavor config."""

    @abstractmethod
    def load(self, path: Path, config: dict[str, Any], *, trusted: bool) -> Predictor:
        """Load the model saved in ``path`` with flavor config ``config``."""

    def wrap(self, model: Any, config: dict[str, Any]) -> Predictor:
        """A predictor for an in-memory ``model`` (used to infer output signatures)."""
        return Predictor(model, self.name)

    def _require(self, module: str) -> ModuleType:
        return require(module, self.extra or self.name, self.name)


def safe_member(path: Path, name: Any) -> Path:
    """``path / name`` for a config-supplied file name, refusing names leaving ``path``."""
    if (
        not isinstance(name, str)
        or not name
        or Path(name).is_absolute()
        or ".." in Path(name).parts
    ):
        raise DataCorrupted(f"model config names a file outside the model directory: {name!r}")
    return path / name
