"""A blob store on any fsspec filesystem (``s3://``, ``gs://``, ``memory://``, ...)."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO

from fsspec.core import url_to_fs

from modelloop.artifacts._io import StreamingBlobStore, copy_hashing, is_digest, verifying_reader
from modelloop.artifacts.base import BlobRef, BlobStat, blob_key
from modelloop.errors import InvalidArgument, NotFound

__all__ = ["FsspecBlobStore"]

# Keys under which fsspec implementations report a modification time, in preference order.
_MTIME_KEYS = ("mtime", "LastModified", "last_modified", "updated", "modified", "created")


class FsspecBlobStore(StreamingBlobStore):
    """Content-addressed blobs under ``<uri>/blobs/``, staged in ``<uri>/tmp/<uuid>``.

    A write is uploaded to a temp key while being hashed, then moved to its final key;
    readers therefore never see a partial blob at a blob key. ``storage_options`` are
    passed to the fsspec filesystem (credentials, endpoint, ...).
    """

    def __init__(self, uri: str, storage_options: dict[str, Any] | None = None) -> None:
        try:
            fs, path = url_to_fs(uri, **(storage_options or {}))
        except ValueError as exc:  # fsspec's "Protocol not known"
            raise InvalidArgument(f"cannot open a blob store at {uri!r}: {exc}") from exc
        self._fs: Any = fs
        self._root: str = path.rstrip("/")
        self._uri: str = fs.unstrip_protocol(self._root)
        # A key prefix inside the store, not the machine's /tmp.
        self._tmp = f"{self._root}/tmp"  # noqa: S108

    def __repr__(self) -> str:
        return f"FsspecBlobStore({self._uri!r})"

    @property
    def uri(self) -> str:
        """The store's root URI, with its protocol."""
        return self._uri

    def _path(self, digest: str) -> str:
        return f"{self._root}/blobs/{blob_key(digest)}"

    def put_stream(self, stream: BinaryIO) -> BlobRef:
        """Store everything read from ``stream``, in chunks."""
        fs = self._fs
        tmp = f"{self._tmp}/{uuid.uuid4().hex}"
        try:
            fs.makedirs(self._tmp, exist_ok=True)
            # On error, leaving the ``with`` may still commit what was written so far
            # (buffered files upload on close), which is why it goes to a temp key.
            with fs.open(tmp, "wb") as out:
                ref = copy_hashing(stream, out)
            final = self._path(ref.digest)
            if self._size_or_none(final) == ref.size:
                fs.rm(tmp)
            else:
                # Absent, or present with the wrong size (corrupted): replace it.
                fs.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
                fs.mv(tmp, final)
        except BaseException:
            self._rm_quietly(tmp)
            raise
        return ref

    def open(self, digest: str) -> BinaryIO:
        """A reader that raises DataCorrupted at end of stream if the content does not match."""
        try:
            raw = self._fs.open(self._path(digest), "rb")
        except FileNotFoundError:
            raise NotFound(f"no blob {digest} in {self._uri}", digest=digest) from None
        return verifying_reader(raw, digest)

    def exists(self, digest: str) -> bool:
        """Whether the blob is stored."""
        return bool(self._fs.isfile(self._path(digest)))

    def delete(self, digest: str) -> None:
        """Remove a blob; no error if it is absent."""
        self._rm_quietly(self._path(digest))

    def iter_blobs(self) -> Iterator[BlobStat]:
        """Every stored blob; temp keys of unfinished writes are not listed."""
        prefix = f"{self._root}/blobs/"
        try:
            found: dict[str, dict[str, Any]] = self._fs.find(prefix, detail=True)
        except FileNotFoundError:
            return
        for path in sorted(found):
            info = found[path]
            fan, _, rest = path[len(prefix) :].partition("/")
            if not path.startswith(prefix) or info.get("type") != "file" or len(fan) != 2:
                continue
            if not is_digest(fan + rest):
                continue
            yield BlobStat(digest=fan + rest, size=int(info["size"]), mtime=_mtime(info))

    def _size_or_none(self, path: str) -> int | None:
        try:
            return int(self._fs.size(path))
        except FileNotFoundError:
            return None

    def _rm_quietly(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._fs.rm(path)


def _mtime(info: Mapping[str, Any]) -> float:
    """Seconds since the epoch from an fsspec ``info`` dict (0.0 if it reports none)."""
    for key in _MTIME_KEYS:
        value = info.get(key)
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, dt.datetime):
            return value.timestamp()
        if isinstance(value, str):
            try:
                return dt.datetime.fromisoformat(value).timestamp()
            except ValueError:
                continue
    return 0.0
