"""Model signatures: what a model takes and returns, inferred from examples and enforced.

Column types use MLflow's ``DataType`` names (``boolean``, ``integer``, ``long``,
``float``, ``double``, ``string``, ``binary``, ``datetime``) so a signature read
from an MLflow ``MLmodel`` file maps one to one. Enforcement only converts when no
information is lost: integers widen to ``long``/``float``/``double`` when every
value is exactly representable; a float never narrows to an integer column.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from modelloop.errors import InvalidArgument, SignatureMismatch
from modelloop.models.dtypes import column_type, is_int, to_frame

__all__ = [
    "COLUMN_TYPES",
    "ColSpec",
    "Signature",
    "TensorSpec",
    "enforce_signature",
    "infer_signature",
    "to_frame",
]

COLUMN_TYPES = ("boolean", "integer", "long", "float", "double", "string", "binary", "datetime")

# The dtype a column has after enforcement (what the model is handed).
_TARGET_DTYPE: dict[str, np.dtype[Any]] = {
    "boolean": np.dtype(bool),
    "integer": np.dtype(np.int32),
    "long": np.dtype(np.int64),
    "float": np.dtype(np.float32),
    "double": np.dtype(np.float64),
}
_INT_RANGE = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
# Integers up to 2**mantissa bits convert to the float type without rounding.
_EXACT_INT_LIMIT = {"float": 2**24, "double": 2**53}


@dataclass(frozen=True)
class ColSpec:
    """One named (or positional, when ``name`` is None) input or output column."""

    type: str
    name: str | None = None
    required: bool = True

    def __post_init__(self) -> None:
        if self.type not in COLUMN_TYPES:
            raise InvalidArgument(
                f"unknown column type {self.type!r}; expected one of {', '.join(COLUMN_TYPES)}"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, MLflow's column layout."""
        out: dict[str, Any] = {"type": self.type, "required": self.required}
        if self.name is not None:
            out["name"] = self.name
        return out

    def label(self) -> str:
        """``'age' (long)`` for error messages."""
        return f"'{self.name}' ({self.type})" if self.name is not None else f"({self.type})"


@dataclass(frozen=True)
class TensorSpec:
    """An ndarray input or output: numpy dtype name and shape, -1 for a variable dimension."""

    dtype: str
    shape: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, MLflow's tensor layout."""
        return {"type": "tensor", "tensor-spec": {"dtype": self.dtype, "shape": list(self.shape)}}


Spec = list[ColSpec] | TensorSpec


def _spec_to_list(spec: Spec) -> list[dict[str, Any]]:
    return [spec.to_dict()] if isinstance(spec, TensorSpec) else [c.to_dict() for c in spec]


def _spec_from_list(items: list[dict[str, Any]]) -> Spec:
    if items and items[0].get("type") == "tensor":
        if len(items) != 1:
            raise InvalidArgument("signatures with several named tensors are not supported")
        tensor = items[0]["tensor-spec"]
        return TensorSpec(dtype=str(tensor["dtype"]), shape=tuple(int(d) for d in tensor["shape"]))
    return [
        ColSpec(type=str(c["type"]), name=c.get("name"), required=bool(c.get("required", True)))
        for c in items
    ]


@dataclass(frozen=True)
class Signature:
    """The inputs (columns or one tensor) a model accepts and, when known, its outputs."""

    inputs: list[ColSpec] | TensorSpec
    outputs: list[ColSpec] | TensorSpec | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form: ``{"inputs": [...], "outputs": [...] | None}``."""
        return {
            "inputs": _spec_to_list(self.inputs),
            "outputs": None if self.outputs is None else _spec_to_list(self.outputs),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signature:
        """Inverse of :meth:`to_dict`."""
        outputs = data.get("outputs")
        return cls(
            inputs=_spec_from_list(list(data["inputs"])),
            outputs=None if outputs is None else _spec_from_list(list(outputs)),
        )

    @classmethod
    def from_mlflow(cls, data: Mapping[str, Any]) -> Signature:
        """Parse the ``signature:`` block of an MLflow ``MLmodel`` file (JSON strings)."""
        try:
            inputs = json.loads(data["inputs"]) if isinstance(data["inputs"], str) else None
            raw_out = data.get("outputs")
            outputs = json.loads(raw_out) if isinstance(raw_out, str) else None
        except (KeyError, json.JSONDecodeError) as exc:
            raise InvalidArgument(f"malformed MLflow signature: {exc}") from exc
        if not isinstance(inputs, list):
            raise InvalidArgument("malformed MLflow signature: 'inputs' is not a JSON list")
        return cls.from_dict({"inputs": inputs, "outputs": outputs})


# -- inference ---------------------------------------------------------------------------------


def _infer_spec(data: Any) -> Spec:
    data = to_frame(data)
    if isinstance(data, pd.DataFrame):
        specs = []
        for name in data.columns:
            col_type = column_type(data[name])
            if col_type is None:
                raise InvalidArgument(
                    f"cannot infer a type for column '{name}' (dtype {data[name].dtype}): "
                    "its values mix types; pass a signature explicitly"
                )
            specs.append(ColSpec(type=col_type, name=str(name)))
        return specs
    if isinstance(data, pd.Series):
        col_type = column_type(data)
        if col_type is None:
            raise InvalidArgument(f"cannot infer a type for values of dtype {data.dtype}")
        return [ColSpec(type=col_type, name=None if data.name is None else str(data.name))]
    array = np.asarray(data)
    if array.ndim == 0:
        raise InvalidArgument("cannot infer a signature from a scalar; pass an array or table")
    return TensorSpec(dtype=array.dtype.name, shape=(-1, *array.shape[1:]))


def infer_signature(input_example: Any, output: Any = None) -> Signature:
    """Infer a signature from an input example and, optionally, the model's output on it.

    A DataFrame (or dict of column -> list, or list of record dicts) gives a column
    signature; an ndarray gives a tensor signature with a variable first dimension.
    """
    inputs = _infer_spec(input_example)
    return Signature(inputs=inputs, outputs=None if output is None else _infer_spec(output))


# -- enforcement -------------------------------------------------------------------------------


def _mismatch(name: Any, actual: str, expected: str) -> SignatureMismatch:
    return SignatureMismatch(
        f"column '{name}' has type {actual}, signature expects {expected}",
        column=str(name),
        actual=actual,
        expected=expected,
    )


def _enforce_column(name: Any, values: pd.Series, expected: str) -> pd.Series:
    """``values`` converted to the ``expected`` column type, or SignatureMismatch."""
    actual = column_type(values)
    label = actual or f"mixed values ({values.dtype})"
    if expected in ("string", "binary"):
        if actual != expected and not (actual is None and values.isna().all()):
            raise _mismatch(name, label, expected)
        return values
    if expected == "datetime":
        if actual == "datetime":
            return values
        if actual == "string":
            try:
                return pd.Series(pd.to_datetime(values), index=values.index, name=values.name)
            except (ValueError, TypeError) as exc:
                raise SignatureMismatch(
                    f"column '{name}' has strings that do not parse as datetimes: {exc}",
                    column=str(name),
                ) from exc
        raise _mismatch(name, label, expected)
    if expected == "boolean":
        if actual != "boolean":
            raise _mismatch(name, label, expected)
        if values.isna().any():
            raise SignatureMismatch(f"column '{name}' has missing values", column=str(name))
        return values.astype(bool)
    return _enforce_numeric(name, values, actual, label, expected)


def _enforce_numeric(
    name: Any, values: pd.Series, actual: str | None, label: str, expected: str
) -> pd.Series:
    target = _TARGET_DTYPE[expected]
    if actual in ("integer", "long") and values.isna().any():
        # A nullable integer column with holes: the nulls cannot become integers or exact floats.
        raise SignatureMismatch(f"column '{name}' has missing values", column=str(name))
    if actual in ("integer", "long"):
        ints = values.to_numpy(dtype=object) if values.dtype == object else values.to_numpy()
        if expected in _INT_RANGE:
            lo, hi = _INT_RANGE[expected]
            if np.can_cast(ints.dtype, target, casting="safe") or _all_within(ints, lo, hi):
                return pd.Series(ints.astype(target), index=values.index, name=values.name)
        elif _int_fits_float(ints.dtype, target) or _all_within(
            ints, -_EXACT_INT_LIMIT[expected], _EXACT_INT_LIMIT[expected]
        ):
            return pd.Series(ints.astype(target), index=values.index, name=values.name)
        raise SignatureMismatch(
            f"column '{name}' has {label} values that do not fit {expected} without loss",
            column=str(name),
        )
    if actual in ("float", "double") and expected in ("float", "double"):
        floats = values.to_numpy(dtype=np.float64) if values.dtype == object else values.to_numpy()
        if values.dtype == object and not all(
            not is_int(v) or abs(int(v)) <= _EXACT_INT_LIMIT["double"] for v in values.tolist()
        ):
            raise SignatureMismatch(
                f"column '{name}' has integers too large for {expected}", column=str(name)
            )
        if np.can_cast(floats.dtype, target, casting="safe"):
            return pd.Series(floats.astype(target), index=values.index, name=values.name)
    raise _mismatch(name, label, expected)


def _int_fits_float(dtype: np.dtype[Any], target: np.dtype[Any]) -> bool:
    """Whether every value of integer ``dtype`` is exact in float ``target``.

    Not ``np.can_cast(..., "safe")``: numpy calls int64 -> float64 safe, but it rounds
    integers above 2**53.
    """
    mantissa = {2: 11, 4: 24, 8: 53}.get(target.itemsize, 0)
    return dtype.kind in "iu" and dtype.itemsize * 8 <= mantissa


def _all_within(values: np.ndarray[Any, Any], lo: int, hi: int) -> bool:
    if values.dtype.kind in "iu":
        info = np.iinfo(values.dtype)
        # Clip the bounds to the dtype so numpy compares without overflowing.
        return bool(np.all((values >= max(lo, info.min)) & (values <= min(hi, info.max))))
    return all(lo <= int(v) <= hi for v in values.tolist())  # Python ints in an object column


def _enforce_columns(specs: list[ColSpec], data: Any) -> pd.DataFrame:
    if isinstance(data, pd.Series):
        data = data.to_frame()
    if not isinstance(data, pd.DataFrame):
        array = np.asarray(data)
        if array.ndim == 1 and len(specs) == 1:
            array = array.reshape(-1, 1)
        if array.ndim != 2 or array.shape[1] != len(specs):
            raise SignatureMismatch(
                f"input array has shape {array.shape}, the model signature expects "
                f"{len(specs)} column(s): {', '.join(s.label() for s in specs)}"
            )
        names = [s.name if s.name is not None else i for i, s in enumerate(specs)]
        data = pd.DataFrame({n: array[:, i] for i, n in enumerate(names)})
    positional = all(s.name is None for s in specs)
    if positional:
        if data.shape[1] != len(specs):
            raise SignatureMismatch(
                f"input has {data.shape[1]} column(s), the model signature expects {len(specs)}"
            )
        pairs = list(zip(data.columns, specs, strict=True))
    else:
        missing = [s for s in specs if s.required and s.name not in data.columns]
        if missing:
            plural = "column" if len(missing) == 1 else "columns"
            raise SignatureMismatch(
                f"input is missing {plural} {', '.join(s.label() for s in missing)} "
                "required by the model signature",
                missing=[s.name for s in missing],
            )
        # Extra columns are dropped and the rest reordered to signature order.
        pairs = [(s.name, s) for s in specs if s.name in data.columns]
        # Fast path (the serving hot path): every column already has exactly the
        # declared numeric or boolean dtype, so there is nothing to check or convert.
        dtypes = dict(zip(data.columns.tolist(), data.dtypes.tolist(), strict=True))
        if len(dtypes) == data.shape[1] and all(
            dtypes[col] == _TARGET_DTYPE.get(spec.type) for col, spec in pairs
        ):
            names = [col for col, _ in pairs]
            frame: pd.DataFrame = data if list(data.columns) == names else data[names]
            return frame
    return pd.DataFrame(
        {col: _enforce_column(col, data[col], spec.type) for col, spec in pairs},
        index=data.index,
    )


def _enforce_tensor(spec: TensorSpec, data: Any) -> np.ndarray[Any, Any]:
    array = data.to_numpy() if isinstance(data, pd.DataFrame | pd.Series) else np.asarray(data)
    shape_ok = array.ndim == len(spec.shape) and all(
        want in (-1, got) for want, got in zip(spec.shape, array.shape, strict=True)
    )
    if not shape_ok:
        raise SignatureMismatch(
            f"input has shape {tuple(array.shape)}, the model signature expects "
            f"{tuple(spec.shape)} (-1 = any size)",
            actual=list(array.shape),
            expected=list(spec.shape),
        )
    target = np.dtype(spec.dtype)
    if array.dtype.kind in "iu" and target.kind == "f":
        limit = {4: 2**24, 8: 2**53}.get(target.itemsize, 0)
        if _int_fits_float(array.dtype, target) or _all_within(array.ravel(), -limit, limit):
            return array.astype(target)  # every integer is exactly representable
    elif array.dtype == target or np.can_cast(array.dtype, target, casting="safe"):
        return array.astype(target, copy=False)
    raise SignatureMismatch(
        f"input has dtype {array.dtype}, the model signature expects {target} "
        "(only lossless conversions are made)",
        actual=str(array.dtype),
        expected=str(target),
    )


def enforce_signature(signature: Signature, data: Any) -> Any:
    """Check ``data`` against ``signature.inputs`` and convert it to the declared types.

    Accepts a DataFrame, a dict of column -> values, a list of record dicts or an
    ndarray. Returns a DataFrame (column signature: extra columns dropped, columns
    in signature order) or an ndarray (tensor signature). Raises
    :class:`~modelloop.errors.SignatureMismatch` naming the offending column.
    """
    data = to_frame(data)
    if isinstance(signature.inputs, TensorSpec):
        return _enforce_tensor(signature.inputs, data)
    return _enforce_columns(signature.inputs, data)
