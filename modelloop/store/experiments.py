"""Experiments in the metadata store."""

from __future__ import annotations

from sqlalchemy import Connection, Row, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError

from modelloop.entities import Experiment, LifecycleStage, ViewType
from modelloop.errors import AlreadyExists, InvalidArgument, InvalidState, NotFound
from modelloop.store._util import now_ms, upsert
from modelloop.store.schema import experiment_tags, experiments, runs


def parse_id(experiment_id: str | int) -> int:
    """Experiment ids are decimal integers (strings on the wire, as in MLflow)."""
    try:
        value = int(experiment_id)
    except (TypeError, ValueError):
        raise InvalidArgument(f"invalid experiment id {experiment_id!r}") from None
    if value < 0 or value >= 2**31:
        raise InvalidArgument(f"invalid experiment id {experiment_id!r}")
    return value


def create(
    conn: Connection, name: str, artifact_location: str = "", tags: dict[str, str] | None = None
) -> str:
    """Insert an experiment; AlreadyExists when the name is taken (even by a deleted one)."""
    existing = conn.execute(
        select(experiments.c.lifecycle_stage).where(experiments.c.name == name)
    ).first()
    if existing is not None:
        hint = (
            " (it is deleted: restore it or pick another name)" if existing[0] == "deleted" else ""
        )
        raise AlreadyExists(f"experiment {name!r} already exists{hint}", name=name)
    now = now_ms()
    try:
        with conn.begin_nested():
            result = conn.execute(
                experiments.insert().values(
                    name=name,
                    artifact_location=artifact_location,
                    lifecycle_stage=LifecycleStage.ACTIVE.value,
                    creation_time=now,
                    last_update_time=now,
                )
            )
    except IntegrityError:
        raise AlreadyExists(f"experiment {name!r} already exists", name=name) from None
    assert result.inserted_primary_key is not None
    new_id = int(result.inserted_primary_key[0])
    if tags:
        set_tags(conn, new_id, tags)
    return str(new_id)


def _tags(conn: Connection, ids: list[int]) -> dict[int, dict[str, str]]:
    out: dict[int, dict[str, str]] = {i: {} for i in ids}
    if ids:
        rows = conn.execute(select(experiment_tags).where(experiment_tags.c.experiment_id.in_(ids)))
        for row in rows:
            out[row.experiment_id][row.key] = row.value
    return out


def _entity(row: Row[tuple[object, ...]] | Row[object], tags: dict[str, str]) -> Experiment:
    m = row._mapping
    return Experiment(
        experiment_id=str(m["experiment_id"]),
        name=m["name"],
        artifact_location=m["artifact_location"],
        lifecycle_stage=LifecycleStage(m["lifecycle_stage"]),
        creation_time=m["creation_time"],
        last_update_time=m["last_update_time"],
        tags=tags,
    )


def get(conn: Connection, experiment_id: str | int) -> Experiment:
    """One experiment by id; NotFound if missing."""
    eid = parse_id(experiment_id)
    row = conn.execute(select(experiments).where(experiments.c.experiment_id == eid)).first()
    if row is None:
        raise NotFound(f"experiment {experiment_id!r} does not exist", experiment_id=str(eid))
    return _entity(row, _tags(conn, [eid])[eid])


_STAGE_Q = select(experiments.c.name, experiments.c.lifecycle_stage).where(
    experiments.c.experiment_id == bindparam("experiment_id")
)


def name_and_stage(conn: Connection, experiment_id: str | int) -> tuple[str, LifecycleStage]:
    """An experiment's name and lifecycle stage from one query (what creating a run
    checks); NotFound if missing, as :func:`get`."""
    eid = parse_id(experiment_id)
    row = conn.execute(_STAGE_Q, {"experiment_id": eid}).first()
    if row is None:
        raise NotFound(f"experiment {experiment_id!r} does not exist", experiment_id=str(eid))
    return str(row[0]), LifecycleStage(row[1])


def get_by_name(conn: Connection, name: str) -> Experiment:
    """One experiment by name; NotFound if missing."""
    row = conn.execute(select(experiments).where(experiments.c.name == name)).first()
    if row is None:
        raise NotFound(f"experiment {name!r} does not exist", name=name)
    eid = row._mapping["experiment_id"]
    return _entity(row, _tags(conn, [eid])[eid])


def list_all(conn: Connection, view_type: ViewType = ViewType.ACTIVE_ONLY) -> list[Experiment]:
    """Experiments in the given view, newest first."""
    stages = [s.value for s in view_type.stages()]
    rows = conn.execute(
        select(experiments)
        .where(experiments.c.lifecycle_stage.in_(stages))
        .order_by(experiments.c.creation_time.desc(), experiments.c.experiment_id.desc())
    ).all()
    tags = _tags(conn, [r._mapping["experiment_id"] for r in rows])
    return [_entity(r, tags[r._mapping["experiment_id"]]) for r in rows]


def rename(conn: Connection, experiment_id: str | int, new_name: str) -> None:
    """Rename; AlreadyExists if the new name is taken, InvalidState if the experiment
    is deleted (as MLflow does; renaming would also lose the stamp that restoring
    uses to find the runs deleted with it)."""
    exp = get(conn, experiment_id)
    if exp.lifecycle_stage is not LifecycleStage.ACTIVE:
        raise InvalidState(
            f"experiment {exp.name!r} is deleted: restore it before renaming it",
            experiment_id=exp.experiment_id,
        )
    if exp.name == new_name:
        return
    taken = conn.execute(select(experiments.c.experiment_id).where(experiments.c.name == new_name))
    if taken.first() is not None:
        raise AlreadyExists(f"experiment {new_name!r} already exists", name=new_name)
    conn.execute(
        update(experiments)
        .where(experiments.c.experiment_id == int(exp.experiment_id))
        .values(name=new_name, last_update_time=now_ms())
    )


def set_stage(conn: Connection, experiment_id: str | int, stage: LifecycleStage) -> Experiment:
    """Soft-delete an experiment with its active runs, or restore it with the runs that
    were deleted together with it (runs deleted on their own stay deleted).
    Returns the experiment as it was before."""
    exp = get(conn, experiment_id)
    if exp.lifecycle_stage is stage:
        return exp
    eid = int(exp.experiment_id)
    now = now_ms()
    if stage is LifecycleStage.DELETED:
        # The stamp must differ from every run deleted on its own earlier (possibly in
        # the same millisecond), or restoring would bring those back too.
        latest = conn.execute(
            select(func.max(runs.c.deleted_time)).where(
                runs.c.experiment_id == eid, runs.c.lifecycle_stage == LifecycleStage.DELETED
            )
        ).scalar()
        now = max(now, int(latest) + 1) if latest is not None else now
        conn.execute(
            update(runs)
            .where(runs.c.experiment_id == eid, runs.c.lifecycle_stage == LifecycleStage.ACTIVE)
            .values(lifecycle_stage=LifecycleStage.DELETED.value, deleted_time=now)
        )
    else:
        # The deletion stamped the experiment and its runs with the same time.
        conn.execute(
            update(runs)
            .where(
                runs.c.experiment_id == eid,
                runs.c.lifecycle_stage == LifecycleStage.DELETED,
                runs.c.deleted_time == exp.last_update_time,
            )
            .values(lifecycle_stage=LifecycleStage.ACTIVE.value, deleted_time=None)
        )
    conn.execute(
        update(experiments)
        .where(experiments.c.experiment_id == eid)
        .values(lifecycle_stage=stage.value, last_update_time=now)
    )
    return exp


def set_tags(conn: Connection, experiment_id: str | int, tags: dict[str, str]) -> None:
    """Set (overwrite) experiment tags."""
    eid = parse_id(experiment_id)
    rows = [{"experiment_id": eid, "key": k, "value": v} for k, v in tags.items()]
    upsert(conn, experiment_tags, rows, update=["value"])
