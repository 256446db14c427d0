"""Users, roles, passwords and API tokens: the logic behind the server's auth and
``modelloop users`` / ``modelloop tokens`` / ``modelloop audit``.

These functions work on the metadata database directly (the server's ``--db``), not
through a tracking server. Passwords are hashed with scrypt (a per-user random salt,
compared in constant time); an API token is random (``secrets.token_urlsafe``), shown
once when created and stored only as its sha256. Every change is audited in its own
transaction.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import secrets
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection

from modelloop import validation as v
from modelloop.errors import InvalidArgument, NotFound
from modelloop.store import Database
from modelloop.store import audit as audit_store
from modelloop.store import users as user_store
from modelloop.store._util import now_ms
from modelloop.store.audit import AuditEntry
from modelloop.store.users import StoredToken, StoredUser

__all__ = [
    "TOKEN_PREFIX",
    "Identity",
    "audit_log",
    "Role",
    "authenticate_password",
    "authenticate_token",
    "create_token",
    "create_user",
    "delete_user",
    "has_users",
    "has_users_now",
    "hash_password",
    "hash_token",
    "list_tokens",
    "list_users",
    "revoke_token",
    "verify_password",
]

T = TypeVar("T")

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
#: Every token starts with this, so a token sent as a Basic password is recognised.
TOKEN_PREFIX = "mlp_"  # noqa: S105 (a public marker, not a secret)
#: A token's last-used time is written at most this often (ms): reads stay reads.
_TOUCH_EVERY_MS = 60_000


class Role(enum.IntEnum):
    """What a user may do; each role includes the ones below it."""

    VIEWER = 1  # reads
    EDITOR = 2  # + writes
    ADMIN = 3  # + gc and user management

    @classmethod
    def parse(cls, name: str) -> Role:
        """A role by its lower-case name."""
        try:
            return cls[name.upper()]
        except KeyError:
            allowed = ", ".join(r.name.lower() for r in cls)
            raise InvalidArgument(f"unknown role {name!r}; one of {allowed}") from None

    @property
    def label(self) -> str:
        """The role's name as stored and shown."""
        return self.name.lower()


class Identity:
    """An authenticated caller."""

    __slots__ = ("name", "role")

    def __init__(self, name: str, role: Role) -> None:
        self.name = name
        self.role = role

    def __repr__(self) -> str:
        return f"Identity({self.name!r}, {self.role.label})"


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$hash`` (base64) with a fresh random salt."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    b64 = base64.b64encode
    params = f"{_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}"
    return f"scrypt${params}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches a :func:`hash_password` hash (constant-time compare)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def hash_token(token: str) -> str:
    """The sha256 (hex) a token is stored and looked up by."""
    return hashlib.sha256(token.encode()).hexdigest()


def _write(db: Database, fn: Callable[[Connection], T]) -> T:
    def run() -> T:
        with db.write() as conn:
            return fn(conn)

    return db.retrying(run)


def _read(db: Database, fn: Callable[[Connection], T]) -> T:
    def run() -> T:
        with db.read() as conn:
            return fn(conn)

    return db.retrying(run)


def has_users(db: Database) -> bool:
    """Whether any user exists: then every request must authenticate."""
    return _read(db, user_store.any_user)


def has_users_now(db: Database) -> bool | None:
    """:func:`has_users` answered without waiting or leaving the calling thread (an
    event loop may call it), or None when it cannot be told at once
    (:meth:`~modelloop.store.engine.Database.read_now`): then ask :func:`has_users`."""
    rows = db.read_now(user_store.ANY_USER_SQL)
    return None if not rows else bool(rows[0][0])


def create_user(db: Database, name: str, role: str, password: str | None) -> StoredUser:
    """Add a user (``password`` None: the user signs in with API tokens only)."""
    v.check_name(name, "user name", v.MAX_USER_LENGTH)
    if ":" in name:
        raise InvalidArgument("a user name cannot contain ':' (HTTP Basic separates on it)")
    parsed = Role.parse(role)
    if password is not None and len(password) < 8:
        raise InvalidArgument("a password needs at least 8 characters")
    hashed = None if password is None else hash_password(password)

    def write(conn: Connection) -> StoredUser:
        user = user_store.create_user(conn, name, parsed.label, hashed)
        audit_store.record(conn, "user.create", "user", name, {"role": parsed.label})
        return user

    return _write(db, write)


def list_users(db: Database) -> list[StoredUser]:
    """Every user, by name."""
    return _read(db, user_store.list_users)


def delete_user(db: Database, name: str) -> None:
    """Remove a user and their tokens."""

    def write(conn: Connection) -> None:
        user_store.delete_user(conn, name)
        audit_store.record(conn, "user.delete", "user", name)

    _write(db, write)


def create_token(db: Database, user: str, name: str = "") -> tuple[int, str]:
    """A new API token for ``user``: (its id, the token). The token is not stored and
    cannot be shown again."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    label = name or "token"
    v.check_name(label, "token name", 256)

    def write(conn: Connection) -> int:
        token_id = user_store.create_token(conn, user, hash_token(token), label)
        audit_store.record(conn, "token.create", "token", str(token_id), {"user": user})
        return token_id

    return _write(db, write), token


def list_tokens(db: Database, user: str | None = None) -> list[StoredToken]:
    """API tokens (never their values), of one user when given."""
    return _read(db, lambda c: user_store.list_tokens(c, user))


def revoke_token(db: Database, token_id: int) -> StoredToken:
    """Revoke a token: it stops working on the next request."""
    v.check_int("token id", token_id)  # beyond 64 bits the driver fails, not the lookup

    def write(conn: Connection) -> StoredToken:
        token = user_store.revoke_token(conn, token_id)
        audit_store.record(conn, "token.revoke", "token", str(token_id), {"user": token.user})
        return token

    return _write(db, write)


def authenticate_password(
    db: Database, name: str, password: str, verified: dict[tuple[str, str], str] | None = None
) -> Identity | None:
    """The user when ``password`` is theirs, else None. ``verified`` remembers
    (user, sha256 of the password) -> the stored hash it matched, so a client sending
    Basic on every request pays the KDF once; the user is still looked up each time,
    so a deleted user or a changed password takes effect at once."""
    try:
        user = _read(db, lambda c: user_store.get_user(c, name))
    except NotFound:
        return None
    if user.password_hash is None:
        return None
    key = (name, hashlib.sha256(password.encode()).hexdigest())
    if verified is None or verified.get(key) != user.password_hash:
        if not verify_password(password, user.password_hash):
            return None
        if verified is not None:
            verified[key] = user.password_hash
    return Identity(user.name, Role.parse(user.role))


def authenticate_token(db: Database, token: str) -> Identity | None:
    """The token's user when the token is known and not revoked, else None."""
    found = _read(db, lambda c: user_store.token_by_hash(c, hash_token(token)))
    if found is None or found.revoked_time is not None:
        return None
    now = now_ms()
    if found.last_used_time is None or now - found.last_used_time > _TOUCH_EVERY_MS:
        _write(db, lambda c: user_store.touch_token(c, found.id, now))
    return Identity(found.user, Role.parse(found.role))


def audit_log(
    db: Database,
    *,
    actor: str | None = None,
    action: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    since: int | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    """Audit rows, newest first, filtered on each given field (``since`` in ms)."""
    return _read(
        db,
        lambda c: audit_store.query(
            c,
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=object_id,
            since=since,
            limit=limit,
        ),
    )
