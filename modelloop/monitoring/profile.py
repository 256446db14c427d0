"""A reference fitted once, then compared with many current windows.

:func:`~modelloop.monitoring.drift.dataset_drift` prepares the reference again on every
call. A monitor scores window after window against one reference, so
:class:`ReferenceProfile` prepares each reference column once (finite numbers sorted,
their std, category counts, learned thresholds) and keeps only that. Each window is then
prepared and tested one column at a time, so the peak memory is the fitted reference
plus one current column, whether the window comes from a data frame or is streamed from
a Parquet file column by column.

``profile.drift(current)`` is ``dataset_drift(reference, current, ...)`` with the
options given to :meth:`ReferenceProfile.fit`: same tests, same verdicts, same values.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from typing import Any, Literal

import pandas as pd

from modelloop.errors import InvalidArgument
from modelloop.monitoring.column_types import (
    ColumnType,
    infer_column_type,
    validate_column_type,
)
from modelloop.monitoring.drift import ColumnDrift, DatasetDrift, PreparedColumn, drift_between
from modelloop.monitoring.samples import (
    NumericSample,
    learn_from_values,
    make_sample,
    prepare_values,
)
from modelloop.monitoring.stattests import default_test, get_stattest

__all__ = ["ReferenceProfile"]

Thresholds = Mapping[str, float] | Literal["learned"] | None
ColumnSource = Callable[[str], pd.Series]
PathArg = str | PathLike[str]


@dataclass(frozen=True, eq=False)
class _FittedColumn:
    prepared: PreparedColumn
    stattest: str | None
    threshold: float | None
    # Learned thresholds by test name. Evidently's test choice counts distinct values
    # over reference and current, so every test a window could pick is learned at fit
    # time; a test that cannot be learned keeps its error, raised if a window picks it.
    learned: dict[str, float | InvalidArgument] = field(default_factory=dict)

    def threshold_for(self, test_name: str) -> float | None:
        if not self.learned:
            return self.threshold
        learned = self.learned[test_name]
        if isinstance(learned, InvalidArgument):
            raise learned
        return learned


class ReferenceProfile:
    """Reference columns prepared once for repeated drift tests (see the module doc).

    Build it with :meth:`fit` (a data frame) or :meth:`fit_parquet` (a Parquet file,
    read column by column); compare with :meth:`drift` or :meth:`drift_parquet`.
    """

    def __init__(self, fitted: dict[str, _FittedColumn], drift_share: float) -> None:
        """Use :meth:`fit` or :meth:`fit_parquet`; this takes already fitted columns."""
        self._fitted = fitted
        self._drift_share = drift_share

    # -- fitting ------------------------------------------------------------------

    @classmethod
    def fit(
        cls,
        reference: pd.DataFrame,
        *,
        columns: Sequence[str] | None = None,
        column_types: Mapping[str, str] | None = None,
        stattests: Mapping[str, str] | None = None,
        thresholds: Thresholds = None,
        drift_share: float = 0.5,
    ) -> ReferenceProfile:
        """Fit the profile of ``reference``; the options are :func:`dataset_drift`'s.

        ``columns`` defaults to all of ``reference``'s columns; a listed column missing
        from it raises ``InvalidArgument`` naming it.
        """
        names = [str(c) for c in (reference.columns if columns is None else columns)]
        return cls._fit(
            names,
            set(reference.columns),
            lambda name: reference[name],
            column_types=column_types,
            stattests=stattests,
            thresholds=thresholds,
            drift_share=drift_share,
        )

    @classmethod
    def fit_parquet(
        cls,
        path: PathArg,
        *,
        columns: Sequence[str] | None = None,
        column_types: Mapping[str, str] | None = None,
        stattests: Mapping[str, str] | None = None,
        thresholds: Thresholds = None,
        drift_share: float = 0.5,
    ) -> ReferenceProfile:
        """:meth:`fit` on a Parquet file, reading one column at a time.

        Only the fitted summaries stay in memory, never the whole reference table.
        """
        with _ParquetColumns(path, "reference") as source:
            names = source.ordered if columns is None else [str(c) for c in columns]
            return cls._fit(
                names,
                source.names,
                source.read,
                column_types=column_types,
                stattests=stattests,
                thresholds=thresholds,
                drift_share=drift_share,
            )

    @classmethod
    def _fit(
        cls,
        names: list[str],
        available: Collection[Any],
        read: ColumnSource,
        *,
        column_types: Mapping[str, str] | None,
        stattests: Mapping[str, str] | None,
        thresholds: Thresholds,
        drift_share: float,
    ) -> ReferenceProfile:
        _check_options(names, available, column_types, stattests, thresholds, drift_share)
        fitted: dict[str, _FittedColumn] = {}
        for name in names:
            series = read(name)
            kind = (
                validate_column_type(column_types[name], name)
                if column_types and name in column_types
                else infer_column_type(series)
            )
            stattest = (stattests or {}).get(name)
            if stattest is not None:
                test = get_stattest(stattest)
                if test.numeric_only and kind not in ("numeric", "datetime"):
                    raise InvalidArgument(
                        f"stattest {test.name!r} needs a numeric column; {name!r} is {kind}",
                        column=name,
                        stattest=test.name,
                    )
            values, missing = prepare_values(series, kind, name)
            del series
            sample = make_sample(values)
            prepared = PreparedColumn(name, kind, sample, missing)
            learned: dict[str, float | InvalidArgument] = {}
            threshold: float | None = None
            if thresholds == "learned":
                candidates = (
                    [stattest] if stattest else _possible_tests(kind, sample.n_unique, sample.size)
                )
                for candidate in candidates:
                    try:
                        learned[candidate] = learn_from_values(
                            values, sample, get_stattest(candidate), name=name
                        )
                    except InvalidArgument as exc:
                        learned[candidate] = exc
            elif thresholds is not None:
                threshold = thresholds.get(name)
            del values
            fitted[name] = _FittedColumn(prepared, stattest, threshold, learned)
        return cls(fitted, drift_share)

    # -- what was fitted ----------------------------------------------------------

    @property
    def columns(self) -> list[str]:
        """The compared columns, in report order."""
        return list(self._fitted)

    @property
    def column_types(self) -> dict[str, ColumnType]:
        """The type of each compared column (inferred from the reference or overridden)."""
        return {name: col.prepared.column_type for name, col in self._fitted.items()}

    @property
    def drift_share(self) -> float:
        """The share of drifted columns at which the dataset drifts."""
        return self._drift_share

    @property
    def reference_rows(self) -> dict[str, int]:
        """Non-missing reference values per column (the row count the tests see)."""
        return {name: col.prepared.sample.size for name, col in self._fitted.items()}

    @property
    def nbytes(self) -> int:
        """Approximate memory held by the fitted reference samples, in bytes."""
        total = 0
        for col in self._fitted.values():
            sample = col.prepared.sample
            if isinstance(sample, NumericSample):
                total += sample.values.nbytes
            else:
                total += int(sample.counts.memory_usage(index=True, deep=True))
        return total

    # -- comparing ----------------------------------------------------------------

    def drift(self, current: pd.DataFrame) -> DatasetDrift:
        """Drift of ``current`` against the fitted reference, as :func:`dataset_drift`.

        A compared column missing from ``current`` raises ``InvalidArgument`` naming it;
        an empty or all-missing column is reported as "not enough data".
        """
        return self._drift(set(current.columns), lambda name: current[name])

    def drift_parquet(self, path: PathArg) -> DatasetDrift:
        """:meth:`drift` on a Parquet file, read one column at a time."""
        with _ParquetColumns(path, "current") as source:
            return self._drift(source.names, source.read)

    def drift_columns(self, available: Collection[Any], read: ColumnSource) -> DatasetDrift:
        """:meth:`drift` on columns from any source: ``read(name)`` returns one column
        as a Series and ``available`` holds the names it can read."""
        return self._drift(available, read)

    def iter_drift(self, current: pd.DataFrame) -> Iterator[ColumnDrift]:
        """Per-column results of :meth:`drift`, one at a time, in report order."""
        _check_present(self.columns, set(current.columns), "current")
        for name, col in self._fitted.items():
            yield self._column(col, current[name])

    def _drift(self, available: Collection[Any], read: ColumnSource) -> DatasetDrift:
        _check_present(self.columns, available, "current")
        results = {name: self._column(col, read(name)) for name, col in self._fitted.items()}
        return DatasetDrift.from_columns(results, self._drift_share)

    @staticmethod
    def _column(col: _FittedColumn, series: pd.Series) -> ColumnDrift:
        reference = col.prepared
        values, missing = prepare_values(series, reference.column_type, reference.name)
        current = PreparedColumn(
            reference.name, reference.column_type, make_sample(values), missing
        )
        return drift_between(reference, current, stattest=col.stattest, threshold=col.threshold_for)

    def __repr__(self) -> str:
        return f"ReferenceProfile(columns={len(self._fitted)}, drift_share={self._drift_share})"


def _possible_tests(kind: ColumnType, reference_unique: int, reference_rows: int) -> list[str]:
    """Every default test a current window could select for this reference column.

    The combined distinct count is at least the reference's; the default test only
    changes at 2 and 5 distinct values, so counts up to 6 cover every case.
    """
    counts = range(reference_unique, max(reference_unique, 6) + 1)
    return list(dict.fromkeys(default_test(kind, n, reference_rows) for n in counts))


def _check_options(
    names: list[str],
    available: Collection[Any],
    column_types: Mapping[str, str] | None,
    stattests: Mapping[str, str] | None,
    thresholds: Thresholds,
    drift_share: float,
) -> None:
    """The checks of :func:`dataset_drift`, in its order, with its messages."""
    if not 0 < drift_share <= 1:
        raise InvalidArgument(f"drift_share must be in (0, 1], got {drift_share}")
    _check_present(names, available, "reference")
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
    unknown = sorted(set(column_types or {}) - set(names))
    if unknown:
        raise InvalidArgument(
            f"column_types names columns that are not compared: {', '.join(map(str, unknown))}",
            columns=unknown,
        )


def _check_present(names: list[str], available: Collection[Any], label: str) -> None:
    missing = [c for c in names if c not in available]
    if missing:
        raise InvalidArgument(
            f"columns missing from {label}: {', '.join(missing)}", columns=missing
        )


class _ParquetColumns:
    """A Parquet file read one column at a time (as pandas Series)."""

    def __init__(self, path: PathArg, label: str) -> None:
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:  # pragma: no cover - pyarrow is a dependency
            from modelloop.errors import MissingDependency

            raise MissingDependency("reading Parquet needs pyarrow") from exc
        try:
            self._file = pq.ParquetFile(path)
        except (OSError, ValueError) as exc:
            raise InvalidArgument(f"cannot read {label} Parquet file {str(path)!r}: {exc}") from exc
        self.names: set[str] = set(self._file.schema_arrow.names)
        # Schema order, so that columns=None reports columns as the file lists them.
        self.ordered = list(self._file.schema_arrow.names)

    def __enter__(self) -> _ParquetColumns:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()

    def read(self, name: str) -> pd.Series:
        table = self._file.read(columns=[name])
        series: pd.Series = table.column(0).to_pandas()
        series.name = name
        return series
