"""Reading MLflow model directories (an ``MLmodel`` file) into modelloop's terms.

Supported: the ``sklearn`` flavor (skops: safe; pickle/cloudpickle: needs trust),
``xgboost`` (native files: safe), ``lightgbm`` (Booster text files: safe; wrapper
models use the sklearn serialization rules), and any other ``python_function``
model through ``mlflow.pyfunc`` when trusted. The ``skops_trusted_types`` list
MLflow stores in the MLmodel is ignored: it comes from the same (possibly crafted)
directory, so the allow-list is computed from the model file instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from modelloop.errors import DataCorrupted, InvalidArgument
from modelloop.models.flavors import get_flavor
from modelloop.models.flavors.base import Predictor, require, safe_member, untrusted
from modelloop.models.flavors.sklearn import load_pickle, load_skops
from modelloop.models.manifest import FORMAT_VERSION, ModelManifest, directory_size
from modelloop.models.signature import Signature

__all__ = ["load_mlflow_dir", "manifest_from_mlmodel", "read_mlmodel"]

MLMODEL_FILE = "MLmodel"


def read_mlmodel(directory: Path) -> dict[str, Any]:
    """The parsed ``MLmodel`` file (safe YAML)."""
    try:
        data = yaml.safe_load((directory / MLMODEL_FILE).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise DataCorrupted(f"{MLMODEL_FILE} is not valid YAML: {exc}") from exc
    if not isinstance(data, Mapping) or not isinstance(data.get("flavors"), Mapping):
        raise DataCorrupted(f"{MLMODEL_FILE} has no 'flavors' mapping")
    return dict(data)


@contextmanager
def _mlflow_allows_pickles() -> Iterator[None]:
    """MLflow refuses to unpickle unless this variable is set; the caller already opted in."""
    name = "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"
    before = os.environ.get(name)
    os.environ[name] = "true"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def _describe(flavors: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """Our flavor name and flavor config for an MLmodel's ``flavors`` block (no loading)."""
    if "sklearn" in flavors:
        conf = dict(flavors["sklearn"])
        fmt = str(conf.get("serialization_format", "pickle"))
        return "sklearn", {
            "model_file": conf.get("pickled_model"),
            "serialization": "skops" if fmt == "skops" else "pickle",
            "sklearn_version": conf.get("sklearn_version"),
            "mlflow_flavor": "sklearn",
        }
    if "xgboost" in flavors:
        conf = dict(flavors["xgboost"])
        return "xgboost", {
            "model_file": conf.get("data"),
            "model_class": str(conf.get("model_class", "Booster")).rsplit(".", 1)[-1],
            "xgboost_version": conf.get("xgb_version"),
            "mlflow_flavor": "xgboost",
        }
    if "lightgbm" in flavors:
        conf = dict(flavors["lightgbm"])
        native = str(conf.get("model_class", "lightgbm.basic.Booster")).endswith(".Booster")
        fmt = str(conf.get("serialization_format", "pickle"))
        return "lightgbm", {
            "model_file": conf.get("data"),
            "model_kind": "booster" if native else "sklearn_wrapper",
            "serialization": "native" if native else "skops" if fmt == "skops" else "pickle",
            "lightgbm_version": conf.get("lgb_version"),
            "mlflow_flavor": "lightgbm",
        }
    pyfunc = flavors.get("python_function")
    if isinstance(pyfunc, Mapping):
        if pyfunc.get("loader_module") == "mlflow.sklearn":
            # Without a sklearn flavor entry MLflow itself assumes a plain pickle.
            return "sklearn", {
                "model_file": pyfunc.get("model_path"),
                "serialization": "pickle",
                "mlflow_flavor": "python_function",
            }
        return "python", {
            "serialization": "mlflow_pyfunc",
            "loader_module": pyfunc.get("loader_module"),
            "mlflow_flavor": "python_function",
        }
    raise InvalidArgument(
        f"unsupported MLflow model: flavors {', '.join(map(str, flavors))}; modelloop reads "
        "sklearn, xgboost, lightgbm and python_function models"
    )


def _load(directory: Path, flavor: str, config: dict[str, Any], *, trusted: bool) -> Predictor:
    """The model described by :func:`_describe`, honouring the trust rules."""
    serialization = config.get("serialization")
    if flavor == "xgboost" or (flavor == "lightgbm" and serialization == "native"):
        return get_flavor(flavor).load(directory, config, trusted=trusted)
    if flavor in ("sklearn", "lightgbm"):
        file = safe_member(directory, config.get("model_file"))
        if serialization == "skops":
            return Predictor(load_skops(file, trusted=trusted, flavor=flavor), flavor)
        # cloudpickle.load reads plain pickles too.
        return Predictor(load_pickle(file, trusted=trusted), flavor)
    if not trusted:
        raise untrusted(
            f"this MLflow python_function model (loader {config.get('loader_module')}) "
            "is loaded by MLflow from pickled Python objects"
        )
    pyfunc_module = require("mlflow.pyfunc", "mlflow", "MLflow python_function")
    with _mlflow_allows_pickles():
        model = pyfunc_module.load_model(str(directory))
    return Predictor(model, flavor)


def _python_version(directory: Path) -> str:
    try:
        env = yaml.safe_load((directory / "python_env.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return ""
    return str(env.get("python", "")) if isinstance(env, Mapping) else ""


def _requirements(directory: Path) -> list[str]:
    try:
        lines = (directory / "requirements.txt").read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def manifest_from_mlmodel(directory: Path) -> ModelManifest:
    """The manifest (``source_format="mlflow"``) of an MLflow model directory, without
    loading the model."""
    mlmodel = read_mlmodel(directory)
    flavor, config = _describe(mlmodel["flavors"])
    metadata = dict(mlmodel.get("metadata") or {})
    signature_block = mlmodel.get("signature")
    signature = None
    if isinstance(signature_block, Mapping):
        try:
            signature = Signature.from_mlflow(signature_block)
        except InvalidArgument as exc:
            # MLflow-only types ("any", arrays, objects) are not validated by MLflow either;
            # the model still loads, without enforcement, and the manifest says why.
            metadata["signature_not_enforced"] = exc.message
    example_info = mlmodel.get("saved_input_example_info")
    example_file = (
        str(example_info["artifact_path"])
        if isinstance(example_info, Mapping) and example_info.get("artifact_path")
        else None
    )
    if mlmodel.get("mlflow_version"):
        metadata.setdefault("mlflow_version", mlmodel["mlflow_version"])
    return ModelManifest(
        format_version=FORMAT_VERSION,
        flavor=flavor,
        flavor_config=config,
        signature=signature,
        input_example_file=example_file,
        requirements=_requirements(directory),
        python_version=_python_version(directory),
        created_at=str(mlmodel.get("utc_time_created", "")),
        size_bytes=directory_size(directory),
        metadata=metadata,
        source_format="mlflow",
    )


def load_mlflow_dir(directory: Path, *, trusted: bool) -> tuple[ModelManifest, Predictor]:
    """Load an MLflow model directory: its manifest and a predictor for the model."""
    manifest = manifest_from_mlmodel(directory)
    predictor = _load(directory, manifest.flavor, dict(manifest.flavor_config), trusted=trusted)
    return manifest, predictor
