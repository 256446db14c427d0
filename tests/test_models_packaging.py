"""Packaging rules: trust opt-in, manifest, requirements, examples, directories, imports."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import torch
import xgboost as xgb
import yaml
from sklearn.linear_model import LogisticRegression

from modelloop.errors import (
    AlreadyExists,
    DataCorrupted,
    InvalidArgument,
    InvalidState,
    MissingDependency,
    NotFound,
    SignatureMismatch,
    UntrustedModel,
)
from modelloop.models import (
    FLAVORS,
    ModelManifest,
    Signature,
    TensorSpec,
    flavor_for,
    load_model_dir,
    save_model,
)


class ThresholdModel:
    """A plain Python model: the python flavor pickles it."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold

    def predict(self, data: pd.DataFrame) -> np.ndarray[Any, Any]:
        return (data["income"].to_numpy() > self.threshold).astype(np.int64)


def test_python_model_needs_trust(numeric: Any, tmp_path: Path) -> None:
    x, _ = numeric
    model = ThresholdModel(48_000.0)
    save_model(model, tmp_path / "m", input_example=x.head(3))
    with pytest.raises(UntrustedModel) as info:
        load_model_dir(tmp_path / "m")
    assert "arbitrary code" in info.value.message
    assert "trusted=True" in info.value.message
    assert "MODELLOOP_TRUST_PICKLED_MODELS" in info.value.message
    loaded = load_model_dir(tmp_path / "m", trusted=True)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    with pytest.raises(InvalidState, match="python"):
        loaded.predict_proba(x)


def test_trust_setting_opts_in(numeric: Any, tmp_path: Path) -> None:
    """MODELLOOP_TRUST_PICKLED_MODELS reaches load_model through the settings table."""
    from modelloop import Client, load_settings

    x, _ = numeric
    environ = {
        "MODELLOOP_TRACKING_URI": str(tmp_path / "store"),
        "MODELLOOP_CAPTURE_GIT": "false",
        "MODELLOOP_CAPTURE_ENVIRONMENT": "false",
    }
    plain = Client(settings=load_settings(environ=environ, config_file=None))
    run = plain.create_run(plain.create_experiment("e"))
    info = plain.log_model(run.run_id, ThresholdModel(1.0), "m", input_example=x.head(3))
    with pytest.raises(UntrustedModel):
        plain.load_model(info.model_uri)
    plain.close()
    environ["MODELLOOP_TRUST_PICKLED_MODELS"] = "true"
    trusting = Client(settings=load_settings(environ=environ, config_file=None))
    assert trusting.load_model(info.model_uri).predict(x.head(2)).tolist() == [1, 1]
    with pytest.raises(UntrustedModel):
        trusting.load_model(info.model_uri, trusted=False)
    trusting.close()


def test_flavor_detection() -> None:
    assert flavor_for(xgb.XGBRegressor()) == "xgboost"
    assert flavor_for(lgb.LGBMRegressor()) == "lightgbm"
    assert flavor_for(torch.nn.Linear(1, 1)) == "pytorch"
    assert flavor_for(LogisticRegression()) == "sklearn"
    assert flavor_for(ThresholdModel(0)) == "python"
    assert list(FLAVORS) == ["xgboost", "lightgbm", "pytorch", "sklearn", "python"]
    with pytest.raises(InvalidArgument, match="no predict method"):
        flavor_for(object())


def test_manifest_file_and_requirements(numeric: Any, tmp_path: Path) -> None:
    x, y = numeric
    model = LogisticRegression(max_iter=500).fit(x, y)
    manifest = save_model(
        model,
        tmp_path / "m",
        input_example=x.head(3),
        requirements=["scikit-learn>=1.4", "requests"],
        metadata={"team": "risk"},
    )
    folder = tmp_path / "m"
    on_disk = yaml.safe_load((folder / "MODEL.yaml").read_text())
    assert ModelManifest.from_dict(on_disk) == manifest
    assert manifest.size_bytes == sum(p.stat().st_size for p in folder.iterdir())
    assert manifest.metadata == {"team": "risk"}
    assert manifest.source_format == "modelloop"
    assert manifest.created_at.endswith("+00:00")
    lines = (folder / "requirements.txt").read_text().splitlines()
    assert lines == manifest.requirements
    assert lines[0].startswith("numpy==") and lines[1].startswith("pandas==")
    assert "skops==" in lines[2]
    # The caller's own line for scikit-learn replaces the pinned one.
    assert lines[-2:] == ["scikit-learn>=1.4", "requests"]
    assert not any(line.startswith("scikit-learn==") for line in lines)
    assert manifest.signature is not None
    assert manifest.signature.outputs == TensorSpec(dtype="int64", shape=(-1,))


def test_metadata_must_be_json(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="JSON"):
        save_model(ThresholdModel(0), tmp_path / "m", metadata={"when": object()})
    assert not (tmp_path / "m").exists()


def test_explicit_signature_dict_and_no_example(numeric: Any, tmp_path: Path) -> None:
    x, y = numeric
    model = LogisticRegression(max_iter=500).fit(x, y)
    sig = {"inputs": [{"type": "long", "name": "age"}, {"type": "double", "name": "income"}]}
    manifest = save_model(model, tmp_path / "m", signature=sig)
    assert manifest.input_example_file is None
    loaded = load_model_dir(tmp_path / "m")
    assert loaded.input_example() is None
    assert loaded.signature == Signature.from_dict(sig)
    with pytest.raises(SignatureMismatch, match="'age'"):
        loaded.predict(x[["income"]])


def test_input_example_round_trip_keeps_dtypes(tmp_path: Path) -> None:
    example = pd.DataFrame(
        {
            "f32": np.array([0.1, 1e-8], dtype=np.float32),
            "i32": np.array([1, 2], dtype=np.int32),
            "flag": [True, False],
            "when": pd.to_datetime(["2024-01-01 10:00", "2024-06-30 00:00"]),
            "blob": [b"\x00\x01", b"z"],
            "name": ["a", None],
        }
    )
    save_model(ThresholdModel(0), tmp_path / "m", input_example=example, signature=None)
    loaded = load_model_dir(tmp_path / "m", trusted=True)
    pd.testing.assert_frame_equal(loaded.input_example(), example)
    body = json.loads((tmp_path / "m" / "input_example.json").read_text())
    assert body["columns"] == list(example.columns)
    array = np.arange(6, dtype=np.float32).reshape(2, 3) / 7
    save_model(ThresholdModel(0), tmp_path / "a", input_example=array)
    restored = load_model_dir(tmp_path / "a", trusted=True).input_example()
    assert restored.dtype == np.float32
    np.testing.assert_array_equal(restored, array)


def test_refuses_non_empty_directory_and_cleans_up(numeric: Any, tmp_path: Path) -> None:
    x, y = numeric
    model = LogisticRegression(max_iter=500).fit(x, y)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    with pytest.raises(AlreadyExists, match="not empty"):
        save_model(model, tmp_path / "busy")
    assert [p.name for p in (tmp_path / "busy").iterdir()] == ["keep.txt"]
    (tmp_path / "empty").mkdir()
    save_model(model, tmp_path / "empty")  # an existing empty directory is fine
    assert (tmp_path / "empty" / "MODEL.yaml").is_file()
    # A failing save (example with mixed types) leaves nothing behind.
    bad = pd.DataFrame({"age": [1, "x"], "income": [1.0, 2.0]})
    with pytest.raises(InvalidArgument, match="'age'"):
        save_model(model, tmp_path / "new", input_example=bad)
    assert not (tmp_path / "new").exists()


def test_missing_dependency_names_the_extra(
    numeric: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    x, y = numeric
    model = xgb.XGBClassifier(n_estimators=2).fit(x, y)
    save_model(model, tmp_path / "saved", input_example=x.head(2))
    monkeypatch.setitem(sys.modules, "xgboost", None)
    with pytest.raises(MissingDependency, match=r"pip install 'modelloop\[xgboost\]'"):
        save_model(model, tmp_path / "again")
    assert not (tmp_path / "again").exists()
    with pytest.raises(MissingDependency, match=r"modelloop\[xgboost\]"):
        load_model_dir(tmp_path / "saved")


def test_importing_models_stays_light() -> None:
    code = (
        "import sys, modelloop.models\n"
        "heavy = {'sklearn', 'torch', 'xgboost', 'lightgbm', 'mlflow', 'skops'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_loaded_model_outlives_its_directory(numeric: Any, tmp_path: Path) -> None:
    # The registry loads from a temporary download and deletes it afterwards.
    x, y = numeric
    model = LogisticRegression(max_iter=500).fit(x, y)
    save_model(model, tmp_path / "m", input_example=x.head(2))
    loaded = load_model_dir(tmp_path / "m")
    shutil.rmtree(tmp_path / "m")
    pd.testing.assert_frame_equal(loaded.input_example(), x.head(2).reset_index(drop=True))
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_no_signature_passes_input_through(numeric: Any, tmp_path: Path) -> None:
    x, y = numeric
    model = LogisticRegression(max_iter=500).fit(x, y)
    manifest = save_model(model, tmp_path / "m")
    assert manifest.signature is None
    loaded = load_model_dir(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    records = x.head(3).to_dict(orient="records")
    np.testing.assert_array_equal(loaded.predict(records), model.predict(x.head(3)))


def test_bad_directories(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        load_model_dir(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidArgument, match=r"MODEL\.yaml"):
        load_model_dir(tmp_path / "empty")
    save_model(ThresholdModel(0), tmp_path / "m")
    manifest_file = tmp_path / "m" / "MODEL.yaml"
    body = yaml.safe_load(manifest_file.read_text())
    body["flavor_config"]["model_file"] = "../../etc/passwd"
    manifest_file.write_text(yaml.safe_dump(body))
    with pytest.raises(DataCorrupted, match="outside the model directory"):
        load_model_dir(tmp_path / "m", trusted=True)
    body["format_version"] = 99
    manifest_file.write_text(yaml.safe_dump(body))
    with pytest.raises(InvalidArgument, match="upgrade modelloop"):
        load_model_dir(tmp_path / "m", trusted=True)
