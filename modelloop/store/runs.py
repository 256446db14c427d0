"""Runs in the metadata store: rows, lifecycle, and bulk loading into entities."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import BindParameter, Connection, RowMapping, bindparam, select, update

from modelloop.entities import (
    Dataset,
    DatasetInput,
    LifecycleStage,
    Metric,
    Run,
    RunStatus,
)
from modelloop.errors import InvalidArgument, NotFound
from modelloop.store._util import chunked, now_ms
from modelloop.store.schema import (
    datasets,
    latest_metrics,
    params,
    run_inputs,
    run_tags,
    runs,
)
from modelloop.validation import check_writable

_RUN_ID_CHARS = set("0123456789abcdef")


def check_run_id(run_id: Any) -> str:
    """Run ids are 32 lowercase hex characters."""
    if not isinstance(run_id, str) or len(run_id) != 32 or not set(run_id) <= _RUN_ID_CHARS:
        raise InvalidArgument(f"invalid run id {run_id!r}: expected 32 hex characters")
    return run_id


def insert(
    conn: Connection,
    *,
    run_id: str,
    experiment_id: int,
    name: str,
    user: str,
    start_time: int,
    parent_run_id: str | None,
) -> None:
    """Insert a RUNNING run."""
    conn.execute(
        _INSERT_Q,
        {
            "run_id": run_id,
            "experiment_id": experiment_id,
            "name": name,
            "user_id": user,
            "status": RunStatus.RUNNING.value,
            "start_time": start_time,
            "lifecycle_stage": LifecycleStage.ACTIVE.value,
            "parent_run_id": parent_run_id,
        },
    )


# Built once: the per-request hot paths skip building and cache-keying a statement
# (values go in as execution parameters, not as literals of a new statement).
_ROW_Q = select(runs).where(runs.c.run_id == bindparam("run_id"))
_INSERT_Q = runs.insert()
_UPDATE_Q = update(runs).where(runs.c.run_id == bindparam("_run_id"))


def get_row(conn: Connection, run_id: str) -> RowMapping:
    """The raw run row; NotFound if missing."""
    check_run_id(run_id)
    row = conn.execute(_ROW_Q, {"run_id": run_id}).first()
    if row is None:
        raise NotFound(f"run {run_id!r} does not exist", run_id=run_id)
    return row._mapping


def require_writable(conn: Connection, run_id: str, *, allow_ended: bool = False) -> RowMapping:
    """The run row, if the run may receive new data: it exists, is not deleted and
    (unless ``allow_ended``) has not ended."""
    row = get_row(conn, run_id)
    check_writable(run_id, row["lifecycle_stage"], row["status"], allow_ended=allow_ended)
    return row


def set_status(
    conn: Connection,
    run_id: str,
    *,
    status: RunStatus | None = None,
    end_time: int | None = None,
    name: str | None = None,
    status_message: str | None = None,
) -> None:
    """Update status/end time/name of an existing run."""
    check_run_id(run_id)
    values: dict[str, Any] = {}
    if status is not None:
        values["status"] = status.value
        if status.is_terminal:
            values["end_time"] = end_time if end_time is not None else now_ms()
    elif end_time is not None:
        values["end_time"] = end_time
    if name is not None:
        values["name"] = name
    if status_message is not None:
        values["status_message"] = status_message
    if not values:
        get_row(conn, run_id)
        return
    # The update's row count tells whether the run exists: no read before it.
    if conn.execute(_UPDATE_Q, {"_run_id": run_id, **values}).rowcount == 0:
        raise NotFound(f"run {run_id!r} does not exist", run_id=run_id)


def set_stage(conn: Connection, run_id: str, stage: LifecycleStage) -> None:
    """Soft-delete or restore a run."""
    get_row(conn, run_id)
    deleted_time = now_ms() if stage is LifecycleStage.DELETED else None
    conn.execute(
        update(runs)
        .where(runs.c.run_id == run_id)
        .values(lifecycle_stage=stage.value, deleted_time=deleted_time)
    )


_IDS: BindParameter[list[str]] = bindparam("ids", expanding=True)
_RUNS_Q = select(runs).where(runs.c.run_id.in_(_IDS))
_PARAMS_Q = select(params.c.run_id, params.c.key, params.c.value).where(params.c.run_id.in_(_IDS))
_TAGS_Q = select(run_tags.c.run_id, run_tags.c.key, run_tags.c.value).where(
    run_tags.c.run_id.in_(_IDS)
)
_METRICS_Q = (
    select(
        latest_metrics.c.run_id,
        latest_metrics.c.key,
        latest_metrics.c.value,
        latest_metrics.c.step,
        latest_metrics.c.timestamp,
    )
    .where(latest_metrics.c.run_id.in_(_IDS))
    .order_by(latest_metrics.c.run_id, latest_metrics.c.key)
)
_INPUTS_Q = (
    select(run_inputs.c.run_id, run_inputs.c.context, datasets)
    .join(datasets, datasets.c.digest == run_inputs.c.dataset_digest)
    .where(run_inputs.c.run_id.in_(_IDS))
    .order_by(run_inputs.c.run_id, datasets.c.name, run_inputs.c.context)
)


def load(conn: Connection, run_ids: Sequence[str]) -> list[Run]:
    """Runs with params, latest metrics, tags and inputs, in the order of ``run_ids``
    (missing ids are skipped). A handful of queries, whatever the number of runs."""
    return load_with_latest(conn, run_ids)[0]


def load_with_latest(
    conn: Connection, run_ids: Sequence[str]
) -> tuple[list[Run], dict[str, list[Metric]]]:
    """:func:`load`, plus the latest point (value, step, timestamp) of each metric of
    each run found, by key, from the same query (the MLflow API sends all three)."""
    rows: dict[str, RowMapping] = {}
    data: dict[str, dict[str, Any]] = {}
    latest: dict[str, list[Metric]] = {}
    for ids in chunked(list(run_ids)):
        bound = {"ids": list(ids)}
        for rr in conn.execute(_RUNS_Q, bound).all():
            rows[rr.run_id] = rr._mapping
            data[rr.run_id] = {"params": {}, "metrics": {}, "tags": {}, "inputs": []}
            latest[rr.run_id] = []
        # Prebuilt statements with an expanding parameter (no per-call coercion of
        # every id) and plain tuples fetched at once: this is the hot spot of search.
        for run_id, key, value in conn.execute(_PARAMS_Q, bound).all():
            data[run_id]["params"][key] = value
        for run_id, key, value in conn.execute(_TAGS_Q, bound).all():
            data[run_id]["tags"][key] = value
        for run_id, key, value, step, timestamp in conn.execute(_METRICS_Q, bound).all():
            number = math.nan if value is None else value
            data[run_id]["metrics"][key] = number
            latest[run_id].append(Metric(key, number, timestamp, step))
        for r in conn.execute(_INPUTS_Q, bound).all():
            data[r.run_id]["inputs"].append(DatasetInput(dataset_from_row(r._mapping), r.context))
    out = []
    for run_id in run_ids:
        found = rows.get(run_id)
        if found is None:
            continue
        d = data[run_id]
        out.append(_entity(found, d["params"], d["metrics"], d["tags"], tuple(d["inputs"])))
    return out, latest


def _entity(
    row: RowMapping,
    params: dict[str, str],
    metrics: dict[str, float],
    tags: dict[str, str],
    inputs: tuple[DatasetInput, ...],
) -> Run:
    return Run(
        run_id=row["run_id"],
        experiment_id=str(row["experiment_id"]),
        name=row["name"],
        status=RunStatus(row["status"]),
        start_time=row["start_time"],
        end_time=row["end_time"],
        lifecycle_stage=LifecycleStage(row["lifecycle_stage"]),
        user=row["user_id"],
        parent_run_id=row["parent_run_id"],
        status_message=row["status_message"],
        params=params,
        metrics=metrics,
        tags=tags,
        inputs=inputs,
    )


def info(conn: Connection, run_id: str) -> Run:
    """A run's own fields from one query: its params, metrics, tags and inputs are
    left empty (what MLflow's ``RunInfo`` needs); NotFound if missing."""
    return _entity(get_row(conn, run_id), {}, {}, {}, ())


def get(conn: Connection, run_id: str) -> Run:
    """One run with all its data; NotFound if missing."""
    check_run_id(run_id)
    found = load(conn, [run_id])
    if not found:
        raise NotFound(f"run {run_id!r} does not exist", run_id=run_id)
    return found[0]


def dataset_from_row(m: RowMapping) -> Dataset:
    """A Dataset entity from a datasets row."""
    return Dataset(
        digest=m["digest"],
        name=m["name"],
        source=m["source"],
        source_type=m["source_type"],
        num_rows=m["num_rows"],
        schema=json.loads(m["schema_json"]),
        profile=json.loads(m["profile_json"]),
        created_time=m["created_time"],
    )
