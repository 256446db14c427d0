"""Loading model directories written by the stock MLflow client."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
import yaml
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from modelloop.errors import SignatureMismatch, UntrustedModel
from modelloop.models import ColSpec, load_model_dir
from modelloop.models.mlflow_format import manifest_from_mlmodel

with warnings.catch_warnings():
    # mlflow.pyfunc warns about its own type hints at import time; not ours to fix.
    warnings.simplefilter("ignore")
    import mlflow.lightgbm
    import mlflow.pyfunc
    import mlflow.sklearn
    import mlflow.xgboost
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec as MlflowColSpec
    from mlflow.types import Schema
    from mlflow.types import TensorSpec as MlflowTensorSpec

# MLflow 3.17's example writer compares a pandas 3 string Index with a range, which pandas
# deprecates; the warning is inside MLflow and harmless for these tests.
pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")

MLFLOW_SIG = ModelSignature(
    inputs=Schema([MlflowColSpec("long", "age"), MlflowColSpec("double", "income")]),
    outputs=Schema([MlflowTensorSpec(np.dtype("int64"), (-1,))]),
)


class Doubler(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """A custom transformer skops does not trust by default."""

    def fit(self, x: Any, y: Any = None) -> Doubler:
        return self

    def transform(self, x: Any) -> Any:
        return np.asarray(x) * 2.0


class AddOne(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """A custom pyfunc model (pickled by MLflow)."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        return model_input["income"].to_numpy() + 1


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {"age": rng.integers(18, 80, 80), "income": rng.normal(50_000, 10_000, 80)}
    )
    return frame, (frame["income"] > 50_000).astype(int)


def _save_sklearn(model: Any, path: Path, x: pd.DataFrame, fmt: str, **kwargs: Any) -> None:
    mlflow.sklearn.save_model(
        model,
        str(path),
        input_example=x.head(3),
        signature=MLFLOW_SIG,
        serialization_format=fmt,
        pip_requirements=["scikit-learn"],  # skips MLflow's slow requirement inference
        **kwargs,
    )


def test_cloudpickle_sklearn_needs_trust(data: Any, tmp_path: Path) -> None:
    x, y = data
    model = LogisticRegression(max_iter=500).fit(x, y)
    _save_sklearn(model, tmp_path / "m", x, "cloudpickle")
    with pytest.raises(UntrustedModel, match="trusted=True"):
        load_model_dir(tmp_path / "m")
    loaded = load_model_dir(tmp_path / "m", trusted=True)
    assert loaded.manifest.source_format == "mlflow"
    assert loaded.flavor == "sklearn"
    assert loaded.manifest.metadata["mlflow_version"] == mlflow.__version__
    assert loaded.signature is not None
    assert loaded.signature.inputs == [ColSpec("long", "age"), ColSpec("double", "income")]
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))
    pd.testing.assert_frame_equal(loaded.input_example(), x.head(3).reset_index(drop=True))
    with pytest.raises(SignatureMismatch, match="'age'"):
        loaded.predict(x[["income"]])
    with pytest.raises(SignatureMismatch, match="column 'age' has type double"):
        loaded.predict(x.assign(age=x["age"] + 0.5))


def test_skops_sklearn_loads_without_opt_in(data: Any, tmp_path: Path) -> None:
    x, y = data
    model = LogisticRegression(max_iter=500).fit(x, y)
    _save_sklearn(model, tmp_path / "m", x, "skops")
    loaded = load_model_dir(tmp_path / "m")
    assert loaded.manifest.flavor_config["serialization"] == "skops"
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    # Extra columns are dropped, column order follows the signature.
    shuffled = x.assign(noise=1.0)[["income", "noise", "age"]]
    np.testing.assert_array_equal(loaded.predict(shuffled), model.predict(x))


def test_mlflow_default_serialization_is_skops(data: Any, tmp_path: Path) -> None:
    x, y = data
    model = LogisticRegression(max_iter=500).fit(x, y)
    mlflow.sklearn.save_model(model, str(tmp_path / "m"), pip_requirements=["scikit-learn"])
    mlmodel = yaml.safe_load((tmp_path / "m" / "MLmodel").read_text())
    assert mlmodel["flavors"]["sklearn"]["serialization_format"] == "skops"
    loaded = load_model_dir(tmp_path / "m")
    assert loaded.signature is None and loaded.input_example() is None
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_trusted_types_stored_in_mlmodel_are_not_honoured(data: Any, tmp_path: Path) -> None:
    x, y = data
    model = Pipeline([("d", Doubler()), ("clf", LogisticRegression(max_iter=500))]).fit(x, y)
    doubler = f"{Doubler.__module__}.Doubler"
    _save_sklearn(model, tmp_path / "m", x, "skops", skops_trusted_types=[doubler])
    mlmodel = yaml.safe_load((tmp_path / "m" / "MLmodel").read_text())
    assert mlmodel["flavors"]["sklearn"]["skops_trusted_types"] == [doubler]
    # The allow-list comes from the (possibly crafted) model directory itself.
    with pytest.raises(UntrustedModel, match="Doubler"):
        load_model_dir(tmp_path / "m")
    loaded = load_model_dir(tmp_path / "m", trusted=True)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_manifest_without_loading(data: Any, tmp_path: Path) -> None:
    x, y = data
    _save_sklearn(LogisticRegression().fit(x, y), tmp_path / "m", x, "cloudpickle")
    manifest = manifest_from_mlmodel(tmp_path / "m")  # no trust needed: nothing is unpickled
    assert manifest.flavor == "sklearn"
    assert manifest.input_example_file == "input_example.json"
    assert "scikit-learn" in manifest.requirements
    assert manifest.size_bytes > 0


def test_xgboost_and_lightgbm_mlflow_flavors(data: Any, tmp_path: Path) -> None:
    x, y = data
    xgb_model = xgb.XGBClassifier(n_estimators=4).fit(x, y)
    mlflow.xgboost.save_model(xgb_model, str(tmp_path / "x"), pip_requirements=["xgboost"])
    loaded = load_model_dir(tmp_path / "x")  # native format: no opt-in
    np.testing.assert_array_equal(loaded.predict(x), xgb_model.predict(x))
    np.testing.assert_array_equal(loaded.predict_proba(x), xgb_model.predict_proba(x))
    booster = lgb.train(
        {"objective": "regression", "verbose": -1}, lgb.Dataset(x, label=x["income"]), 5
    )
    mlflow.lightgbm.save_model(booster, str(tmp_path / "l"), pip_requirements=["lightgbm"])
    loaded = load_model_dir(tmp_path / "l")
    np.testing.assert_array_equal(loaded.predict(x), booster.predict(x))


def test_custom_pyfunc_only_when_trusted(data: Any, tmp_path: Path) -> None:
    x, _ = data
    mlflow.pyfunc.save_model(str(tmp_path / "p"), python_model=AddOne(), pip_requirements=[])
    with pytest.raises(UntrustedModel, match="python_function"):
        load_model_dir(tmp_path / "p")
    loaded = load_model_dir(tmp_path / "p", trusted=True)
    assert loaded.flavor == "python"
    np.testing.assert_array_equal(loaded.predict(x), x["income"].to_numpy() + 1)


def test_ndarray_input_example_and_tensor_signature(data: Any, tmp_path: Path) -> None:
    """MLflow 3 stores an ndarray example as a bare nested list and a tensor signature."""
    x, y = data
    features = x.to_numpy(dtype=np.float64)
    model = LogisticRegression(max_iter=500).fit(features, y)
    mlflow.sklearn.save_model(model, str(tmp_path / "m"), input_example=features[:3])
    loaded = load_model_dir(tmp_path / "m")
    np.testing.assert_array_equal(loaded.input_example(), features[:3])
    np.testing.assert_array_equal(loaded.predict(features), model.predict(features))
    with pytest.raises(SignatureMismatch):
        loaded.predict(features[:, :1])
