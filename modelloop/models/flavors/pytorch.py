"""The ``pytorch`` flavor: ``torch.nn.Module`` stored as TorchScript.

TorchScript files are loaded without unpickling Python objects, so they are safe.
``torch.jit`` is deprecated since torch 2.10 in favour of ``torch.export``, but
``torch.export.load`` unpickles (its docs warn against untrusted files), so
TorchScript remains the safe choice; its DeprecationWarning is silenced locally.
A module that can be neither scripted nor traced falls back to a full
``torch.save`` pickle, which needs the caller's opt-in to load.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelloop.models.flavors.base import Flavor, Predictor, safe_member, top_modules, untrusted

__all__ = ["PyTorchFlavor"]

SCRIPT_FILE = "model.pt"
PICKLE_FILE = "model.pth"


@contextmanager
def _no_jit_deprecation() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r".*torch\.jit.*deprecated", category=DeprecationWarning
        )
        yield


def _to_numpy(data: Any, dtype: str) -> np.ndarray[Any, Any]:
    array = data.to_numpy() if isinstance(data, pd.DataFrame | pd.Series) else np.asarray(data)
    return np.ascontiguousarray(array, dtype=np.dtype(dtype))


def _input_dtype(model: Any, example: Any) -> str:
    """The dtype inputs are converted to before calling the module.

    Integer examples (token ids, indices) keep their dtype; otherwise the module's
    floating parameters decide, since a float64 pandas example fed to a float32
    network would fail; with neither, the example's dtype, else float32.
    """
    example_dtype = None
    if example is not None:
        array = example.to_numpy() if isinstance(example, pd.DataFrame) else np.asarray(example)
        example_dtype = array.dtype if array.dtype.kind in "fiub" else None
    if example_dtype is not None and example_dtype.kind in "iub":
        return example_dtype.name
    params = {str(p.dtype) for p in model.parameters() if p.is_floating_point()}
    if len(params) == 1:
        return params.pop().removeprefix("torch.")
    return example_dtype.name if example_dtype is not None else "float32"


class _TorchPredictor(Predictor):
    """Runs the module on a tensor of the stored input dtype, without autograd."""

    def __init__(self, raw: Any, flavor: str, input_dtype: str) -> None:
        super().__init__(raw, flavor)
        self.input_dtype = input_dtype

    def predict(self, data: Any) -> Any:
        import torch

        tensor = torch.from_numpy(_to_numpy(data, self.input_dtype))
        with torch.no_grad():
            result = self.raw(tensor)
        return result.detach().cpu().numpy()

    @property
    def has_proba(self) -> bool:
        return False


class PyTorchFlavor(Flavor):
    """``torch.nn.Module`` subclasses."""

    name = "pytorch"
    extra = "pytorch"
    distributions = ("torch",)

    def handles(self, model: Any) -> bool:
        return "torch" in top_modules(model) and any(
            c.__name__ == "Module" and c.__module__ == "torch.nn.modules.module"
            for c in type(model).__mro__
        )

    def save(self, model: Any, path: Path, *, input_example: Any = None) -> dict[str, Any]:
        torch = self._require("torch")
        input_dtype = _input_dtype(model, input_example)
        config: dict[str, Any] = {
            "torch_version": str(torch.__version__),
            "input_dtype": input_dtype,
        }
        was_training = model.training
        model.eval()  # dropout/batch-norm must be traced in inference mode
        try:
            scripted = self._script(torch, model, input_example, input_dtype)
        finally:
            model.train(was_training)
        if scripted is not None:
            with _no_jit_deprecation():
                scripted.save(str(path / SCRIPT_FILE))
            config.update(model_file=SCRIPT_FILE, serialization="torchscript")
        else:
            torch.save(model, str(path / PICKLE_FILE))
            config.update(model_file=PICKLE_FILE, serialization="pickle")
        return config

    @staticmethod
    def _script(torch: Any, model: Any, example: Any, dtype: str) -> Any:
        """TorchScript via ``script``, else ``trace`` on the example, else None."""
        with _no_jit_deprecation():
            try:
                return torch.jit.script(model)
            except Exception:  # noqa: S110 - scripting fails on dynamic Python; try tracing
                pass
            if example is None:
                return None
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", torch.jit.TracerWarning)
                try:
                    with torch.no_grad():
                        traced = torch.jit.trace(model, torch.from_numpy(_to_numpy(example, dtype)))
                except Exception:  # tracing fails on some outputs and Python code; pickle instead
                    return None
            # A TracerWarning means the trace baked in a value (a numpy round trip, a Python
            # number) and would silently give wrong answers on other inputs.
            if any(issubclass(w.category, torch.jit.TracerWarning) for w in caught):
                return None
            return traced

    def load(self, path: Path, config: dict[str, Any], *, trusted: bool) -> Predictor:
        torch = self._require("torch")
        file = safe_member(path, config.get("model_file", SCRIPT_FILE))
        if config.get("serialization") == "pickle":
            if not trusted:
                raise untrusted(f"model file '{file.name}' is a pickled torch module")
            model = torch.load(str(file), weights_only=False)
        else:
            with _no_jit_deprecation():
                model = torch.jit.load(str(file), map_location="cpu")
        model.eval()
        return self.wrap(model, config)

    def wrap(self, model: Any, config: dict[str, Any]) -> Predictor:
        return _TorchPredictor(model, self.name, str(config.get("input_dtype", "float32")))
