"""``modelloop predict``: score a Parquet or CSV file with a model, in chunks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from modelloop.cli.context import console, run_command, state
from modelloop.serving.batch_scoring import ScoreReport, count_rows, score_file

__all__ = ["predict"]


def predict(
    ctx: typer.Context,
    model_uri: Annotated[
        str,
        typer.Argument(help="models:/NAME/VERSION, models:/NAME@ALIAS or runs:/RUN_ID/PATH."),
    ],
    input_path: Annotated[
        Path, typer.Option("--input", "-i", help="The file to score (.parquet, .pq or .csv).")
    ],
    output_path: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Where to write the input columns plus predictions (.parquet, .pq or .csv).",
        ),
    ],
    chunk_rows: Annotated[
        int,
        typer.Option("--chunk-rows", min=1, help="Rows read, scored and written at a time."),
    ] = 50_000,
    id_column: Annotated[
        str | None,
        typer.Option(
            "--id-column", help="Write only this column plus the predictions (not fed to model)."
        ),
    ] = None,
    trusted: Annotated[
        bool, typer.Option(help="Allow loading pickle-based models (runs their code).")
    ] = False,
) -> None:
    """Score a file with a model in bounded memory; the output appears only when complete."""

    def go() -> ScoreReport:
        model = state(ctx).client().load_model(model_uri, trusted=trusted or None)
        total = count_rows(input_path) if input_path.is_file() else None
        columns = [TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TextColumn("rows")]
        if total is not None:
            columns.append(TimeRemainingColumn())
        with Progress(*columns, TimeElapsedColumn(), console=console, transient=True) as bar:
            task = bar.add_task("scoring", total=total)
            return score_file(
                model,
                input_path,
                output_path,
                chunk_rows=chunk_rows,
                id_column=id_column,
                progress=lambda done, _total: bar.update(task, completed=done),
            )

    report = run_command(go)
    console.print(
        f"scored {report.rows:,} rows in {report.chunks} chunks, {report.seconds:.2f} s "
        f"({report.rows_per_second:,.0f} rows/s) → {report.output_path}",
        markup=False,
        highlight=False,
    )
