"""Batch scoring of files: stream a Parquet or CSV file through a model in chunks.

Memory stays bounded by the chunk size (Parquet is read batch by batch, CSV chunk by
chunk, and the output is appended as it goes), so files far larger than memory can be
scored. The output is written under a temporary name beside the target and renamed
at the end: an error or an interrupt never leaves a half-written output behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from modelloop.errors import InvalidArgument, ModelloopError

__all__ = ["Predictor", "ScoreReport", "count_rows", "file_format", "score_file"]

PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv",)
Progress = Callable[[int, int | None], None]  # (rows done, total rows or None)


class Predictor(Protocol):
    """Anything with ``predict(DataFrame)`` (a :class:`~modelloop.models.LoadedModel`)."""

    def predict(self, data: Any) -> Any: ...


@dataclasses.dataclass(frozen=True)
class ScoreReport:
    """What :func:`score_file` did."""

    input_path: str
    output_path: str
    rows: int
    chunks: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        """Throughput over the whole run (reading, predicting and writing)."""
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


def file_format(path: str | Path) -> str:
    """``"parquet"`` or ``"csv"`` from the file name; InvalidArgument otherwise."""
    name = str(path).lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    raise InvalidArgument(f"cannot tell the format of {str(path)!r}: use .parquet, .pq or .csv")


def count_rows(path: str | Path) -> int | None:
    """Row count from Parquet metadata (no data read); None for CSV (unknown upfront)."""
    if file_format(path) != "parquet":
        return None
    return int(pq.ParquetFile(path).metadata.num_rows)


def _chunks(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    if file_format(path) == "parquet":
        source = pq.ParquetFile(path)
        for batch in source.iter_batches(batch_size=chunk_rows):
            yield batch.to_pandas()
        return
    with pd.read_csv(path, chunksize=chunk_rows) as reader:
        yield from reader


def _with_predictions(chunk: pd.DataFrame, predictions: Any, id_column: str | None) -> pd.DataFrame:
    out = np.asarray(predictions)
    if out.ndim == 0 or out.shape[0] != len(chunk):
        raise InvalidArgument(
            f"the model returned {out.shape[0] if out.ndim else 'a scalar'} predictions "
            f"for {len(chunk)} rows"
        )
    result = chunk[[id_column]] if id_column is not None else chunk
    result = result.reset_index(drop=True)
    if out.ndim == 1:
        names = ["prediction"]
        columns = {"prediction": out}
    else:
        flat = out.reshape(len(chunk), -1)
        names = [f"prediction.{i}" for i in range(flat.shape[1])]
        columns = {n: flat[:, i] for i, n in enumerate(names)}
    clash = [n for n in names if n in result.columns]
    if clash:
        raise InvalidArgument(f"the input already has a column named {clash[0]!r}")
    return pd.concat([result, pd.DataFrame(columns)], axis=1)


class _Writer:
    """Appends chunks to the temporary output; Parquet keeps the first chunk's schema."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.format = file_format(path)
        self._parquet: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None
        self._header = True

    def write(self, frame: pd.DataFrame) -> None:
        if self.format == "csv":
            frame.to_csv(
                self.path, mode="w" if self._header else "a", header=self._header, index=False
            )
            self._header = False
            return
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._parquet is None:
            # One file has one schema: later chunks are cast to the first chunk's types
            # (CSV chunks are typed one by one); one that cannot be cast is an error.
            self._schema = table.schema.remove_metadata()
            self._parquet = pq.ParquetWriter(self.path, self._schema)
        assert self._schema is not None
        if not table.schema.remove_metadata().equals(self._schema):
            try:
                table = table.select(self._schema.names).cast(self._schema)
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, KeyError) as e:
                raise InvalidArgument(
                    f"columns differ from the first chunk's ({self._schema}): {e}"
                ) from e
        self._parquet.write_table(table)

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None
        elif not self.path.exists():  # an empty input gives an empty output, not none
            if self.format == "csv":
                self.path.write_text("")
            else:
                pq.write_table(pa.table({}), self.path)


def score_file(
    model: Predictor,
    input_path: str | Path,
    output_path: str | Path,
    *,
    chunk_rows: int = 50_000,
    progress: Progress | None = None,
    id_column: str | None = None,
) -> ScoreReport:
    """Score ``input_path`` with ``model.predict`` chunk by chunk into ``output_path``.

    The output has the input's columns plus ``prediction`` (or ``prediction.<i>`` for
    several outputs); with ``id_column`` it has only that column plus the predictions,
    and the id column is not passed to the model. Formats follow the suffixes
    (``.parquet``/``.pq`` or ``.csv``; input and output may differ). ``progress`` is
    called after each chunk with the rows done and the total (None for CSV). Errors
    name the rows of the failing chunk; the output file is then not created.
    """
    if chunk_rows < 1:
        raise InvalidArgument(f"chunk_rows must be >= 1, got {chunk_rows}")
    source, target = Path(input_path), Path(output_path)
    file_format(target)
    if not source.is_file():
        raise InvalidArgument(f"input file {str(source)!r} does not exist")
    if source.resolve() == target.resolve():
        raise InvalidArgument("the output must not overwrite the input")
    try:
        total = count_rows(source)
    except (OSError, pa.ArrowException) as exc:
        raise InvalidArgument(f"cannot read {str(source)!r} as Parquet: {exc}") from exc
    target.parent.mkdir(parents=True, exist_ok=True)
    # Same folder, hidden name: the final rename is atomic and nothing half-written shows.
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp{target.suffix}")
    writer = _Writer(tmp)
    started = time.perf_counter()
    done = chunks = 0
    try:
        reader = _chunks(source, chunk_rows)
        while True:
            try:
                chunk = next(reader)
            except StopIteration:
                break
            except (OSError, ValueError, pa.ArrowException) as exc:  # a malformed file
                raise InvalidArgument(f"cannot read {source.name} after row {done}: {exc}") from exc
            where = f"rows {done}-{done + len(chunk) - 1} (chunk {chunks + 1})"
            try:
                if id_column is not None and id_column not in chunk.columns:
                    raise InvalidArgument(f"the input has no id column {id_column!r}")
                features = chunk.drop(columns=[id_column]) if id_column is not None else chunk
                scored = _with_predictions(chunk, model.predict(features), id_column)
                writer.write(scored)
            except ModelloopError as exc:
                # Same type (SignatureMismatch stays SignatureMismatch), located message.
                raise type(exc)(f"{where} of {source.name}: {exc.message}", **exc.details) from exc
            except Exception as exc:
                raise InvalidArgument(
                    f"{where} of {source.name}: {type(exc).__name__}: {exc}"
                ) from exc
            done += len(chunk)
            chunks += 1
            if progress is not None:
                progress(done, total)
        writer.close()
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(Exception):
            writer.close()
        tmp.unlink(missing_ok=True)
        raise
    return ScoreReport(str(source), str(target), done, chunks, time.perf_counter() - started)
