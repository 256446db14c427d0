"""Deployment revisions in the metadata store."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, Row, func, select
from sqlalchemy.exc import IntegrityError

from modelloop.entities import DeploymentRevision
from modelloop.errors import Conflict, NotFound
from modelloop.store._util import now_ms
from modelloop.store.schema import deployment_revisions as t

__all__ = ["add_revision", "get", "history", "list_latest"]


def _entity(r: Row[Any]) -> DeploymentRevision:
    return DeploymentRevision(
        name=r.name,
        revision=r.revision,
        spec=json.loads(r.spec),
        reason=r.reason,
        actor=r.actor,
        created_time=r.created_time,
    )


def add_revision(
    conn: Connection, name: str, spec: dict[str, Any], reason: str, actor: str
) -> DeploymentRevision:
    """Append the next revision of ``name`` (1 for a new deployment)."""
    current = conn.execute(select(func.max(t.c.revision)).where(t.c.name == name)).scalar()
    revision = 1 if current is None else int(current) + 1
    try:
        with conn.begin_nested():
            conn.execute(
                t.insert().values(
                    name=name,
                    revision=revision,
                    spec=json.dumps(spec, sort_keys=True),
                    reason=reason,
                    actor=actor,
                    created_time=now_ms(),
                )
            )
    except IntegrityError:
        raise Conflict(f"deployment {name!r} changed concurrently; retry", name=name) from None
    return get(conn, name, revision)


def get(conn: Connection, name: str, revision: int | None = None) -> DeploymentRevision:
    """A revision (the live one, i.e. the newest, by default)."""
    q = select(t).where(t.c.name == name)
    q = (
        q.where(t.c.revision == revision)
        if revision is not None
        else q.order_by(t.c.revision.desc())
    )
    row = conn.execute(q.limit(1)).first()
    if row is None:
        if revision is not None and history(conn, name, missing_ok=True):
            raise NotFound(f"deployment {name!r} has no revision {revision}", name=name)
        raise NotFound(f"deployment {name!r} not found", name=name)
    return _entity(row)


def history(conn: Connection, name: str, *, missing_ok: bool = False) -> list[DeploymentRevision]:
    """Every revision of a deployment, oldest first."""
    rows = conn.execute(select(t).where(t.c.name == name).order_by(t.c.revision)).all()
    if not rows and not missing_ok:
        raise NotFound(f"deployment {name!r} not found", name=name)
    return [_entity(r) for r in rows]


def list_latest(conn: Connection) -> list[DeploymentRevision]:
    """The live revision of every deployment, by name."""
    latest = (
        select(t.c.name, func.max(t.c.revision).label("revision")).group_by(t.c.name).subquery()
    )
    rows = conn.execute(
        select(t)
        .join(latest, (t.c.name == latest.c.name) & (t.c.revision == latest.c.revision))
        .order_by(t.c.name)
    ).all()
    return [_entity(r) for r in rows]
