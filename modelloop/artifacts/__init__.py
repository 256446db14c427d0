"""Content-addressed artifact storage."""

from modelloop.artifacts.base import BlobRef, BlobStat, BlobStore, blob_key, check_digest
from modelloop.artifacts.factory import open_blob_store

__all__ = ["BlobRef", "BlobStat", "BlobStore", "blob_key", "check_digest", "open_blob_store"]
