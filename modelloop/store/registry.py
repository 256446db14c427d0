"""Registered models, versions, tags and aliases in the metadata store.

Every function takes an open connection; the backend wraps each call in one
transaction together with its audit row. Version numbers come from the model's
``next_version`` counter, incremented by one UPDATE: on PostgreSQL the row lock and
on SQLite the ``BEGIN IMMEDIATE`` write lock serialise concurrent registrations.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Row, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from modelloop import validation as v
from modelloop.entities import AliasEvent, ModelVersion, RegisteredModel, VersionStage
from modelloop.errors import AlreadyExists, InvalidArgument, NotFound
from modelloop.store._util import now_ms, upsert
from modelloop.store.schema import (
    alias_events,
    model_aliases,
    model_version_tags,
    model_versions,
    registered_model_tags,
    registered_models,
)

MAX_MODEL_NAME_LENGTH = 256
_ALIAS_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,254}$")
_RESERVED_ALIAS_RE = re.compile(r"^(latest|v\d+)$", re.IGNORECASE)


# validation ---------------------------------------------------------------------


def check_model_name(name: Any) -> str:
    """A registered model name: non-empty, bounded, and free of ``/`` and ``@``, which
    would make ``models:/`` URIs ambiguous."""
    v.check_name(name, "registered model name", MAX_MODEL_NAME_LENGTH)
    if "/" in name or "@" in name:
        raise InvalidArgument(f"registered model name {name!r} must not contain '/' or '@'")
    return str(name)


def check_alias(alias: Any) -> str:
    """An alias name: letters, digits, ``_ . -``, not starting with a digit; ``latest``
    and ``v<N>`` are reserved (they would shadow version references)."""
    if not isinstance(alias, str) or not _ALIAS_RE.match(alias):
        raise InvalidArgument(
            f"invalid alias {alias!r}: use letters, digits, '_', '.' or '-' "
            "(starting with a letter or '_', at most 255 characters)"
        )
    if _RESERVED_ALIAS_RE.match(alias):
        raise InvalidArgument(f"alias {alias!r} is reserved (it looks like a version reference)")
    return alias


def parse_version(version: Any) -> int:
    """A version number (a positive integer, given as int or decimal string)."""
    if isinstance(version, bool):
        raise InvalidArgument(f"invalid model version {version!r}")
    try:
        value = int(version)
    except (TypeError, ValueError):
        raise InvalidArgument(f"invalid model version {version!r}: expected a number") from None
    if value < 1 or value >= 2**31:
        raise InvalidArgument(f"invalid model version {version!r}: out of range")
    return value


def check_stage(stage: Any) -> str:
    """One of MLflow's stage names (case-insensitive)."""
    for s in VersionStage:
        if isinstance(stage, str) and stage.lower() == s.value.lower():
            return s.value
    allowed = ", ".join(s.value for s in VersionStage)
    raise InvalidArgument(f"invalid stage {stage!r}; one of {allowed}")


# registered models ------------------------------------------------------------


def create_model(
    conn: Connection,
    name: str,
    description: str = "",
    tags: dict[str, str] | None = None,
    user: str | None = None,
) -> RegisteredModel:
    """Insert a registered model; AlreadyExists when the name is taken."""
    now = now_ms()
    try:
        with conn.begin_nested():
            conn.execute(
                registered_models.insert().values(
                    name=name,
                    description=description,
                    intended_use="",
                    limitations="",
                    policy=None,
                    next_version=1,
                    user_id=user,
                    creation_time=now,
                    last_updated_time=now,
                )
            )
    except IntegrityError:
        raise AlreadyExists(f"registered model {name!r} already exists", name=name) from None
    if tags:
        set_model_tags(conn, name, tags)
    return get_model(conn, name)


def require_model(conn: Connection, name: str) -> Row[Any]:
    row = conn.execute(select(registered_models).where(registered_models.c.name == name)).first()
    if row is None:
        raise NotFound(f"registered model {name!r} not found", name=name)
    return row


def get_model(conn: Connection, name: str) -> RegisteredModel:
    """A registered model with its tags, aliases and latest version number."""
    return _load_models(conn, [require_model(conn, name)])[0]


def model_exists(conn: Connection, name: str) -> bool:
    """Whether a registered model of that name exists."""
    found = conn.execute(
        select(registered_models.c.name).where(registered_models.c.name == name)
    ).first()
    return found is not None


def _load_models(conn: Connection, rows: Sequence[Row[Any]]) -> list[RegisteredModel]:
    names = [r.name for r in rows]
    if not names:
        return []
    tags: dict[str, dict[str, str]] = {n: {} for n in names}
    for t in conn.execute(
        select(registered_model_tags).where(registered_model_tags.c.name.in_(names))
    ):
        tags[t.name][t.key] = t.value
    aliases: dict[str, dict[str, int]] = {n: {} for n in names}
    for a in conn.execute(select(model_aliases).where(model_aliases.c.name.in_(names))):
        aliases[a.name][a.alias] = a.version
    latest = dict(
        conn.execute(
            select(model_versions.c.name, func.max(model_versions.c.version))
            .where(model_versions.c.name.in_(names))
            .group_by(model_versions.c.name)
        ).all()
    )
    return [
        RegisteredModel(
            name=r.name,
            description=r.description,
            creation_time=r.creation_time,
            last_updated_time=r.last_updated_time,
            user_id=r.user_id,
            intended_use=r.intended_use,
            limitations=r.limitations,
            tags=tags[r.name],
            aliases=dict(sorted(aliases[r.name].items())),
            latest_version=latest.get(r.name),
            policy=json.loads(r.policy) if r.policy else None,
        )
        for r in rows
    ]


def search_models(
    conn: Connection,
    name_like: str | None = None,
    tags: dict[str, str] | None = None,
    max_results: int = 100,
    offset: int = 0,
    order_by_updated: bool = False,
) -> tuple[list[RegisteredModel], bool]:
    """Registered models by name pattern (SQL LIKE) and tag equality; returns one page
    and whether more follow."""
    q = select(registered_models)
    if name_like is not None:
        q = q.where(registered_models.c.name.like(name_like))
    for key, value in (tags or {}).items():
        t = registered_model_tags.alias()
        q = q.where(
            select(t.c.name)
            .where(t.c.name == registered_models.c.name, t.c.key == key, t.c.value == value)
            .exists()
        )
    order = (
        registered_models.c.last_updated_time.desc()
        if order_by_updated
        else registered_models.c.name.asc()
    )
    rows = conn.execute(
        q.order_by(order, registered_models.c.name).limit(max_results + 1).offset(offset)
    ).all()
    return _load_models(conn, rows[:max_results]), len(rows) > max_results


def update_model(conn: Connection, name: str, **fields: Any) -> RegisteredModel:
    """Change card fields (description, intended_use, limitations) or the policy."""
    require_model(conn, name)
    values = {k: val for k, val in fields.items() if val is not None}
    if "policy" in values:
        values["policy"] = json.dumps(values["policy"], sort_keys=True)
    conn.execute(
        update(registered_models)
        .where(registered_models.c.name == name)
        .values(last_updated_time=now_ms(), **values)
    )
    return get_model(conn, name)


def rename_model(conn: Connection, name: str, new_name: str) -> RegisteredModel:
    """Rename a model; its versions, tags, aliases and history follow (ON UPDATE CASCADE)."""
    require_model(conn, name)
    if model_exists(conn, new_name):
        raise AlreadyExists(f"registered model {new_name!r} already exists", name=new_name)
    conn.execute(
        update(registered_models)
        .where(registered_models.c.name == name)
        .values(name=new_name, last_updated_time=now_ms())
    )
    for table in (model_versions, model_version_tags, model_aliases, alias_events):
        # SQLite cascades only with foreign keys on; say it explicitly for both.
        conn.execute(update(table).where(table.c.name == name).values(name=new_name))
    return get_model(conn, new_name)


def delete_model(conn: Connection, name: str) -> None:
    """Delete a model with all its versions, tags, aliases and history."""
    require_model(conn, name)
    conn.execute(delete(registered_models).where(registered_models.c.name == name))


def set_model_tags(conn: Connection, name: str, tags: dict[str, str]) -> None:
    """Set (overwrite) registered model tags."""
    require_model(conn, name)
    rows = [{"name": name, "key": k, "value": val} for k, val in tags.items()]
    upsert(conn, registered_model_tags, rows, ["value"])


def delete_model_tag(conn: Connection, name: str, key: str) -> None:
    """Remove a registered model tag; NotFound when it is not set."""
    require_model(conn, name)
    result = conn.execute(
        delete(registered_model_tags).where(
            registered_model_tags.c.name == name, registered_model_tags.c.key == key
        )
    )
    if result.rowcount == 0:
        raise NotFound(f"registered model {name!r} has no tag {key!r}", name=name, key=key)


# versions -----------------------------------------------------------------------


def create_version(
    conn: Connection,
    name: str,
    source: str,
    *,
    run_id: str | None = None,
    artifact_path: str | None = None,
    model_id: str | None = None,
    description: str = "",
    tags: dict[str, str] | None = None,
    user: str | None = None,
    flavor: str | None = None,
    signature: dict[str, Any] | None = None,
    size_bytes: int | None = None,
) -> ModelVersion:
    """Allocate the next version number and insert the version."""
    now = now_ms()
    result = conn.execute(
        update(registered_models)
        .where(registered_models.c.name == name)
        .values(next_version=registered_models.c.next_version + 1, last_updated_time=now)
    )
    if result.rowcount == 0:
        raise NotFound(f"registered model {name!r} not found", name=name)
    allocated = conn.execute(
        select(registered_models.c.next_version).where(registered_models.c.name == name)
    ).scalar_one()
    version = int(allocated) - 1
    conn.execute(
        model_versions.insert().values(
            name=name,
            version=version,
            source=source,
            run_id=run_id,
            artifact_path=artifact_path,
            model_id=model_id,
            status="READY",
            stage=VersionStage.NONE.value,
            description=description,
            user_id=user,
            flavor=flavor,
            signature=json.dumps(signature, sort_keys=True) if signature is not None else None,
            size_bytes=size_bytes,
            creation_time=now,
            last_updated_time=now,
        )
    )
    if tags:
        set_version_tags(conn, name, version, tags)
    return get_version(conn, name, version)


def require_version(conn: Connection, name: str, version: int) -> Row[Any]:
    row = conn.execute(
        select(model_versions).where(
            model_versions.c.name == name, model_versions.c.version == version
        )
    ).first()
    if row is None:
        if not model_exists(conn, name):
            raise NotFound(f"registered model {name!r} not found", name=name)
        raise NotFound(
            f"model version {name!r} version {version} not found", name=name, version=version
        )
    return row


def get_version(conn: Connection, name: str, version: int) -> ModelVersion:
    """One version with its tags and aliases."""
    return _load_versions(conn, [require_version(conn, name, version)])[0]


def _load_versions(conn: Connection, rows: Sequence[Row[Any]]) -> list[ModelVersion]:
    if not rows:
        return []
    keys = {(r.name, r.version) for r in rows}
    names = sorted({r.name for r in rows})
    tags: dict[tuple[str, int], dict[str, str]] = {k: {} for k in keys}
    for t in conn.execute(select(model_version_tags).where(model_version_tags.c.name.in_(names))):
        if (t.name, t.version) in tags:
            tags[(t.name, t.version)][t.key] = t.value
    aliases: dict[tuple[str, int], list[str]] = {k: [] for k in keys}
    for a in conn.execute(
        select(model_aliases).where(model_aliases.c.name.in_(names)).order_by(model_aliases.c.alias)
    ):
        if (a.name, a.version) in aliases:
            aliases[(a.name, a.version)].append(a.alias)
    return [
        ModelVersion(
            name=r.name,
            version=r.version,
            source=r.source,
            creation_time=r.creation_time,
            last_updated_time=r.last_updated_time,
            run_id=r.run_id,
            artifact_path=r.artifact_path,
            status=r.status,
            stage=r.stage,
            description=r.description,
            user_id=r.user_id,
            flavor=r.flavor,
            signature=json.loads(r.signature) if r.signature else None,
            size_bytes=r.size_bytes,
            model_id=r.model_id,
            tags=tags[(r.name, r.version)],
            aliases=tuple(aliases[(r.name, r.version)]),
        )
        for r in rows
    ]


def version_by_alias(conn: Connection, name: str, alias: str) -> ModelVersion:
    """The version an alias points at; NotFound naming the alias when it is unset."""
    found = conn.execute(
        select(model_aliases.c.version).where(
            model_aliases.c.name == name, model_aliases.c.alias == alias
        )
    ).scalar()
    if found is None:
        require_model(conn, name)
        raise NotFound(f"registered model {name!r} has no alias {alias!r}", name=name, alias=alias)
    return get_version(conn, name, int(found))


def latest_version(conn: Connection, name: str) -> ModelVersion:
    """The highest version that is not archived."""
    found = conn.execute(
        select(func.max(model_versions.c.version)).where(
            model_versions.c.name == name, model_versions.c.stage != VersionStage.ARCHIVED.value
        )
    ).scalar()
    if found is None:
        require_model(conn, name)
        raise NotFound(f"registered model {name!r} has no (unarchived) versions", name=name)
    return get_version(conn, name, int(found))


def search_versions(
    conn: Connection,
    *,
    name: str | None = None,
    name_like: str | None = None,
    run_id: str | None = None,
    versions: Sequence[int] | None = None,
    tags: dict[str, str] | None = None,
    max_results: int = 100,
    offset: int = 0,
) -> tuple[list[ModelVersion], bool]:
    """Versions matching every given condition, newest first; one page and whether
    more follow."""
    conds: list[ColumnElement[bool]] = []
    if name is not None:
        conds.append(model_versions.c.name == name)
    if name_like is not None:
        conds.append(model_versions.c.name.like(name_like))
    if run_id is not None:
        conds.append(model_versions.c.run_id == run_id)
    if versions is not None:
        conds.append(model_versions.c.version.in_(list(versions)))
    for key, value in (tags or {}).items():
        t = model_version_tags.alias()
        conds.append(
            select(t.c.name)
            .where(
                t.c.name == model_versions.c.name,
                t.c.version == model_versions.c.version,
                t.c.key == key,
                t.c.value == value,
            )
            .exists()
        )
    rows = conn.execute(
        select(model_versions)
        .where(*conds)
        .order_by(model_versions.c.name, model_versions.c.version.desc())
        .limit(max_results + 1)
        .offset(offset)
    ).all()
    return _load_versions(conn, rows[:max_results]), len(rows) > max_results


def update_version(
    conn: Connection,
    name: str,
    version: int,
    *,
    description: str | None = None,
    stage: str | None = None,
) -> ModelVersion:
    """Change a version's description or stage (``Archived`` retires it)."""
    require_version(conn, name, version)
    values: dict[str, Any] = {"last_updated_time": now_ms()}
    if description is not None:
        values["description"] = description
    if stage is not None:
        values["stage"] = stage
    conn.execute(
        update(model_versions)
        .where(model_versions.c.name == name, model_versions.c.version == version)
        .values(**values)
    )
    return get_version(conn, name, version)


def delete_version(conn: Connection, name: str, version: int, actor: str) -> None:
    """Delete a version; aliases pointing at it are removed and the removal recorded."""
    require_version(conn, name, version)
    for alias in conn.execute(
        select(model_aliases.c.alias).where(
            model_aliases.c.name == name, model_aliases.c.version == version
        )
    ).scalars():
        _record_alias(conn, name, alias, None, version, actor, f"version {version} deleted")
    conn.execute(
        delete(model_versions).where(
            model_versions.c.name == name, model_versions.c.version == version
        )
    )


def set_version_tags(conn: Connection, name: str, version: int, tags: dict[str, str]) -> None:
    """Set (overwrite) version tags."""
    require_version(conn, name, version)
    rows = [{"name": name, "version": version, "key": k, "value": val} for k, val in tags.items()]
    upsert(conn, model_version_tags, rows, ["value"])


def delete_version_tag(conn: Connection, name: str, version: int, key: str) -> None:
    """Remove a version tag; NotFound when it is not set."""
    require_version(conn, name, version)
    result = conn.execute(
        delete(model_version_tags).where(
            model_version_tags.c.name == name,
            model_version_tags.c.version == version,
            model_version_tags.c.key == key,
        )
    )
    if result.rowcount == 0:
        raise NotFound(
            f"model version {name!r} version {version} has no tag {key!r}",
            name=name,
            version=version,
            key=key,
        )


# aliases ------------------------------------------------------------------------


def _record_alias(
    conn: Connection,
    name: str,
    alias: str,
    version: int | None,
    previous: int | None,
    actor: str,
    reason: str,
    verdict_id: int | None = None,
) -> AliasEvent:
    now = now_ms()
    result = conn.execute(
        alias_events.insert().values(
            name=name,
            alias=alias,
            version=version,
            previous_version=previous,
            time=now,
            actor=actor,
            reason=reason,
            verdict_id=verdict_id,
        )
    )
    assert result.inserted_primary_key is not None
    return AliasEvent(
        id=int(result.inserted_primary_key[0]),
        name=name,
        alias=alias,
        version=version,
        previous_version=previous,
        time=now,
        actor=actor,
        reason=reason,
        verdict_id=verdict_id,
    )


def _current_alias(conn: Connection, name: str, alias: str) -> int | None:
    found = conn.execute(
        select(model_aliases.c.version).where(
            model_aliases.c.name == name, model_aliases.c.alias == alias
        )
    ).scalar()
    return None if found is None else int(found)


def set_alias(
    conn: Connection,
    name: str,
    alias: str,
    version: int,
    actor: str,
    reason: str = "",
    verdict_id: int | None = None,
) -> AliasEvent:
    """Point ``alias`` at ``version`` (creating or moving it) and record the move."""
    require_version(conn, name, version)
    previous = _current_alias(conn, name, alias)
    upsert(conn, model_aliases, [{"name": name, "alias": alias, "version": version}], ["version"])
    conn.execute(
        update(registered_models)
        .where(registered_models.c.name == name)
        .values(last_updated_time=now_ms())
    )
    return _record_alias(conn, name, alias, version, previous, actor, reason, verdict_id)


def delete_alias(conn: Connection, name: str, alias: str, actor: str, reason: str = "") -> None:
    """Remove an alias and record it; NotFound when it is not set."""
    previous = _current_alias(conn, name, alias)
    if previous is None:
        require_model(conn, name)
        raise NotFound(f"registered model {name!r} has no alias {alias!r}", name=name, alias=alias)
    conn.execute(
        delete(model_aliases).where(model_aliases.c.name == name, model_aliases.c.alias == alias)
    )
    _record_alias(conn, name, alias, None, previous, actor, reason)


def alias_history(conn: Connection, name: str, alias: str | None = None) -> list[AliasEvent]:
    """Every recorded move of the model's aliases (or of one alias), oldest first."""
    require_model(conn, name)
    q = select(alias_events).where(alias_events.c.name == name)
    if alias is not None:
        q = q.where(alias_events.c.alias == alias)
    return [
        AliasEvent(
            id=r.id,
            name=r.name,
            alias=r.alias,
            version=r.version,
            previous_version=r.previous_version,
            time=r.time,
            actor=r.actor,
            reason=r.reason,
            verdict_id=r.verdict_id,
        )
        for r in conn.execute(q.order_by(alias_events.c.time, alias_events.c.id))
    ]
