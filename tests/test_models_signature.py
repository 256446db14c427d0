"""Signature inference, (de)serialization and enforcement."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from modelloop.errors import InvalidArgument, SignatureMismatch
from modelloop.models import ColSpec, Signature, TensorSpec, enforce_signature, infer_signature

SIG = Signature(
    inputs=[
        ColSpec("long", "age"),
        ColSpec("double", "income"),
        ColSpec("string", "city"),
        ColSpec("boolean", "member", required=False),
    ]
)


def test_infer_from_dataframe() -> None:
    frame = pd.DataFrame(
        {
            "i8": np.array([1], dtype=np.int8),
            "i32": np.array([1], dtype=np.int32),
            "i64": [1],
            "f32": np.array([1.0], dtype=np.float32),
            "f64": [1.0],
            "s": ["x"],
            "o": pd.Series(["y"], dtype=object),
            "b": [True],
            "raw": [b"\x00"],
            "t": pd.to_datetime(["2024-01-01"]),
            "cat": pd.Categorical(["a"]),
        }
    )
    sig = infer_signature(frame, output=np.array([0.5]))
    assert isinstance(sig.inputs, list)
    assert {c.name: c.type for c in sig.inputs} == {
        "i8": "integer",
        "i32": "integer",
        "i64": "long",
        "f32": "float",
        "f64": "double",
        "s": "string",
        "o": "string",
        "b": "boolean",
        "raw": "binary",
        "t": "datetime",
        "cat": "string",
    }
    assert sig.outputs == TensorSpec(dtype="float64", shape=(-1,))


def test_infer_from_ndarray_dict_and_records() -> None:
    sig = infer_signature(np.zeros((3, 4, 2), dtype=np.float32))
    assert sig.inputs == TensorSpec(dtype="float32", shape=(-1, 4, 2))
    by_dict = infer_signature({"a": [1, 2], "b": ["x", "y"]})
    by_records = infer_signature([{"a": 1, "b": "x"}, {"a": 2, "b": "y"}])
    assert by_dict == by_records
    assert by_dict.inputs == [ColSpec("long", "a"), ColSpec("string", "b")]
    out = infer_signature(np.zeros((2, 1)), output=pd.Series([1, 2], name="score"))
    assert out.outputs == [ColSpec("long", "score")]
    with pytest.raises(InvalidArgument, match="'mixed'"):
        infer_signature(pd.DataFrame({"mixed": [1, "a"]}))


def test_signature_dict_and_mlflow_forms() -> None:
    sig = Signature(inputs=SIG.inputs, outputs=TensorSpec("int64", (-1,)))
    as_json = json.loads(json.dumps(sig.to_dict()))
    assert Signature.from_dict(as_json) == sig
    mlflow_block = {
        "inputs": json.dumps([c.to_dict() for c in SIG.inputs]),
        "outputs": '[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 4]}}]',
        "params": None,
    }
    parsed = Signature.from_mlflow(mlflow_block)
    assert parsed.inputs == SIG.inputs
    assert parsed.outputs == TensorSpec("float64", (-1, 4))
    with pytest.raises(InvalidArgument, match="'any'"):
        Signature.from_mlflow({"inputs": '[{"type": "any", "required": true}]'})


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "city": ["paris", "lyon"],
            "extra": [1, 2],
            "income": [1.5, 2.5],
            "age": np.array([30, 40], dtype=np.int32),
        }
    )


def test_enforce_reorders_drops_extras_and_widens() -> None:
    out = enforce_signature(SIG, _frame())
    assert list(out.columns) == ["age", "income", "city"]  # optional 'member' absent: fine
    assert out["age"].dtype == np.int64  # int32 -> long
    assert out["city"].tolist() == ["paris", "lyon"]
    # An integer column where a double is expected is widened.
    ints = _frame().assign(income=[1, 2])
    widened = enforce_signature(SIG, ints)
    assert widened["income"].dtype == np.float64
    assert widened["income"].tolist() == [1.0, 2.0]


def test_missing_column_names_it() -> None:
    with pytest.raises(SignatureMismatch) as info:
        enforce_signature(SIG, _frame().drop(columns=["age"]))
    assert info.value.message == (
        "input is missing column 'age' (long) required by the model signature"
    )
    assert info.value.code == "SIGNATURE_MISMATCH"
    with pytest.raises(SignatureMismatch, match=r"columns 'age' \(long\), 'city' \(string\)"):
        enforce_signature(SIG, _frame().drop(columns=["age", "city"]))


def test_wrong_types_name_the_column() -> None:
    with pytest.raises(SignatureMismatch) as info:
        enforce_signature(SIG, _frame().assign(age=[30.5, 40.0]))
    assert info.value.message == "column 'age' has type double, signature expects long"
    with pytest.raises(SignatureMismatch, match="column 'income' has type string"):
        enforce_signature(SIG, _frame().assign(income=["a", "b"]))
    with pytest.raises(SignatureMismatch, match="column 'city' has type long"):
        enforce_signature(SIG, _frame().assign(city=[1, 2]))
    with pytest.raises(SignatureMismatch, match="column 'member' has type long"):
        enforce_signature(SIG, _frame().assign(member=[1, 0]))
    too_big = _frame().assign(income=[2**60, 1])
    with pytest.raises(SignatureMismatch, match=r"'income'.*without loss"):
        enforce_signature(SIG, too_big)


def test_object_columns_convert_when_lossless() -> None:
    frame = _frame().astype({"age": object, "income": object})
    frame["income"] = pd.Series([1, 2.5], dtype=object)
    out = enforce_signature(SIG, frame)
    assert out["age"].dtype == np.int64 and out["age"].tolist() == [30, 40]
    assert out["income"].dtype == np.float64 and out["income"].tolist() == [1.0, 2.5]
    records = [{"age": 1, "income": 2, "city": "x", "member": True}]
    out = enforce_signature(SIG, records)
    assert out.dtypes.tolist() == [np.int64, np.float64, out["city"].dtype, np.bool_]


def test_datetime_strings_parse() -> None:
    sig = Signature(inputs=[ColSpec("datetime", "when")])
    out = enforce_signature(sig, {"when": ["2024-01-01", "2024-02-03"]})
    assert out["when"].dt.month.tolist() == [1, 2]
    with pytest.raises(SignatureMismatch, match="'when'"):
        enforce_signature(sig, {"when": ["not a date"]})


def test_ndarray_against_column_signature() -> None:
    sig = Signature(inputs=[ColSpec("double", "a"), ColSpec("double", "b")])
    out = enforce_signature(sig, np.array([[1.0, 2.0], [3.0, 4.0]]))
    assert list(out.columns) == ["a", "b"]
    assert out["b"].tolist() == [2.0, 4.0]
    with pytest.raises(SignatureMismatch, match=r"shape \(2, 3\).*2 column"):
        enforce_signature(sig, np.zeros((2, 3)))


def test_tensor_signature_checks_shape_and_dtype() -> None:
    sig = Signature(inputs=TensorSpec("float32", (-1, 3)))
    out = enforce_signature(sig, np.ones((5, 3), dtype=np.float16))
    assert out.dtype == np.float32
    ints = enforce_signature(sig, [[1, 2, 3]])
    assert ints.dtype == np.float32 and ints.tolist() == [[1.0, 2.0, 3.0]]
    with pytest.raises(SignatureMismatch, match=r"shape \(5, 4\).*\(-1, 3\)"):
        enforce_signature(sig, np.ones((5, 4), dtype=np.float32))
    with pytest.raises(SignatureMismatch, match=r"dtype float64.*float32"):
        enforce_signature(sig, np.ones((5, 3)))
    with pytest.raises(SignatureMismatch, match="shape"):
        enforce_signature(sig, np.ones(3, dtype=np.float32))
    # int64 -> float32 only when every value is exact (numpy's "safe" rule would round).
    assert enforce_signature(sig, np.array([[2**24, 0, -(2**24)]])).dtype == np.float32
    with pytest.raises(SignatureMismatch, match="dtype int64"):
        enforce_signature(sig, np.array([[2**24 + 1, 0, 0]]))


def test_unknown_column_type_rejected() -> None:
    with pytest.raises(InvalidArgument, match="'decimal'"):
        ColSpec("decimal", "x")
