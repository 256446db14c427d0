"""The audit log: who did what, when, to which object.

Rows are written by :func:`record` inside the transaction of the change they
describe, so a change and its audit row commit (or roll back) together. The actor
comes from :data:`ACTOR`, a context variable the server's auth layer sets per request
(Starlette copies the context into the threadpool that runs sync routes); outside a
request (the Python API on a local store, the CLI) the actor is the OS user.
"""

from __future__ import annotations

import dataclasses
import getpass
import json
from contextvars import ContextVar
from typing import Any

from sqlalchemy import Connection, insert, select

from modelloop.store._util import now_ms
from modelloop.store.schema import audit_log

__all__ = ["ACTOR", "AuditEntry", "current_actor", "query", "record"]

#: The authenticated caller of the current request ("local" when the server runs
#: without users); None outside a request.
ACTOR: ContextVar[str | None] = ContextVar("modelloop_actor", default=None)


@dataclasses.dataclass(frozen=True)
class AuditEntry:
    """One audit row."""

    id: int
    time: int
    actor: str
    action: str
    object_type: str
    object_id: str
    details: dict[str, Any]


def current_actor() -> str:
    """The request's actor, else the OS user (``"unknown"`` when there is none)."""
    actor = ACTOR.get()
    if actor is not None:
        return actor
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


# Built once: every write of every resource appends one row.
_INSERT = insert(audit_log)


def record(
    conn: Connection,
    action: str,
    object_type: str,
    object_id: str,
    details: dict[str, Any] | None = None,
    actor: str | None = None,
) -> None:
    """Append one row in the caller's transaction."""
    conn.execute(
        _INSERT,
        {
            "time": now_ms(),
            "actor": (actor or current_actor())[:256],
            "action": action,
            "object_type": object_type,
            "object_id": str(object_id)[:256],
            "details": json.dumps(details or {}, sort_keys=True),
        },
    )


def query(
    conn: Connection,
    *,
    actor: str | None = None,
    action: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    since: int | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    """The newest rows first, filtered on each given field (``since`` in ms)."""
    t = audit_log
    stmt = select(t).order_by(t.c.id.desc()).limit(limit)
    if actor is not None:
        stmt = stmt.where(t.c.actor == actor)
    if action is not None:
        stmt = stmt.where(t.c.action == action)
    if object_type is not None:
        stmt = stmt.where(t.c.object_type == object_type)
    if object_id is not None:
        stmt = stmt.where(t.c.object_id == object_id)
    if since is not None:
        stmt = stmt.where(t.c.time >= since)
    return [
        AuditEntry(
            id=int(r.id),
            time=int(r.time),
            actor=r.actor,
            action=r.action,
            object_type=r.object_type,
            object_id=r.object_id,
            details=json.loads(r.details),
        )
        for r in conn.execute(stmt)
    ]
