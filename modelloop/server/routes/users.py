"""``/api/v1/users`` and ``/api/v1/tokens``: user and API-token management (admins only,
see :data:`modelloop.server.auth.ADMIN_ROUTES`). The same operations as
``modelloop users`` / ``modelloop tokens``, audited with the calling admin as actor."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, StrictStr

from modelloop import accounts
from modelloop.backends.local_artifacts import LocalStoreBase
from modelloop.errors import ModelloopError
from modelloop.server.errors import ERROR_RESPONSES
from modelloop.store import Database
from modelloop.store.users import StoredToken, StoredUser

__all__ = ["router"]

router = APIRouter(tags=["users"], responses=ERROR_RESPONSES)


class _NotLocal(ModelloopError):
    code = "NOT_IMPLEMENTED"
    http_status = 501


async def _database(request: Request) -> Database:
    backend = request.app.state.backend
    if not isinstance(backend, LocalStoreBase):
        raise _NotLocal("user management needs a server over a local store")
    return backend.db


DatabaseDep = Annotated[Database, Depends(_database)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateUserRequest(_Request):
    """``POST /api/v1/users``; no password: the user signs in with tokens only."""

    name: StrictStr
    role: StrictStr = "editor"
    password: StrictStr | None = None


class UserModel(BaseModel):
    """A user (never a password or its hash)."""

    name: str
    role: str
    has_password: bool
    created_time: int

    @classmethod
    def of(cls, user: StoredUser) -> UserModel:
        return cls(
            name=user.name,
            role=user.role,
            has_password=user.password_hash is not None,
            created_time=user.created_time,
        )


class UserList(BaseModel):
    users: list[UserModel]


class CreateTokenRequest(_Request):
    """``POST /api/v1/users/{name}/tokens``."""

    name: StrictStr = ""


class TokenCreated(BaseModel):
    """The new token: shown in this response only, never again."""

    id: int
    token: str


class TokenModel(BaseModel):
    """An API token's record (never its value)."""

    id: int
    user: str
    name: str
    created_time: int
    last_used_time: int | None
    revoked_time: int | None

    @classmethod
    def of(cls, t: StoredToken) -> TokenModel:
        return cls(
            id=t.id,
            user=t.user,
            name=t.name,
            created_time=t.created_time,
            last_used_time=t.last_used_time,
            revoked_time=t.revoked_time,
        )


class TokenList(BaseModel):
    tokens: list[TokenModel]


UserName = Annotated[str, Path(description="The user name.")]


@router.get("/users", operation_id="list_users")
def list_users(db: DatabaseDep) -> UserList:
    """Every user, by name."""
    return UserList(users=[UserModel.of(u) for u in accounts.list_users(db)])


@router.post("/users", status_code=201, operation_id="create_user")
def create_user(body: CreateUserRequest, db: DatabaseDep) -> UserModel:
    """Add a user."""
    return UserModel.of(accounts.create_user(db, body.name, body.role, body.password))


@router.delete("/users/{name}", status_code=204, operation_id="delete_user")
def delete_user(name: UserName, db: DatabaseDep) -> None:
    """Remove a user and their tokens."""
    accounts.delete_user(db, name)


@router.post("/users/{name}/tokens", status_code=201, operation_id="create_token")
def create_token(name: UserName, body: CreateTokenRequest, db: DatabaseDep) -> TokenCreated:
    """Create an API token for a user; the response is the only time it is shown."""
    token_id, token = accounts.create_token(db, name, body.name)
    return TokenCreated(id=token_id, token=token)


@router.get("/tokens", operation_id="list_tokens")
def list_tokens(
    db: DatabaseDep, user: Annotated[str | None, Query(description="Only this user's.")] = None
) -> TokenList:
    """API tokens (never their values)."""
    return TokenList(tokens=[TokenModel.of(t) for t in accounts.list_tokens(db, user)])


@router.post("/tokens/{token_id}/revoke", operation_id="revoke_token")
def revoke_token(token_id: Annotated[int, Path()], db: DatabaseDep) -> TokenModel:
    """Revoke a token: it stops working on the next request."""
    return TokenModel.of(accounts.revoke_token(db, token_id))
