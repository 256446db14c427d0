"""The blob store interface: content-addressed, immutable blobs named by sha256."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from modelloop.errors import InvalidArgument

CHUNK_SIZE = 1024 * 1024
_DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclasses.dataclass(frozen=True, slots=True)
class BlobRef:
    """A stored blob: its sha256 hex digest and size in bytes."""

    digest: str
    size: int


@dataclasses.dataclass(frozen=True, slots=True)
class BlobStat:
    """A blob as listed by :meth:`BlobStore.iter_blobs`; ``mtime`` in seconds since the epoch."""

    digest: str
    size: int
    mtime: float


def check_digest(digest: str) -> str:
    """Return ``digest`` if it is a lowercase sha256 hex string, else raise InvalidArgument."""
    if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
        raise InvalidArgument(f"not a sha256 hex digest: {digest!r}")
    return digest


def blob_key(digest: str) -> str:
    """The relative path of a blob: ``ab/cdef...`` (fan-out on the first byte)."""
    check_digest(digest)
    return f"{digest[:2]}/{digest[2:]}"


@runtime_checkable
class BlobStore(Protocol):
    """Content-addressed storage. Writes are atomic, identical content is stored once,
    and a blob whose content no longer matches its digest is refused on read
    (:class:`modelloop.errors.DataCorrupted`)."""

    @property
    def uri(self) -> str:
        """The root of the store."""
        ...

    def put_stream(self, stream: BinaryIO) -> BlobRef:
        """Store everything read from ``stream`` (in chunks, never whole in memory)."""
        ...

    def put_file(self, path: str | Path) -> BlobRef:
        """Store a local file."""
        ...

    def put_bytes(self, data: bytes) -> BlobRef:
        """Store a small in-memory value."""
        ...

    def open(self, digest: str) -> BinaryIO:
        """A reader of the blob; raises DataCorrupted at end of stream if the content
        does not match the digest, NotFound if there is no such blob."""
        ...

    def read_bytes(self, digest: str) -> bytes:
        """The whole (verified) content of a small blob."""
        ...

    def copy_to(self, digest: str, dest: str | Path) -> None:
        """Write the blob to a local file atomically; the file appears only if verified."""
        ...

    def exists(self, digest: str) -> bool:
        """Whether the blob is stored."""
        ...

    def delete(self, digest: str) -> None:
        """Remove a blob (no error if absent)."""
        ...

    def iter_blobs(self) -> Iterator[BlobStat]:
        """Every stored blob (temporary files of unfinished writes excluded)."""
        ...
