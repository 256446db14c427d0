"""What a monitor asks of the model versions a deployment served: their predictions
on the reference (the baseline for prediction drift) and, for classifiers with
probabilities, confidence-based performance estimates of a window before its labels
arrive (CBPE calibrated on the reference's labels)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from modelloop.errors import ModelloopError
from modelloop.monitoring.performance import CBPE

if TYPE_CHECKING:
    from modelloop.models.packaging import LoadedModel
    from modelloop.tracking.client import Client

__all__ = ["ServedModels", "outputs_frame"]

_Key = tuple[str, str]
_FAILURES = (ModelloopError, ValueError, TypeError, AttributeError)


def outputs_frame(raw: np.ndarray[Any, Any]) -> pd.DataFrame:
    """Model outputs named as the prediction logs name them (``prediction`` for one
    column, ``prediction_i`` for several)."""
    if raw.ndim <= 1:
        return pd.DataFrame({"prediction": raw.reshape(-1)})
    flat = raw.reshape(len(raw), -1)
    return pd.DataFrame({f"prediction_{i}": flat[:, i] for i in range(flat.shape[1])})


class ServedModels:
    """Served model versions, loaded once per monitor run, with what is derived from
    them on the reference. Failures become ``notes`` (once per version), never errors:
    a monitor still scores data drift and quality without the model."""

    def __init__(
        self, client: Client, reference: pd.DataFrame, columns: list[str], target: str | None
    ) -> None:
        self.client = client
        self.reference = reference
        self.columns = columns
        self.target = target
        self.notes: list[str] = []
        self._models: dict[_Key, LoadedModel | None] = {}
        self._outputs: dict[_Key, pd.DataFrame | None] = {}
        self._cbpe: dict[_Key, tuple[CBPE, list[Any]] | None] = {}

    def _note(self, key: _Key, what: str, exc: BaseException | str) -> None:
        self.notes.append(f"no {what} for {key[0]} v{key[1]}: {exc}")

    def model(self, key: _Key) -> LoadedModel | None:
        """The loaded version (None, with a note, if it cannot be loaded)."""
        if key not in self._models:
            try:
                self._models[key] = self.client.load_model(f"models:/{key[0]}/{key[1]}")
            except _FAILURES as exc:
                self._note(key, "prediction drift or estimated performance", exc)
                self._models[key] = None
        return self._models[key]

    def reference_outputs(self, key: _Key) -> pd.DataFrame | None:
        """The version's predictions on the reference."""
        if key not in self._outputs:
            model = self.model(key)
            self._outputs[key] = None
            if model is not None:
                try:
                    raw = np.asarray(model.predict(self.reference[self.columns]))
                    self._outputs[key] = outputs_frame(raw)
                except _FAILURES as exc:
                    self._note(key, "prediction drift (cannot predict on the reference)", exc)
        return self._outputs[key]

    def _fitted_cbpe(self, key: _Key) -> tuple[CBPE, list[Any]] | None:
        if key in self._cbpe:
            return self._cbpe[key]
        self._cbpe[key] = None
        model = self.model(key)
        if model is None or self.target is None:
            return None
        try:
            classes = list(getattr(model.raw_model, "classes_", []))
            if len(classes) < 2:
                return None  # a regressor, or a classifier that does not name its classes
            proba = np.asarray(model.predict_proba(self.reference[self.columns]), dtype=float)
            labels = self.reference[self.target]
            index = {c: i for i, c in enumerate(classes)}
            known = labels.map(lambda v: index.get(v, -1)).to_numpy()
            rows = known >= 0
            binary = len(classes) == 2
            cbpe = CBPE("binary" if binary else "multiclass")
            scores = proba[rows, 1] if binary else proba[rows]
            cbpe.fit(scores, known[rows])
            self._cbpe[key] = (cbpe, classes)
        except _FAILURES as exc:
            self._note(key, "estimated performance", exc)
        return self._cbpe[key]

    def estimate(self, key: _Key, inputs: pd.DataFrame) -> dict[str, float] | None:
        """CBPE's expected accuracy, precision, recall, f1 and roc_auc of a window's
        rows (None when the version has no probabilities or no reference labels)."""
        fitted = self._fitted_cbpe(key)
        model = self.model(key)
        if fitted is None or model is None or not len(inputs):
            return None
        cbpe, classes = fitted
        try:
            proba = np.asarray(model.predict_proba(inputs), dtype=float)
        except _FAILURES as exc:
            self._note(key, "estimated performance for a window", exc)
            return None
        return cbpe.estimate(proba[:, 1] if len(classes) == 2 else proba)
