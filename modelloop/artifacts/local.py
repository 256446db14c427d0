"""A blob store in a local folder: ``<root>/blobs/ab/cdef...``, writes staged in ``<root>/tmp/``."""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from modelloop.artifacts._io import StreamingBlobStore, copy_hashing, is_digest, verifying_reader
from modelloop.artifacts.base import BlobRef, BlobStat, blob_key
from modelloop.errors import NotFound

__all__ = ["LocalBlobStore"]


class LocalBlobStore(StreamingBlobStore):
    """Content-addressed blobs in a local folder (created if missing).

    Writes go to a temp file in ``<root>/tmp`` (same filesystem as the blobs), are
    fsynced and then renamed into place, so a blob is either complete or absent.
    """

    def __init__(self, root: str | Path) -> None:
        self._root = Path(root).expanduser().resolve()
        self._blobs = self._root / "blobs"
        self._tmp = self._root / "tmp"
        self._blobs.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"LocalBlobStore({str(self._root)!r})"

    @property
    def uri(self) -> str:
        """The absolute path of the store's folder."""
        return str(self._root)

    def _path(self, digest: str) -> Path:
        return self._blobs / blob_key(digest)

    def put_stream(self, stream: BinaryIO) -> BlobRef:
        """Store everything read from ``stream``, in chunks."""
        tmp = self._tmp / f"{uuid.uuid4().hex}.part"
        try:
            with open(tmp, "xb") as out:
                ref = copy_hashing(stream, out)
                out.flush()
                os.fsync(out.fileno())
            final = self._path(ref.digest)
            if _same_size(final, ref.size):
                tmp.unlink()
                _touch(final)
            else:
                # Absent, or present with the wrong size (corrupted): the fresh copy
                # is correct by construction, so it replaces whatever is there.
                final.parent.mkdir(exist_ok=True)
                os.replace(tmp, final)
                _fsync_dir(final.parent)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return ref

    def put_bytes(self, data: bytes) -> BlobRef:
        """Store a small value; when an equal blob exists, nothing is written."""
        digest = hashlib.sha256(data).hexdigest()
        final = self._path(digest)
        if _same_size(final, len(data)):
            _touch(final)
            return BlobRef(digest=digest, size=len(data))
        return super().put_bytes(data)

    def open(self, digest: str) -> BinaryIO:
        """A reader that raises DataCorrupted at end of stream if the content does not match."""
        path = self._path(digest)
        try:
            # Owned and closed by the verifying reader returned below.
            raw = open(path, "rb", buffering=0)  # noqa: SIM115
        except FileNotFoundError:
            raise NotFound(f"no blob {digest} in {self._root}", digest=digest) from None
        return verifying_reader(raw, digest)

    def exists(self, digest: str) -> bool:
        """Whether the blob is stored."""
        return self._path(digest).is_file()

    def delete(self, digest: str) -> None:
        """Remove a blob; no error if it is absent."""
        self._path(digest).unlink(missing_ok=True)

    def iter_blobs(self) -> Iterator[BlobStat]:
        """Every stored blob; files of unfinished writes (in ``tmp/``) are not listed."""
        with os.scandir(self._blobs) as fanout:
            prefixes = sorted(e.name for e in fanout if e.is_dir() and len(e.name) == 2)
        for prefix in prefixes:
            try:
                with os.scandir(self._blobs / prefix) as entries:
                    names = sorted(e.name for e in entries)
            except FileNotFoundError:
                continue
            for name in names:
                digest = prefix + name
                if not is_digest(digest):
                    continue
                try:
                    st = (self._blobs / prefix / name).stat()
                except FileNotFoundError:  # deleted concurrently
                    continue
                yield BlobStat(digest=digest, size=st.st_size, mtime=st.st_mtime)


def _touch(path: Path) -> None:
    # A re-put blob is young again, so gc's grace period protects it until the
    # record that refers to it is committed.
    with contextlib.suppress(FileNotFoundError):
        os.utime(path)


def _same_size(path: Path, size: int) -> bool:
    try:
        return path.stat().st_size == size
    except FileNotFoundError:
        return False


def _fsync_dir(path: Path) -> None:
    # Makes the rename durable; directories cannot be opened this way on Windows.
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
