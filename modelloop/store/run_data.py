"""What runs record: params (immutable), tags, metric time series, inputs."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table, bindparam, delete, select
from sqlalchemy.sql.elements import ColumnElement

from modelloop.entities import Dataset, Metric
from modelloop.errors import Conflict, NotFound
from modelloop.store._util import chunked, insert_ignore, now_ms, upsert
from modelloop.store.schema import datasets, latest_metrics, metrics, params, run_inputs, run_tags

_EXISTING_PARAMS_Q = select(params.c.key, params.c.value).where(
    params.c.run_id == bindparam("run_id"), params.c.key.in_(bindparam("keys", expanding=True))
)
_SQLITE_INSERT_PARAMS = "INSERT OR IGNORE INTO params (run_id, key, value) VALUES (?, ?, ?)"


def log_params(conn: Connection, run_id: str, values: dict[str, str]) -> None:
    """Add params; re-logging the same value is a no-op, a different value is Conflict.

    New keys are inserted with "insert or ignore" and only the keys that were already
    there are then read back and compared: a batch of new params (the common case)
    is one statement on SQLite, and a conflict raised here rolls the whole
    transaction back, so nothing of the batch stays.
    """
    if not values:
        return
    if conn.dialect.name == "sqlite":
        result = conn.exec_driver_sql(
            _SQLITE_INSERT_PARAMS, [(run_id, k, v) for k, v in values.items()]
        )
        if result.rowcount == len(values):
            return
    else:
        insert_ignore(
            conn, params, [{"run_id": run_id, "key": k, "value": v} for k, v in values.items()]
        )
    for chunk in chunked(list(values)):
        rows = conn.execute(_EXISTING_PARAMS_Q, {"run_id": run_id, "keys": list(chunk)})
        for key, old in rows:
            if old != values[key]:
                raise Conflict(
                    f"param {key!r} of run {run_id} is already {old!r:.100}; it cannot be "
                    f"changed to {values[key]!r:.100} (params are immutable)",
                    key=key,
                    run_id=run_id,
                )


def set_tags(conn: Connection, run_id: str, values: dict[str, str]) -> None:
    """Set (overwrite) run tags."""
    rows = [{"run_id": run_id, "key": k, "value": v} for k, v in values.items()]
    upsert(conn, run_tags, rows, update=["value"])


def delete_tag(conn: Connection, run_id: str, key: str) -> None:
    """Remove a tag; NotFound if the run has no such tag."""
    result = conn.execute(
        delete(run_tags).where(run_tags.c.run_id == run_id, run_tags.c.key == key)
    )
    if result.rowcount == 0:
        raise NotFound(f"run {run_id} has no tag {key!r}", run_id=run_id, key=key)


def _stored(value: float) -> float | None:
    return None if math.isnan(value) else value


def log_metrics(conn: Connection, run_id: str, points: Sequence[Metric]) -> None:
    """Append metric points and keep the latest point per key for search."""
    if not points:
        return
    if conn.dialect.name == "sqlite":
        # The hot path of bulk logging: a fixed statement straight to the driver
        # skips SQLAlchemy's per-row parameter processing (values stay bound).
        conn.exec_driver_sql(
            "INSERT INTO metrics (run_id, key, value, step, timestamp) VALUES (?, ?, ?, ?, ?)",
            [(run_id, p.key, _stored(p.value), p.step, p.timestamp) for p in points],
        )
    else:
        conn.execute(
            metrics.insert(),
            [
                {
                    "run_id": run_id,
                    "key": p.key,
                    "value": _stored(p.value),
                    "step": p.step,
                    "timestamp": p.timestamp,
                }
                for p in points
            ],
        )
    latest: dict[str, Metric] = {}
    for p in points:
        cur = latest.get(p.key)
        if cur is None or (p.step, p.timestamp) >= (cur.step, cur.timestamp):
            latest[p.key] = p
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(
            _SQLITE_UPSERT_LATEST,
            [(run_id, p.key, _stored(p.value), p.step, p.timestamp) for p in latest.values()],
        )
        return
    rows = [
        {
            "run_id": run_id,
            "key": p.key,
            "value": _stored(p.value),
            "step": p.step,
            "timestamp": p.timestamp,
        }
        for p in latest.values()
    ]
    upsert(conn, latest_metrics, rows, update=["value", "step", "timestamp"], where=_newer)


def _newer(t: Table, ex: Any) -> ColumnElement[bool]:
    """The PostgreSQL upsert's condition: the excluded point is later than the stored."""
    cond: ColumnElement[bool] = (ex.step > t.c.step) | (
        (ex.step == t.c.step) & (ex.timestamp >= t.c.timestamp)
    )
    return cond


# A stored latest point is replaced by a later one (higher step, then timestamp):
# the same rule as the PostgreSQL path's ``newer``, as one fixed statement.
_SQLITE_UPSERT_LATEST = (
    "INSERT INTO latest_metrics (run_id, key, value, step, timestamp) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, step = excluded.step, "
    "timestamp = excluded.timestamp WHERE excluded.step > latest_metrics.step OR "
    "(excluded.step = latest_metrics.step AND excluded.timestamp >= latest_metrics.timestamp)"
)


def metric_history(conn: Connection, run_id: str, key: str) -> list[Metric]:
    """Every point of one metric, by step then timestamp."""
    q = (
        select(metrics.c.value, metrics.c.step, metrics.c.timestamp)
        .where(metrics.c.run_id == run_id, metrics.c.key == key)
        .order_by(metrics.c.step, metrics.c.timestamp, metrics.c.id)
    )
    return [
        Metric(key, math.nan if r.value is None else r.value, r.timestamp, r.step)
        for r in conn.execute(q)
    ]


def latest_points(conn: Connection, run_ids: Sequence[str]) -> dict[str, list[Metric]]:
    """The latest point of every metric of each run, by key (runs without metrics
    map to an empty list)."""
    out: dict[str, list[Metric]] = {r: [] for r in run_ids}
    cols = latest_metrics.c
    for ids in chunked(list(run_ids)):
        q = select(cols.run_id, cols.key, cols.value, cols.step, cols.timestamp)
        for r in conn.execute(q.where(cols.run_id.in_(ids)).order_by(cols.run_id, cols.key)):
            value = math.nan if r.value is None else r.value
            out[r.run_id].append(Metric(r.key, value, r.timestamp, r.step))
    return out


def metric_keys(conn: Connection, run_id: str) -> list[str]:
    """The metric names a run has logged."""
    q = select(latest_metrics.c.key).where(latest_metrics.c.run_id == run_id)
    return sorted(r.key for r in conn.execute(q))


def log_input(conn: Connection, run_id: str, dataset: Dataset, context: str) -> None:
    """Record that a run used a dataset; a dataset is stored once per digest."""
    insert_ignore(
        conn,
        datasets,
        [
            {
                "digest": dataset.digest,
                "name": dataset.name,
                "source": dataset.source,
                "source_type": dataset.source_type,
                "num_rows": dataset.num_rows,
                "schema_json": json.dumps(dataset.schema, sort_keys=True),
                "profile_json": json.dumps(dataset.profile, sort_keys=True, default=str),
                "created_time": dataset.created_time or now_ms(),
            }
        ],
    )
    insert_ignore(
        conn, run_inputs, [{"run_id": run_id, "dataset_digest": dataset.digest, "context": context}]
    )
