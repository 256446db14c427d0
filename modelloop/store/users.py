"""Users and API tokens in the metadata store (hashes only; see ``modelloop.accounts``)."""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import Connection, Row, Select, delete, exists, insert, select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError

from modelloop.errors import AlreadyExists, NotFound
from modelloop.store._util import now_ms
from modelloop.store.schema import api_tokens, users

__all__ = [
    "ANY_USER_SQL",
    "StoredToken",
    "StoredUser",
    "any_user",
    "create_token",
    "create_user",
    "delete_user",
    "get_user",
    "list_tokens",
    "list_users",
    "revoke_token",
    "token_by_hash",
    "touch_token",
]


@dataclasses.dataclass(frozen=True)
class StoredUser:
    """A user row (``password_hash`` is a KDF hash, never a password)."""

    id: int
    name: str
    role: str
    password_hash: str | None
    created_time: int


@dataclasses.dataclass(frozen=True)
class StoredToken:
    """An API token row (its sha256, never the token)."""

    id: int
    user: str
    role: str
    name: str
    created_time: int
    last_used_time: int | None
    revoked_time: int | None


_ANY_USER_Q = select(exists().select_from(users))
#: :func:`any_user`'s query as SQLite SQL, for
#: :meth:`~modelloop.store.engine.Database.read_now`.
ANY_USER_SQL = str(_ANY_USER_Q.compile(dialect=sqlite.dialect()))


def any_user(conn: Connection) -> bool:
    """Whether at least one user exists (auth is on)."""
    return bool(conn.execute(_ANY_USER_Q).scalar())


def create_user(conn: Connection, name: str, role: str, password_hash: str | None) -> StoredUser:
    """Insert a user; AlreadyExists when the name is taken."""
    try:
        with conn.begin_nested():
            conn.execute(
                insert(users).values(
                    name=name, role=role, password_hash=password_hash, created_time=now_ms()
                )
            )
    except IntegrityError:
        raise AlreadyExists(f"user {name!r} already exists") from None
    return get_user(conn, name)


def get_user(conn: Connection, name: str) -> StoredUser:
    """A user by name; NotFound when there is none."""
    row = conn.execute(select(users).where(users.c.name == name)).first()
    if row is None:
        raise NotFound(f"no user named {name!r}")
    return StoredUser(row.user_id, row.name, row.role, row.password_hash, row.created_time)


def list_users(conn: Connection) -> list[StoredUser]:
    """Every user, by name."""
    rows = conn.execute(select(users).order_by(users.c.name))
    return [StoredUser(r.user_id, r.name, r.role, r.password_hash, r.created_time) for r in rows]


def delete_user(conn: Connection, name: str) -> None:
    """Remove a user and their tokens; NotFound when there is none."""
    user = get_user(conn, name)
    conn.execute(delete(api_tokens).where(api_tokens.c.user_id == user.id))
    conn.execute(delete(users).where(users.c.user_id == user.id))


def create_token(conn: Connection, user: str, token_hash: str, name: str) -> int:
    """Insert a token for ``user`` by its hash; returns its id."""
    owner = get_user(conn, user)
    result = conn.execute(
        insert(api_tokens)
        .values(user_id=owner.id, token_hash=token_hash, name=name, created_time=now_ms())
        .returning(api_tokens.c.token_id)
    )
    return int(result.scalar_one())


def _token_query() -> Select[Any]:
    return select(
        api_tokens.c.token_id,
        users.c.name.label("user"),
        users.c.role,
        api_tokens.c.name,
        api_tokens.c.created_time,
        api_tokens.c.last_used_time,
        api_tokens.c.revoked_time,
    ).join(users, users.c.user_id == api_tokens.c.user_id)


def _token(row: Row[Any]) -> StoredToken:
    return StoredToken(
        id=int(row.token_id),
        user=row.user,
        role=row.role,
        name=row.name,
        created_time=int(row.created_time),
        last_used_time=row.last_used_time,
        revoked_time=row.revoked_time,
    )


def token_by_hash(conn: Connection, token_hash: str) -> StoredToken | None:
    """The token with this sha256 (revoked or not), or None."""
    row = conn.execute(_token_query().where(api_tokens.c.token_hash == token_hash)).first()
    return None if row is None else _token(row)


def list_tokens(conn: Connection, user: str | None = None) -> list[StoredToken]:
    """Tokens (of one user when given), oldest first."""
    stmt = _token_query().order_by(api_tokens.c.token_id)
    if user is not None:
        get_user(conn, user)
        stmt = stmt.where(users.c.name == user)
    return [_token(r) for r in conn.execute(stmt)]


def revoke_token(conn: Connection, token_id: int) -> StoredToken:
    """Mark a token revoked (idempotent); NotFound when there is none."""
    conn.execute(
        update(api_tokens)
        .where(api_tokens.c.token_id == token_id, api_tokens.c.revoked_time.is_(None))
        .values(revoked_time=now_ms())
    )
    row = conn.execute(_token_query().where(api_tokens.c.token_id == token_id)).first()
    if row is None:
        raise NotFound(f"no API token with id {token_id}")
    return _token(row)


def touch_token(conn: Connection, token_id: int, when: int) -> None:
    """Record that a token was used at ``when`` (ms)."""
    conn.execute(
        update(api_tokens).where(api_tokens.c.token_id == token_id).values(last_used_time=when)
    )
