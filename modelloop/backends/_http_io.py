"""Helpers of HttpBackend: request models, errors, URLs, streamed bodies, safe paths."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from modelloop import validation as v
from modelloop.artifacts.base import CHUNK_SIZE
from modelloop.entities import Metric
from modelloop.errors import (
    Conflict,
    InvalidArgument,
    ModelloopError,
    NotFound,
    PermissionDenied,
    StoreUnavailable,
    Unauthenticated,
    error_class_for_code,
)
from modelloop.server.schemas import ErrorBody, MetricModel

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = [
    "ResponseReader",
    "body_chunks",
    "error_from_response",
    "invalid_arguments",
    "safe_target",
    "unreachable",
    "url_path",
    "url_segment",
    "wire_metric",
    "wire_request",
    "wire_string",
    "wire_strings",
]

M = TypeVar("M", bound=BaseModel)

# Used when a response has no JSON error body (a proxy's error page, say).
_BY_STATUS: dict[int, type[ModelloopError]] = {
    400: InvalidArgument,
    401: Unauthenticated,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    502: StoreUnavailable,
    503: StoreUnavailable,
    504: StoreUnavailable,
}


def error_from_response(response: httpx.Response) -> ModelloopError:
    """The typed error an error response stands for: the class named by its
    ``error_code`` with its message and details, else one chosen by status."""
    try:
        body = ErrorBody.model_validate_json(response.content)
    except ValidationError:
        cls = _BY_STATUS.get(response.status_code, ModelloopError)
        return cls(
            f"{response.request.method} {response.url}: HTTP {response.status_code} "
            f"{response.reason_phrase}: {response.text[:300]}",
            status=response.status_code,
        )
    details = {k: val for k, val in (body.details or {}).items() if k != "message"}
    return error_class_for_code(body.error_code)(body.message, **details)


def unreachable(base_url: str, exc: httpx.TransportError) -> StoreUnavailable:
    """The error for a request that got no response."""
    if isinstance(exc, httpx.TimeoutException):
        message = f"the tracking server at {base_url} did not answer in time ({exc})"
    else:
        message = f"cannot reach the tracking server at {base_url}: {exc}"
    return StoreUnavailable(message, url=base_url)


@contextlib.contextmanager
def invalid_arguments() -> Iterator[None]:
    """Wrongly typed arguments found while building a request are InvalidArgument, as
    they are for the local backend (not a pydantic ValidationError)."""
    try:
        yield
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise InvalidArgument(f"invalid argument: {problems}") from None


def wire_request(model: type[M], **fields: Any) -> M:
    """``model(**fields)``, with type errors raised as InvalidArgument."""
    with invalid_arguments():
        return model(**fields)


def wire_string(value: Any, what: str = "tag", key: str = "") -> str:
    """A tag or param value as the local backend stores it: ``str(value)``; None is refused."""
    if value is None:
        raise InvalidArgument(f"{what} {key!r} value must not be None", key=key)
    return value if isinstance(value, str) else str(value)


def wire_strings(values: dict[str, Any] | None) -> dict[str, str] | None:
    """Tag values as strings (see :func:`wire_string`)."""
    if values is None:
        return None
    return {k: wire_string(val, "tag", k) for k, val in values.items()}


def wire_metric(m: Metric) -> MetricModel:
    """A metric point checked as the local backend checks it (same messages), before
    anything is sent."""
    key = v.check_key(m.key, "metric")
    return MetricModel(
        key=key,
        value=v.check_metric_value(key, m.value),
        timestamp=v.check_int("timestamp", m.timestamp),
        step=v.check_int("step", m.step),
    )


def url_segment(value: str) -> str:
    """``value`` as one URL path segment, sent exactly: every reserved character is
    escaped, and so are the dots of ``.`` and ``..``, which httpx (and proxies) would
    otherwise resolve away. The server receives the original string and checks it."""
    quoted = quote(value, safe="")
    return quoted.replace(".", "%2E") if quoted in (".", "..") else quoted


def url_path(value: str) -> str:
    """``value`` (which may contain slashes) as URL path segments, sent exactly."""
    return "/".join(url_segment(part) for part in value.split("/"))


def body_chunks(stream: BinaryIO) -> Iterator[bytes]:
    """The content of a binary stream, CHUNK_SIZE at a time, for a streamed request body.

    The first chunk is read now, so a text-mode stream is refused before anything is sent.
    """
    first = stream.read(CHUNK_SIZE)
    if not isinstance(first, bytes | bytearray | memoryview):
        raise InvalidArgument("the stream must be opened in binary mode")

    def chunks() -> Iterator[bytes]:
        chunk = first
        while chunk:
            yield bytes(chunk)
            chunk = stream.read(CHUNK_SIZE)

    return chunks()


class ResponseReader(io.RawIOBase):
    """A streamed response body as a raw binary file; closing it closes the response.
    A connection that breaks mid-body is StoreUnavailable, not a silent short read."""

    def __init__(self, response: httpx.Response, what: str) -> None:
        super().__init__()
        self._response = response
        self._chunks = response.iter_bytes()
        self._what = what
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        while not self._pending:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                return 0
            except httpx.TransportError as exc:
                raise StoreUnavailable(
                    f"the download of {self._what} from {self._response.url} broke off: {exc} "
                    "(if it happens again, the server's log says why: a stored file that "
                    "fails its digest check is one cause)",
                    url=str(self._response.url),
                ) from exc
            self._pending = memoryview(chunk)
        view = memoryview(buffer).cast("B")
        n = min(len(view), len(self._pending))
        view[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        try:
            self._response.close()
        finally:
            super().close()


def safe_target(dest: Path, path: str, under: str | None) -> Path:
    """Where a downloaded artifact goes: ``dest/path``, refusing a path (sent by the
    server, so untrusted) that is not a clean relative path below ``under`` or that
    would resolve outside ``dest``."""
    try:
        clean = v.check_artifact_path(path)
    except InvalidArgument:
        clean = ""
    inside = under is None or clean == under or clean.startswith(under + "/")
    target = dest / clean
    if not clean or clean != path or not inside or not _within(target, dest):
        raise InvalidArgument(
            f"refusing the artifact path {path!r} sent by the server: "
            f"it would be written outside {str(dest)!r} or the requested folder",
            path=path,
        )
    return target


def _within(target: Path, root: Path) -> bool:
    return target.resolve().is_relative_to(root.resolve())
