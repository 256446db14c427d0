"""Round trips for every flavor: the loaded model predicts exactly what the original did."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import torch
import xgboost as xgb
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from modelloop.errors import (
    DataCorrupted,
    InvalidState,
    SignatureMismatch,
    UntrustedModel,
)
from modelloop.models import (
    TensorSpec,
    load_model_dir,
    save_model,
)


class Doubler(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """A custom transformer: skops stores it but does not trust its type by default."""

    def fit(self, x: Any, y: Any = None) -> Doubler:
        return self

    def transform(self, x: Any) -> Any:
        return np.asarray(x) * 2.0


class NumpyInForward(torch.nn.Module):
    """Neither scriptable nor faithfully traceable (numpy round trip): pickled instead."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(torch.from_numpy(np.tanh(x.detach().numpy())))


def _roundtrip(model: Any, path: Path, example: Any, **kwargs: Any) -> Any:
    manifest = save_model(model, path, input_example=example)
    loaded = load_model_dir(path, **kwargs)
    assert loaded.manifest == manifest
    return loaded


def test_sklearn_logistic_regression_round_trip(numeric: Any, tmp_path: Path) -> None:
    x, y = numeric
    model = LogisticRegression(max_iter=500).fit(x, y)
    loaded = _roundtrip(model, tmp_path / "m", x.head(5))
    assert loaded.flavor == "sklearn"
    assert loaded.manifest.flavor_config["serialization"] == "skops"
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))
    assert isinstance(loaded.raw_model, LogisticRegression)


def test_sklearn_pipeline_with_column_transformer(table: Any, tmp_path: Path) -> None:
    x, y = table
    pipeline = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("onehot", OneHotEncoder(handle_unknown="ignore"), ["city"]),
                        ("scale", StandardScaler(), ["age", "income"]),
                    ]
                ),
            ),
            ("clf", LogisticRegression(max_iter=500)),
        ]
    ).fit(x, y)
    loaded = _roundtrip(pipeline, tmp_path / "m", x.head(5))
    sig = loaded.signature
    assert sig is not None and not isinstance(sig.inputs, TensorSpec)
    assert [(c.name, c.type) for c in sig.inputs] == [
        ("age", "long"),
        ("income", "double"),
        ("city", "string"),
    ]
    np.testing.assert_array_equal(loaded.predict(x), pipeline.predict(x))
    np.testing.assert_array_equal(loaded.predict_proba(x), pipeline.predict_proba(x))
    # Records and dicts go through the same signature enforcement.
    records = x.head(4).to_dict(orient="records")
    np.testing.assert_array_equal(loaded.predict(records), pipeline.predict(x.head(4)))
    columns = {c: x[c].head(4).tolist() for c in reversed(x.columns)}
    np.testing.assert_array_equal(loaded.predict(columns), pipeline.predict(x.head(4)))


def test_xgboost_classifier_round_trip(numeric: Any, tmp_path: Path) -> None:
    x, y = numeric
    model = xgb.XGBClassifier(n_estimators=8, max_depth=3).fit(x, y)
    loaded = _roundtrip(model, tmp_path / "m", x.head(5))
    assert loaded.flavor == "xgboost"
    assert loaded.manifest.flavor_config["model_class"] == "XGBClassifier"
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))


def test_xgboost_booster_regression_round_trip(numeric: Any, tmp_path: Path) -> None:
    x, _ = numeric
    features = x.to_numpy()
    label = features[:, 1] / 1000 + features[:, 0]
    booster = xgb.train({"max_depth": 3}, xgb.DMatrix(features, label=label), num_boost_round=6)
    loaded = _roundtrip(booster, tmp_path / "m", features[:5])
    assert loaded.signature.inputs == TensorSpec(dtype="float64", shape=(-1, 2))
    np.testing.assert_array_equal(loaded.predict(features), booster.predict(xgb.DMatrix(features)))
    with pytest.raises(InvalidState, match="xgboost"):
        loaded.predict_proba(features)


def test_lightgbm_classifier_round_trip(numeric: Any, tmp_path: Path) -> None:
    x, y = numeric
    labels = np.where(y == 1, "yes", "no")  # string classes must come back as strings
    model = lgb.LGBMClassifier(n_estimators=10, verbose=-1).fit(x, labels)
    loaded = _roundtrip(model, tmp_path / "m", x.head(5))
    assert loaded.manifest.flavor_config["model_kind"] == "classifier"
    assert type(loaded.raw_model).__name__ == "Booster"
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))


def test_lightgbm_multiclass_and_regressor_round_trip(numeric: Any, tmp_path: Path) -> None:
    x, _ = numeric
    classes = pd.cut(x["income"], 3, labels=False).to_numpy()
    clf = lgb.LGBMClassifier(n_estimators=5, verbose=-1).fit(x, classes)
    loaded = _roundtrip(clf, tmp_path / "clf", x.head(5))
    np.testing.assert_array_equal(loaded.predict(x), clf.predict(x))
    np.testing.assert_array_equal(loaded.predict_proba(x), clf.predict_proba(x))
    reg = lgb.LGBMRegressor(n_estimators=10, verbose=-1).fit(x, x["income"] * 0.1)
    loaded = _roundtrip(reg, tmp_path / "reg", x.head(5))
    np.testing.assert_array_equal(loaded.predict(x), reg.predict(x))
    with pytest.raises(InvalidState, match="lightgbm"):
        loaded.predict_proba(x)


def test_torch_mlp_round_trip_is_torchscript(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    data = np.random.default_rng(1).normal(size=(50, 4)).astype(np.float32)
    loaded = _roundtrip(net, tmp_path / "m", data[:5])
    assert loaded.manifest.flavor_config["serialization"] == "torchscript"
    with torch.no_grad():
        expected = net(torch.from_numpy(data)).numpy()
    np.testing.assert_array_equal(loaded.predict(data), expected)
    # A DataFrame of the right width is accepted too (tensor signature, float32).
    np.testing.assert_array_equal(loaded.predict(pd.DataFrame(data)), expected)
    with pytest.raises(SignatureMismatch, match=r"\(-1, 4\)"):
        loaded.predict(data[:, :3])


def test_torch_float64_dataframe_example_runs_in_float32(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    frame = pd.DataFrame({"a": [0.5, -1.25, 3.0], "b": [1.0, 2.0, -0.75]})
    manifest = save_model(net, tmp_path / "m", input_example=frame)
    assert manifest.flavor_config["input_dtype"] == "float32"
    assert manifest.signature is not None
    assert manifest.signature.outputs == TensorSpec(dtype="float32", shape=(-1,))
    loaded = load_model_dir(tmp_path / "m")
    with torch.no_grad():
        expected = net(torch.tensor(frame.to_numpy(), dtype=torch.float32)).numpy().ravel()
    np.testing.assert_array_equal(loaded.predict(frame), expected)


def test_torch_untraceable_module_falls_back_to_pickle(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = NumpyInForward()
    data = np.random.default_rng(2).normal(size=(20, 2)).astype(np.float32)
    save_model(net, tmp_path / "m", input_example=data[:3])
    with pytest.raises(UntrustedModel, match="trusted=True"):
        load_model_dir(tmp_path / "m")
    loaded = load_model_dir(tmp_path / "m", trusted=True)
    assert loaded.manifest.flavor_config["serialization"] == "pickle"
    with torch.no_grad():
        expected = net(torch.from_numpy(data)).numpy().ravel()
    np.testing.assert_array_equal(loaded.predict(data), expected)


def test_skops_custom_type_needs_trust(numeric: Any, tmp_path: Path) -> None:
    x, y = numeric
    model = Pipeline([("double", Doubler()), ("clf", LogisticRegression(max_iter=500))]).fit(x, y)
    save_model(model, tmp_path / "m", input_example=x.head(3))
    with pytest.raises(UntrustedModel, match="Doubler"):
        load_model_dir(tmp_path / "m")
    loaded = load_model_dir(tmp_path / "m", trusted=True)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_sklearn_falls_back_to_pickle_when_skops_cannot(numeric: Any, tmp_path: Path) -> None:
    x, y = numeric
    model = Pipeline(
        [("f", FunctionTransformer(lambda a: a / 10)), ("clf", LogisticRegression(max_iter=500))]
    ).fit(x, y)
    manifest = save_model(model, tmp_path / "m", input_example=x.head(3))
    assert manifest.flavor_config["serialization"] == "pickle"
    assert any(r.startswith("cloudpickle==") for r in manifest.requirements)
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "MODEL.yaml",
        "input_example.json",
        "model.pkl",
        "requirements.txt",
    ]
    with pytest.raises(UntrustedModel):
        load_model_dir(tmp_path / "m")
    loaded = load_model_dir(tmp_path / "m", trusted=True)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


@pytest.mark.parametrize(
    "make",
    [
        lambda: RandomForestClassifier(n_estimators=10, random_state=0),
        lambda: GradientBoostingClassifier(n_estimators=10, random_state=0),
        lambda: Pipeline([("scale", StandardScaler()), ("tree", DecisionTreeClassifier())]),
    ],
    ids=["random-forest", "gradient-boosting", "pipeline-tree"],
)
def test_tree_models_load_without_opt_in(make: Any, numeric: Any, tmp_path: Path) -> None:
    """skops does not trust sklearn's Tree (unchecked node indices); modelloop checks
    every node after loading instead, so tree models load safely without trust."""
    x, y = numeric
    model = make().fit(x, y)
    save_model(model, tmp_path / "m", input_example=x.head(3))
    loaded = load_model_dir(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))


def test_a_crafted_tree_is_refused(numeric: Any, tmp_path: Path) -> None:
    import skops.io as sio

    x, y = numeric
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(x, y)
    save_model(model, tmp_path / "m", input_example=x.head(3))
    state = model.tree_.__getstate__()
    state["nodes"]["left_child"][0] = 10**6  # would make predict read out of bounds
    model.tree_.__setstate__(state)
    sio.dump(model, tmp_path / "m" / "model.skops")
    with pytest.raises(DataCorrupted, match="child index"):
        load_model_dir(tmp_path / "m")
    # An explicit opt-in is the caller's word that the file is theirs.
    assert load_model_dir(tmp_path / "m", trusted=True).flavor == "sklearn"


def test_other_untrusted_sklearn_types_still_need_opt_in(numeric: Any, tmp_path: Path) -> None:
    x, y = numeric
    model = HistGradientBoostingClassifier(max_iter=5, random_state=0).fit(x, y)
    save_model(model, tmp_path / "m", input_example=x.head(3))
    with pytest.raises(UntrustedModel, match="TreePredictor"):
        load_model_dir(tmp_path / "m")
    np.testing.assert_array_equal(
        load_model_dir(tmp_path / "m", trusted=True).predict(x), model.predict(x)
    )
