"""The typed error hierarchy.

Every error modelloop raises on purpose is a :class:`ModelloopError`. Each class
carries a stable ``code`` (a string that never changes between releases) and
the HTTP status the server answers with, so that a remote call raises the same
exception a local one does.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AlreadyExists",
    "Conflict",
    "DataCorrupted",
    "InvalidArgument",
    "InvalidState",
    "MissingDependency",
    "ModelloopError",
    "NotFound",
    "PermissionDenied",
    "SchemaOutdated",
    "SignatureMismatch",
    "StoreUnavailable",
    "Unauthenticated",
    "UntrustedModel",
    "error_class_for_code",
]


class ModelloopError(Exception):
    """Base class of every error modelloop raises deliberately."""

    code: ClassVar[str] = "INTERNAL_ERROR"
    http_status: ClassVar[int] = 500

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details

    def to_dict(self) -> dict[str, Any]:
        """The JSON body the server sends for this error."""
        body: dict[str, Any] = {"error_code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self.details))


def _rebuild(cls: type[ModelloopError], message: str, details: dict[str, Any]) -> ModelloopError:
    return cls(message, **details)


class InvalidArgument(ModelloopError):
    """An argument is malformed or out of range (an invalid key, a non-number metric, ...)."""

    code = "INVALID_ARGUMENT"
    http_status = 400


class InvalidState(ModelloopError):
    """The operation is not allowed in the object's current state (e.g. logging to an ended run)."""

    code = "INVALID_STATE"
    http_status = 400


class NotFound(ModelloopError):
    """The named object does not exist."""

    code = "NOT_FOUND"
    http_status = 404


class AlreadyExists(ModelloopError):
    """An object with that identity already exists."""

    code = "ALREADY_EXISTS"
    http_status = 409


class Conflict(ModelloopError):
    """The request conflicts with stored state (e.g. a param re-logged with another value)."""

    code = "CONFLICT"
    http_status = 409


class Unauthenticated(ModelloopError):
    """No valid credentials were given."""

    code = "UNAUTHENTICATED"
    http_status = 401


class PermissionDenied(ModelloopError):
    """The caller is authenticated but not allowed to do this."""

    code = "PERMISSION_DENIED"
    http_status = 403


class SchemaOutdated(ModelloopError):
    """The metadata database was made by an older modelloop; ``modelloop db upgrade`` fixes it."""

    code = "SCHEMA_OUTDATED"
    http_status = 503


class StoreUnavailable(ModelloopError):
    """The metadata store or artifact store cannot be reached."""

    code = "STORE_UNAVAILABLE"
    http_status = 503


class DataCorrupted(ModelloopError):
    """Stored content no longer matches its digest."""

    code = "DATA_CORRUPTED"
    http_status = 500


class SignatureMismatch(InvalidArgument):
    """Prediction input does not fit the model's signature (a missing column, a wrong type)."""

    code = "SIGNATURE_MISMATCH"
    http_status = 400


class UntrustedModel(PermissionDenied):
    """Loading this model would unpickle (run) arbitrary code and the caller did not opt in."""

    code = "UNTRUSTED_MODEL"
    http_status = 403


class MissingDependency(InvalidState):
    """An optional library this operation needs is not installed; the message names the extra."""

    code = "MISSING_DEPENDENCY"
    http_status = 400


_BY_CODE: dict[str, type[ModelloopError]] = {
    cls.code: cls
    for cls in (
        ModelloopError,
        InvalidArgument,
        InvalidState,
        NotFound,
        AlreadyExists,
        Conflict,
        Unauthenticated,
        PermissionDenied,
        SchemaOutdated,
        StoreUnavailable,
        DataCorrupted,
        SignatureMismatch,
        UntrustedModel,
        MissingDependency,
    )
}


def error_class_for_code(code: str) -> type[ModelloopError]:
    """The error class for a stable error code (``ModelloopError`` for an unknown one)."""
    return _BY_CODE.get(code, ModelloopError)
