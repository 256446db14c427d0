"""Streaming helpers shared by the blob stores: hashing copies and a verifying reader."""

from __future__ import annotations

import abc
import hashlib
import io
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from modelloop.artifacts.base import CHUNK_SIZE, BlobRef, check_digest
from modelloop.errors import DataCorrupted, InvalidArgument

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = [
    "StreamingBlobStore",
    "copy_hashing",
    "is_digest",
    "verifying_reader",
    "write_verified_file",
]


def is_digest(name: str) -> bool:
    """Whether ``name`` is a well-formed digest (used to skip stray files when listing)."""
    try:
        check_digest(name)
    except InvalidArgument:
        return False
    return True


def copy_hashing(src: BinaryIO, dst: BinaryIO) -> BlobRef:
    """Copy ``src`` to ``dst`` in CHUNK_SIZE pieces; return the sha256 and size of what passed."""
    sha = hashlib.sha256()
    size = 0
    while chunk := src.read(CHUNK_SIZE):
        if not isinstance(chunk, bytes | bytearray | memoryview):
            raise InvalidArgument("the stream must be opened in binary mode")
        sha.update(chunk)
        dst.write(chunk)
        size += len(chunk)
    return BlobRef(digest=sha.hexdigest(), size=size)


class _VerifyingRaw(io.RawIOBase):
    """Reads ``raw`` while hashing it; at end of stream the hash must equal ``digest``."""

    def __init__(self, raw: BinaryIO, digest: str, where: str) -> None:
        super().__init__()
        self._raw = raw
        self._digest = digest
        self._where = where
        self._sha = hashlib.sha256()
        self._size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        data = self._raw.read(len(view))
        if not data:
            self._verify()
            return 0
        n = len(data)
        view[:n] = data
        self._sha.update(data)
        self._size += n
        return n

    def readall(self) -> bytes:
        parts = []
        while chunk := self.read(CHUNK_SIZE):
            parts.append(chunk)
        return b"".join(parts)

    def _verify(self) -> None:
        # Checked on every read at end of stream, so a caller that swallows the
        # error and reads again does not get a clean-looking EOF.
        actual = self._sha.hexdigest()
        if actual != self._digest:
            raise DataCorrupted(
                f"blob {self._digest}: the content {self._where} no longer matches its digest "
                f"({self._size} bytes read, hashing to {actual})",
                digest=self._digest,
                actual_digest=actual,
                size_read=self._size,
            )

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            super().close()


def verifying_reader(raw: BinaryIO, digest: str, where: str = "on disk") -> BinaryIO:
    """Wrap ``raw`` (positioned at the start of a blob) in a reader that raises
    DataCorrupted at end of stream unless the bytes read hash to ``digest``.
    ``where`` says in the error where the bytes came from. Owns ``raw``: closing
    the reader closes it."""
    return io.BufferedReader(_VerifyingRaw(raw, check_digest(digest), where), CHUNK_SIZE)


def write_verified_file(reader: BinaryIO, dest: str | Path) -> None:
    """Stream ``reader`` (a verifying reader) to a temp file next to ``dest``, then
    move it into place; if reading fails (e.g. DataCorrupted) no ``dest`` appears."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Not tempfile.mkstemp: it creates mode 0600 files, and dest should get the usual mode.
    tmp = dest.parent / f".{dest.name}.{uuid.uuid4().hex}.tmp"
    try:
        with open(tmp, "xb") as out:
            while chunk := reader.read(CHUNK_SIZE):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class StreamingBlobStore(abc.ABC):
    """The BlobStore methods that follow from ``put_stream`` and ``open``."""

    @abc.abstractmethod
    def put_stream(self, stream: BinaryIO) -> BlobRef:
        """Store everything read from ``stream``."""

    @abc.abstractmethod
    def open(self, digest: str) -> BinaryIO:
        """A verifying reader of the blob."""

    def put_file(self, path: str | Path) -> BlobRef:
        """Store a local file."""
        with open(path, "rb", buffering=0) as f:
            return self.put_stream(f)

    def put_bytes(self, data: bytes) -> BlobRef:
        """Store a small in-memory value."""
        return self.put_stream(io.BytesIO(data))

    def read_bytes(self, digest: str) -> bytes:
        """The whole (verified) content of a small blob."""
        with self.open(digest) as f:
            return f.read()

    def copy_to(self, digest: str, dest: str | Path) -> None:
        """Write the blob to a local file atomically; the file appears only if verified."""
        with self.open(digest) as f:
            write_verified_file(f, dest)
