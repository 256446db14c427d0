"""Datasets: content-addressed records of the data a run used."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True, slots=True)
class Dataset:
    """A dataset identified by the sha256 digest of its content.

    ``schema`` maps column name to dtype; ``profile`` maps column name to summary
    statistics (count, missing, distinct, min, max, mean, std, top values).
    """

    digest: str
    name: str
    source: str
    source_type: str
    num_rows: int | None
    schema: dict[str, str]
    profile: dict[str, dict[str, Any]]
    created_time: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class DatasetInput:
    """A dataset used by a run, in a context such as ``train`` or ``eval``."""

    dataset: Dataset
    context: str
