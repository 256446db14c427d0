"""Choose a blob store implementation from a URI."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from modelloop.artifacts.base import BlobStore
from modelloop.artifacts.fsspec_store import FsspecBlobStore
from modelloop.artifacts.local import LocalBlobStore
from modelloop.errors import InvalidArgument

__all__ = ["open_blob_store"]


def open_blob_store(uri: str) -> BlobStore:
    """Open the blob store at ``uri``.

    A plain path (``~`` expanded) or a ``file://`` URI gives a local store, whose folder
    is created if missing; any other ``scheme://`` goes through fsspec (``s3://``,
    ``gs://``, ``memory://``, ...), which may need the matching extra installed.
    """
    if not uri or not uri.strip():
        raise InvalidArgument("the artifact store URI is empty")
    if uri.startswith("file://"):
        parts = urlsplit(uri)
        if parts.netloc not in ("", "localhost"):
            raise InvalidArgument(f"a file:// URI cannot name a remote host: {uri!r}")
        return LocalBlobStore(Path(url2pathname(parts.path)))
    if "://" in uri:
        return FsspecBlobStore(uri)
    return LocalBlobStore(Path(uri))
