"""Side-by-side comparison of runs (what ``modelloop runs compare`` prints)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

from modelloop.entities import Run


@dataclasses.dataclass(frozen=True, slots=True)
class CompareRow:
    """One param or metric across runs; ``values`` has None where a run lacks it."""

    label: str
    values: tuple[float | str | None, ...]
    differs: bool


def _same(values: Sequence[float | str | None]) -> bool:
    first = values[0]
    for v in values[1:]:
        if isinstance(first, float) and isinstance(v, float):
            if not (first == v or (math.isnan(first) and math.isnan(v))):
                return False
        elif first != v:
            return False
    return True


def compare_runs(runs: Sequence[Run]) -> list[CompareRow]:
    """Params then metrics, rows that differ between runs first, each group by name."""
    rows: list[CompareRow] = []
    groups: list[tuple[str, list[Mapping[str, float | str]]]] = [
        ("params.", [r.params for r in runs]),
        ("metrics.", [r.metrics for r in runs]),
    ]
    for prefix, maps in groups:
        for key in sorted({k for m in maps for k in m}):
            values = tuple(m.get(key) for m in maps)
            rows.append(CompareRow(prefix + key, values, not _same(values)))
    return sorted(rows, key=lambda row: (not row.differs, not row.label.startswith("params.")))
