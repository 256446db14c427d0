"""Column and dataset drift between a reference and a current data frame.

:func:`dataset_drift` follows Evidently's data-drift report: one test per column
(picked by :func:`~modelloop.monitoring.stattests.default_test` unless given), and
the dataset drifts when ``share_drifted >= drift_share``. :func:`learn_threshold`
adds NannyML-style thresholds learned from the reference's own chunk-to-chunk
variability, so that a large sample does not alert on an irrelevant shift.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from modelloop.errors import InvalidArgument
from modelloop.monitoring.column_types import (
    ColumnType,
    infer_column_type,
    infer_column_types,
    validate_column_type,
)
from modelloop.monitoring.samples import (
    Sample,
    SamplePair,
    combined_unique,
    learn_from_values,
    make_sample,
    prepare_values,
)
from modelloop.monitoring.stattests import StatKind, default_test, get_stattest

__all__ = [
    "ColumnDrift",
    "DatasetDrift",
    "PreparedColumn",
    "column_drift",
    "dataset_drift",
    "drift_between",
    "learn_threshold",
]

Status = Literal["ok", "not enough data"]


@dataclass(frozen=True)
class ColumnDrift:
    """Drift of one column: the test used, its value and threshold, and the verdict.

    ``status`` is ``"not enough data"`` when a sample has too few non-missing values to
    test; ``value`` is then ``None`` and ``drifted`` is False.
    """

    column: str
    column_type: ColumnType
    stattest: str
    kind: StatKind
    value: float | None
    threshold: float
    drifted: bool
    status: Status
    n_unique: int
    reference_rows: int
    current_rows: int
    reference_missing: int
    current_missing: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (NaN-free: a missing value is ``None``)."""
        return asdict(self)


@dataclass(frozen=True)
class DatasetDrift:
    """Per-column drift plus Evidently's dataset verdict.

    ``share_drifted`` is drifted columns over *tested* columns (columns with "not
    enough data" are left out of both counts); ``dataset_drift`` is
    ``share_drifted >= drift_share`` and False when no column could be tested.
    """

    columns: dict[str, ColumnDrift] = field(default_factory=dict)
    n_tested: int = 0
    n_drifted: int = 0
    share_drifted: float = 0.0
    drift_share: float = 0.5
    dataset_drift: bool = False

    @classmethod
    def from_columns(cls, columns: dict[str, ColumnDrift], drift_share: float) -> DatasetDrift:
        """The dataset verdict over per-column results (in report order)."""
        tested = [r for r in columns.values() if r.status == "ok"]
        n_drifted = sum(r.drifted for r in tested)
        share = n_drifted / len(tested) if tested else 0.0
        return cls(
            columns=columns,
            n_tested=len(tested),
            n_drifted=n_drifted,
            share_drifted=share,
            drift_share=drift_share,
            dataset_drift=bool(tested) and share >= drift_share,
        )

    @property
    def drifted_columns(self) -> list[str]:
        """Names of the drifted columns, in report order."""
        return [name for name, result in self.columns.items() if result.drifted]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of the whole report."""
        return {
            "columns": {name: result.to_dict() for name, result in self.columns.items()},
            "n_tested": self.n_tested,
            "n_drifted": self.n_drifted,
            "share_drifted": self.share_drifted,
            "drift_share": self.drift_share,
            "dataset_drift": self.dataset_drift,
        }


def column_drift(
    reference: pd.Series,
    current: pd.Series,
    *,
    column_type: str | None = None,
    stattest: str | None = None,
    threshold: float | None = None,
) -> ColumnDrift:
    """Test one column for drift between ``reference`` and ``current``.

    ``column_type`` defaults to the type inferred from ``reference``; ``stattest`` to
    Evidently's default for that type, the combined number of distinct values and
    the reference row count; ``threshold`` to the test's default.
    """
    name = str(reference.name if reference.name is not None else current.name)
    kind = (
        validate_column_type(column_type, name)
        if column_type is not None
        else infer_column_type(reference)
    )
    ref_values, ref_missing = prepare_values(reference, kind, name)
    cur_values, cur_missing = prepare_values(current, kind, name)
    return drift_between(
        PreparedColumn(name, kind, make_sample(ref_values), ref_missing),
        PreparedColumn(name, kind, make_sample(cur_values), cur_missing),
        stattest=stattest,
        threshold=threshold,
    )


@dataclass(frozen=True, eq=False)
class PreparedColumn:
    """One column's prepared sample and how many missing values were dropped from it."""

    name: str
    column_type: ColumnType
    sample: Sample
    missing: int


def drift_between(
    reference: PreparedColumn,
    current: PreparedColumn,
    *,
    stattest: str | None = None,
    threshold: float | Callable[[str], float | None] | None = None,
) -> ColumnDrift:
    """:func:`column_drift` on prepared columns (see :mod:`~modelloop.monitoring.samples`).

    ``threshold`` may also be a callable from the chosen test's name to a threshold,
    which is how learned thresholds follow the test picked for this current sample.
    """
    name, kind = reference.name, reference.column_type
    ref, cur = reference.sample, current.sample
    pair = SamplePair(ref, cur)
    n_unique = pair.n_unique()
    test = get_stattest(stattest or default_test(kind, n_unique, ref.size))
    if test.numeric_only and kind not in ("numeric", "datetime"):
        raise InvalidArgument(
            f"stattest {test.name!r} needs a numeric column; {name!r} is {kind}",
            column=name,
            stattest=test.name,
        )
    common: dict[str, Any] = {
        "column": name,
        "column_type": kind,
        "stattest": test.name,
        "kind": test.kind,
        "n_unique": n_unique,
        "reference_rows": ref.size,
        "current_rows": cur.size,
        "reference_missing": reference.missing,
        "current_missing": current.missing,
    }
    if callable(threshold):
        threshold = threshold(test.name)
    used_threshold = test.default_threshold if threshold is None else float(threshold)
    if ref.size < test.min_rows or cur.size < test.min_rows:
        return ColumnDrift(
            value=None,
            threshold=used_threshold,
            drifted=False,
            status="not enough data",
            **common,
        )
    result = pair.compare(test, threshold=used_threshold)
    return ColumnDrift(
        value=result.value,
        threshold=result.threshold,
        drifted=result.drifted,
        status="ok",
        **common,
    )


def dataset_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    column_types: Mapping[str, str] | None = None,
    stattests: Mapping[str, str] | None = None,
    thresholds: Mapping[str, float] | Literal["learned"] | None = None,
    drift_share: float = 0.5,
) -> DatasetDrift:
    """Test every column (or ``columns``) and decide dataset drift as Evidently does.

    ``column_types``, ``stattests`` and ``thresholds`` map column names to overrides.
    ``thresholds="learned"`` uses :func:`learn_threshold` on each reference column
    instead of fixed defaults. A compared column missing from ``current`` (or from
    ``reference``) raises ``InvalidArgument`` naming it.
    """
    if not 0 < drift_share <= 1:
        raise InvalidArgument(f"drift_share must be in (0, 1], got {drift_share}")
    names = [str(c) for c in (reference.columns if columns is None else columns)]
    for frame, label in ((reference, "reference"), (current, "current")):
        missing = [c for c in names if c not in frame.columns]
        if missing:
            raise InvalidArgument(
                f"columns missing from {label}: {', '.join(missing)}", columns=missing
            )
    for label, mapping in (("stattests", stattests), ("thresholds", thresholds)):
        if isinstance(mapping, Mapping):
            unknown = sorted(set(mapping) - set(names))
            if unknown:
                raise InvalidArgument(
                    f"{label} names columns that are not compared: {', '.join(unknown)}",
                    columns=unknown,
                )
    if isinstance(thresholds, str) and thresholds != "learned":
        raise InvalidArgument(f"thresholds must be a mapping or 'learned', got {thresholds!r}")
    types = infer_column_types(reference, names, column_types)
    stattests = stattests or {}
    results: dict[str, ColumnDrift] = {}
    for name in names:
        stattest = stattests.get(name)
        threshold: float | None = None
        if thresholds == "learned":
            if stattest is None:
                stattest = _default_for(reference[name], current[name], types[name])
            threshold = learn_threshold(reference[name], stattest, column_type=types[name])
        elif thresholds is not None:
            threshold = thresholds.get(name)
        results[name] = column_drift(
            reference[name].rename(name),
            current[name].rename(name),
            column_type=types[name],
            stattest=stattest,
            threshold=threshold,
        )
    return DatasetDrift.from_columns(results, drift_share)


def _default_for(reference: pd.Series, current: pd.Series, kind: ColumnType) -> str:
    name = str(reference.name)
    ref = make_sample(prepare_values(reference, kind, name)[0])
    cur = make_sample(prepare_values(current, kind, name)[0])
    return default_test(kind, combined_unique(ref, cur), ref.size)


def learn_threshold(
    reference: pd.Series,
    stattest: str,
    *,
    chunks: int = 10,
    std_multiplier: float = 3.0,
    column_type: str | None = None,
) -> float:
    """A threshold learned from the reference's own variability (NannyML style).

    The reference (missing values dropped, row order kept, so chunks are periods when
    the rows are in time order) is split into ``chunks`` contiguous chunks; each chunk
    is tested as a current sample against the whole reference. For a distance the threshold is
    ``mean + std_multiplier * std`` of the chunk values (NannyML's upper bound). For a
    p-value test it is ``mean - std_multiplier * std`` floored at 1e-12: chunk p-values
    are spread over (0, 1], so with the default multiplier the floor usually applies
    and the test only alerts on overwhelming evidence.
    """
    if chunks < 2:
        raise InvalidArgument(f"chunks must be at least 2, got {chunks}")
    if not np.isfinite(std_multiplier) or std_multiplier < 0:
        raise InvalidArgument(f"std_multiplier must be >= 0, got {std_multiplier}")
    name = str(reference.name)
    kind = (
        validate_column_type(column_type, name)
        if column_type is not None
        else infer_column_type(reference)
    )
    test = get_stattest(stattest)
    values, _ = prepare_values(reference, kind, name)
    return learn_from_values(
        values,
        make_sample(values),
        test,
        name=name,
        chunks=chunks,
        std_multiplier=std_multiplier,
    )
