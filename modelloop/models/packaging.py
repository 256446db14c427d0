"""Saving a model into a directory and loading one back (modelloop or MLflow layout).

The directory is self-describing: ``MODEL.yaml`` names the flavor and its config,
the signature, the example and the pinned requirements. Everything here works on
a local directory; uploading it as run artifacts is the caller's business.
"""

from __future__ import annotations

import importlib.metadata as importlib_metadata
import json
import logging
import platform
import re
import shutil
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelloop.errors import AlreadyExists, InvalidArgument, InvalidState, NotFound
from modelloop.models.examples import normalize_example, read_example, write_example
from modelloop.models.flavors import FLAVORS, Flavor, Predictor, flavor_for, get_flavor
from modelloop.models.flavors.base import safe_member
from modelloop.models.manifest import (
    FORMAT_VERSION,
    MANIFEST_FILE,
    ModelManifest,
    directory_size,
)
from modelloop.models.signature import Signature, enforce_signature, infer_signature, to_frame

__all__ = ["LoadedModel", "load_model_dir", "save_model"]

_log = logging.getLogger(__name__)

REQUIREMENTS_FILE = "requirements.txt"
MLMODEL_FILE = "MLmodel"
_BASE_DISTRIBUTIONS = ("numpy", "pandas")
# Distribution name -> import name, where they differ (for the fallback lookup below).
_IMPORT_NAMES = {"scikit-learn": "sklearn"}
_PROJECT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _installed_version(dist: str) -> str | None:
    try:
        return importlib_metadata.version(dist)
    except importlib_metadata.PackageNotFoundError:
        pass
    # Some libraries ship under another distribution name (xgboost as "xgboost-cpu"):
    # find whichever distribution provides the import package.
    provided_by = importlib_metadata.packages_distributions().get(_IMPORT_NAMES.get(dist, dist), [])
    for other in provided_by:
        try:
            return importlib_metadata.version(other)
        except importlib_metadata.PackageNotFoundError:
            continue
    return None


def _requirements(flavor: Flavor, config: dict[str, Any], extra: list[str] | None) -> list[str]:
    """Pinned versions of the libraries the model needs, then the caller's own lines."""
    dists = [*_BASE_DISTRIBUTIONS, *flavor.distributions]
    if config.get("serialization") == "pickle" and flavor.name != "pytorch":
        dists.append("cloudpickle")
    user = [r.strip() for r in extra or [] if r.strip()]
    user_names = {_canonical(r) for r in user}
    pinned = []
    for dist in dict.fromkeys(dists):
        version = _installed_version(dist)
        if _canonical(dist) not in user_names:  # the caller's spec for a library wins
            pinned.append(f"{dist}=={version}" if version else dist)
    return pinned + user


def _canonical(requirement: str) -> str:
    match = _PROJECT_NAME.match(requirement)
    name = match.group(1) if match else requirement
    return re.sub(r"[-_.]+", "-", name).lower()


def _prepare_directory(path: Path) -> bool:
    """Create ``path`` (or accept it empty); True when this call created it."""
    if path.exists():
        if not path.is_dir():
            raise AlreadyExists(f"cannot save a model to {path}: it is a file")
        if any(path.iterdir()):
            raise AlreadyExists(f"cannot save a model to {path}: the directory is not empty")
        return False
    path.mkdir(parents=True)
    return True


def _clear(path: Path, created: bool) -> None:
    """Undo a failed save: the directory was empty or new, so everything in it is ours."""
    if created:
        shutil.rmtree(path, ignore_errors=True)
        return
    for child in path.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _infer(flavor: Flavor, model: Any, config: dict[str, Any], example: Any) -> Signature:
    """The example's signature, with outputs from calling the model on the example."""
    signature = infer_signature(example)
    try:
        output = flavor.wrap(model, config).predict(example)
        outputs = infer_signature(_as_output(output)).inputs
    except Exception as exc:  # the signature is still useful without outputs
        _log.info("could not infer the output signature: %s", exc)
        return signature
    return Signature(inputs=signature.inputs, outputs=outputs)


def save_model(
    model: Any,
    path: str | Path,
    *,
    input_example: Any = None,
    signature: Signature | dict[str, Any] | None = None,
    flavor: str | None = None,
    requirements: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
) -> ModelManifest:
    """Write ``model`` into the directory ``path`` (which must not exist or be empty).

    The flavor is detected from the model unless ``flavor`` names one. With an
    ``input_example`` (DataFrame, ndarray, dict of column -> list, or list of
    records) the example is stored and, unless ``signature`` is given, the
    signature is inferred from it and from the model's predictions on it.
    Returns the manifest written to ``MODEL.yaml``.
    """
    target = Path(path)
    try:
        json.dumps(metadata or {})
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"model metadata must be JSON-serializable: {exc}") from exc
    chosen = get_flavor(flavor) if flavor is not None else FLAVORS[flavor_for(model)]
    if isinstance(signature, dict):
        signature = Signature.from_dict(signature)
    example = normalize_example(input_example)
    created = _prepare_directory(target)
    try:
        config = chosen.save(model, target, input_example=example)
        example_file = write_example(example, target) if example is not None else None
        if signature is None and example is not None:
            signature = _infer(chosen, model, config, example)
        pinned = _requirements(chosen, config, requirements)
        (target / REQUIREMENTS_FILE).write_text("\n".join(pinned) + "\n", encoding="utf-8")
        manifest = ModelManifest(
            format_version=FORMAT_VERSION,
            flavor=chosen.name,
            flavor_config=config,
            signature=signature,
            input_example_file=example_file,
            requirements=pinned,
            python_version=platform.python_version(),
            created_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
            size_bytes=0,
            metadata=dict(metadata or {}),
        )
        # size_bytes counts MODEL.yaml too, whose length depends on size_bytes: iterate
        # until the number written equals the directory's size (two rounds at most in practice).
        for _ in range(5):
            manifest.write(target)
            size = directory_size(target)
            if size == manifest.size_bytes:
                break
            manifest = replace(manifest, size_bytes=size)
    except BaseException:
        _clear(target, created)
        raise
    return manifest


def _as_output(result: Any) -> np.ndarray[Any, Any]:
    """A model's output as an ndarray; a single column/output becomes 1-D."""
    if isinstance(result, pd.DataFrame | pd.Series):
        result = result.to_numpy()
    array = np.asarray(result)
    if array.ndim == 2 and array.shape[1] == 1:
        return array.ravel()
    return array


def _read_stored_example(directory: Path, name: str | None) -> Any:
    if name is None:
        return None
    file = safe_member(directory, name)
    return read_example(file) if file.is_file() else None


class LoadedModel:
    """A model loaded from a directory: signature-checked ``predict`` and its manifest."""

    def __init__(self, manifest: ModelManifest, predictor: Predictor, path: Path) -> None:
        self.manifest = manifest
        self.signature: Signature | None = manifest.signature
        self.flavor: str = manifest.flavor
        self._predictor = predictor
        self._path = path
        # Read now: callers may load from a temporary download that is deleted afterwards.
        self._example = _read_stored_example(path, manifest.input_example_file)

    def __repr__(self) -> str:
        return f"LoadedModel(flavor={self.flavor!r}, path={str(self._path)!r})"

    @property
    def raw_model(self) -> Any:
        """The underlying model object (estimator, Booster, TorchScript module, ...)."""
        return self._predictor.raw

    def _prepare(self, data: Any) -> Any:
        if self.signature is not None:
            return enforce_signature(self.signature, data)
        data = to_frame(data)
        return np.asarray(data) if isinstance(data, list) else data

    def predict(self, data: Any) -> np.ndarray[Any, Any]:
        """Predictions for a DataFrame, ndarray, dict of column -> list, or list of records.

        The input is checked against (and converted to) the signature first; a
        mismatch raises :class:`~modelloop.errors.SignatureMismatch`.
        """
        result: np.ndarray[Any, Any] = _as_output(self._predictor.predict(self._prepare(data)))
        return result

    def predict_proba(self, data: Any) -> np.ndarray[Any, Any]:
        """Class probabilities; :class:`~modelloop.errors.InvalidState` if unsupported."""
        if not self._predictor.has_proba:
            raise InvalidState(
                f"this {self.flavor} model ({type(self.raw_model).__name__}) has no predict_proba"
            )
        result: np.ndarray[Any, Any] = _as_output(
            self._predictor.predict_proba(self._prepare(data))
        )
        return result

    def input_example(self) -> Any:
        """The stored input example (DataFrame or ndarray), or None."""
        example = self._example
        return example.copy() if example is not None else None


def load_model_dir(path: str | Path, *, trusted: bool = False) -> LoadedModel:
    """Load a model directory written by :func:`save_model` or by MLflow (``MLmodel``).

    ``trusted=True`` allows formats
    whose loading can run code from the files (pickles, skops files with
    non-default types); without it they raise
    :class:`~modelloop.errors.UntrustedModel`.
    """
    directory = Path(path)
    if (directory / MANIFEST_FILE).is_file():
        manifest = ModelManifest.read(directory)
        predictor = get_flavor(manifest.flavor).load(
            directory, dict(manifest.flavor_config), trusted=trusted
        )
        return LoadedModel(manifest, predictor, directory)
    if (directory / MLMODEL_FILE).is_file():
        from modelloop.models.mlflow_format import load_mlflow_dir

        manifest, predictor = load_mlflow_dir(directory, trusted=trusted)
        return LoadedModel(manifest, predictor, directory)
    if not directory.is_dir():
        raise NotFound(f"no model directory at {directory}")
    raise InvalidArgument(f"{directory} holds neither {MANIFEST_FILE} nor an MLflow {MLMODEL_FILE}")
