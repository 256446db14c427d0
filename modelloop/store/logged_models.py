"""MLflow 3's logged models in the metadata store: a model logged from a run, with
its status, tags and params.

A logged model's files are not tracked here: they are artifacts of its source run
under :func:`artifact_prefix` (``_logged_models/<model_id>``), so blob storage,
garbage collection and ``runs:/RUN/PATH`` URIs treat them like any other
artifact. Every function takes an open connection; the backend wraps each call in
one transaction with its audit row.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Row, delete, select, update
from sqlalchemy.sql.elements import ColumnElement

from modelloop.errors import InvalidArgument, NotFound
from modelloop.store._util import now_ms, upsert
from modelloop.store.schema import logged_model_params, logged_model_tags, logged_models

__all__ = [
    "ARTIFACT_FOLDER",
    "LoggedModel",
    "LoggedModelStatus",
    "artifact_prefix",
    "check_model_id",
    "delete_model",
    "delete_tag",
    "get",
    "insert",
    "log_params",
    "new_model_id",
    "search",
    "set_status",
    "set_tags",
]

#: The folder of a run's artifacts that holds its logged models' files.
ARTIFACT_FOLDER = "_logged_models"

_MODEL_ID_RE = re.compile(r"m-[0-9a-f]{32}")


class LoggedModelStatus(enum.StrEnum):
    """MLflow's ``LoggedModelStatus``: PENDING while its files upload, then READY."""

    PENDING = "LOGGED_MODEL_PENDING"
    READY = "LOGGED_MODEL_READY"
    UPLOAD_FAILED = "LOGGED_MODEL_UPLOAD_FAILED"


@dataclasses.dataclass(frozen=True, slots=True)
class LoggedModel:
    """A model logged from a run (MLflow 3): metadata only, files in the run's artifacts."""

    model_id: str
    experiment_id: str
    source_run_id: str
    name: str
    status: LoggedModelStatus
    creation_time: int
    last_updated_time: int
    model_type: str | None = None
    status_message: str | None = None
    user_id: str | None = None
    tags: dict[str, str] = dataclasses.field(default_factory=dict)
    params: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def artifact_path(self) -> str:
        """Where the model's files are, inside its source run's artifacts."""
        return artifact_prefix(self.model_id)


def new_model_id() -> str:
    """A fresh model id in MLflow's form, ``m-<32 hex digits>``."""
    return f"m-{uuid.uuid4().hex}"


def check_model_id(model_id: Any) -> str:
    """A model id; anything that cannot be one is NotFound (no such model)."""
    if not isinstance(model_id, str) or not _MODEL_ID_RE.fullmatch(model_id):
        raise NotFound(f"logged model {str(model_id)[:80]!r} not found", model_id=str(model_id))
    return model_id


def artifact_prefix(model_id: str) -> str:
    """The folder of a logged model's files in its source run's artifacts."""
    return f"{ARTIFACT_FOLDER}/{check_model_id(model_id)}"


def insert(
    conn: Connection,
    *,
    model_id: str,
    experiment_id: int,
    source_run_id: str,
    name: str,
    model_type: str | None,
    user_id: str | None,
    tags: dict[str, str],
    params: dict[str, str],
) -> LoggedModel:
    """Insert a PENDING logged model with its tags and params."""
    now = now_ms()
    conn.execute(
        logged_models.insert().values(
            model_id=model_id,
            experiment_id=experiment_id,
            source_run_id=source_run_id,
            name=name,
            model_type=model_type,
            status=LoggedModelStatus.PENDING.value,
            status_message=None,
            user_id=user_id,
            creation_time=now,
            last_updated_time=now,
        )
    )
    set_tags(conn, model_id, tags)
    log_params(conn, model_id, params)
    return get(conn, model_id)


def _load(conn: Connection, rows: Sequence[Row[Any]]) -> list[LoggedModel]:
    ids = [r.model_id for r in rows]
    if not ids:
        return []
    tags: dict[str, dict[str, str]] = {i: {} for i in ids}
    for t in conn.execute(select(logged_model_tags).where(logged_model_tags.c.model_id.in_(ids))):
        tags[t.model_id][t.key] = t.value
    params: dict[str, dict[str, str]] = {i: {} for i in ids}
    for p in conn.execute(
        select(logged_model_params).where(logged_model_params.c.model_id.in_(ids))
    ):
        params[p.model_id][p.key] = p.value
    return [
        LoggedModel(
            model_id=r.model_id,
            experiment_id=str(r.experiment_id),
            source_run_id=r.source_run_id,
            name=r.name,
            status=LoggedModelStatus(r.status),
            creation_time=r.creation_time,
            last_updated_time=r.last_updated_time,
            model_type=r.model_type,
            status_message=r.status_message,
            user_id=r.user_id,
            tags=dict(sorted(tags[r.model_id].items())),
            params=dict(sorted(params[r.model_id].items())),
        )
        for r in rows
    ]


def get(conn: Connection, model_id: str) -> LoggedModel:
    """A logged model with its tags and params; NotFound if missing."""
    check_model_id(model_id)
    row = conn.execute(select(logged_models).where(logged_models.c.model_id == model_id)).first()
    if row is None:
        raise NotFound(f"logged model {model_id!r} not found", model_id=model_id)
    return _load(conn, [row])[0]


def search(
    conn: Connection,
    *,
    experiment_ids: Sequence[int] | None = None,
    name: str | None = None,
    source_run_id: str | None = None,
    max_results: int = 100,
    offset: int = 0,
) -> tuple[list[LoggedModel], bool]:
    """Logged models matching every given condition, newest first; one page and
    whether more follow."""
    conds: list[ColumnElement[bool]] = []
    if experiment_ids is not None:
        conds.append(logged_models.c.experiment_id.in_(list(experiment_ids)))
    if name is not None:
        conds.append(logged_models.c.name == name)
    if source_run_id is not None:
        conds.append(logged_models.c.source_run_id == source_run_id)
    rows = conn.execute(
        select(logged_models)
        .where(*conds)
        .order_by(logged_models.c.creation_time.desc(), logged_models.c.model_id)
        .limit(max_results + 1)
        .offset(offset)
    ).all()
    return _load(conn, rows[:max_results]), len(rows) > max_results


def _touch(conn: Connection, model_id: str, **values: Any) -> None:
    result = conn.execute(
        update(logged_models)
        .where(logged_models.c.model_id == model_id)
        .values(last_updated_time=now_ms(), **values)
    )
    if result.rowcount == 0:
        raise NotFound(f"logged model {model_id!r} not found", model_id=model_id)


def set_status(
    conn: Connection, model_id: str, status: LoggedModelStatus, message: str | None = None
) -> LoggedModel:
    """Change a logged model's status (finalising it)."""
    check_model_id(model_id)
    _touch(conn, model_id, status=status.value, status_message=message)
    return get(conn, model_id)


def set_tags(conn: Connection, model_id: str, tags: dict[str, str]) -> None:
    """Set (overwrite) tags of an existing logged model."""
    if not tags:
        return
    _touch(conn, check_model_id(model_id))
    rows = [{"model_id": model_id, "key": k, "value": val} for k, val in tags.items()]
    upsert(conn, logged_model_tags, rows, update=["value"])


def delete_tag(conn: Connection, model_id: str, key: str) -> None:
    """Remove a tag; NotFound when the model or the tag is missing."""
    get(conn, model_id)
    result = conn.execute(
        delete(logged_model_tags).where(
            logged_model_tags.c.model_id == model_id, logged_model_tags.c.key == key
        )
    )
    if result.rowcount == 0:
        raise NotFound(f"logged model {model_id!r} has no tag {key!r}", model_id=model_id)
    _touch(conn, model_id)


def log_params(conn: Connection, model_id: str, params: dict[str, str]) -> None:
    """Record params of an existing logged model; a logged param keeps its value
    (another value is refused, as for runs)."""
    if not params:
        return
    existing = get(conn, model_id).params
    changed = sorted(k for k, val in params.items() if k in existing and existing[k] != val)
    if changed:
        raise InvalidArgument(
            f"Changing param values is not allowed: logged model {model_id!r} already has "
            f"params {changed}",
            model_id=model_id,
        )
    new = [{"model_id": model_id, "key": k, "value": val} for k, val in params.items()]
    upsert(conn, logged_model_params, new, update=["value"])
    _touch(conn, model_id)


def delete_model(conn: Connection, model_id: str) -> None:
    """Forget a logged model (its tags and params with it). Its files stay in the run's
    artifacts: a registered version may still point at them."""
    get(conn, model_id)
    conn.execute(delete(logged_models).where(logged_models.c.model_id == model_id))
