"""The transaction helpers and the artifact half of :class:`~modelloop.backends.LocalBackend`.

``LocalBackend`` inherits from :class:`LocalArtifacts`: one object, split in two
modules by resource so that neither grows into a god module.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from sqlalchemy import Connection

from modelloop import validation as v
from modelloop.artifacts import BlobStore
from modelloop.backends.base import GcReport
from modelloop.entities import ArtifactInfo
from modelloop.errors import NotFound
from modelloop.store import Database, artifact_index, audit, runs

T = TypeVar("T")

__all__ = ["LocalArtifacts", "LocalStoreBase"]


class LocalStoreBase:
    """A metadata database and a blob store, with one-transaction helpers."""

    def __init__(self, db: Database, blobs: BlobStore) -> None:
        self.db = db
        self.blobs = blobs

    def __repr__(self) -> str:
        return f"{type(self).__name__}(db={self.db.url!r}, artifacts={self.blobs.uri!r})"

    def _write(
        self,
        fn: Callable[[Connection], T],
        action: str,
        object_type: str,
        object_id: str | Callable[[T], str],
        details: dict[str, Any] | None = None,
    ) -> T:
        """Run ``fn`` in one write transaction and append its audit row (``action`` on
        ``object_type``/``object_id``, which may be computed from ``fn``'s result) in
        the same transaction: the change and its record commit or roll back together."""

        def run() -> T:
            with self.db.write() as conn:
                result = fn(conn)
                oid = object_id(result) if callable(object_id) else object_id
                audit.record(conn, action, object_type, oid, details)
                return result

        return self.db.retrying(run)

    def _read(self, fn: Callable[[Connection], T]) -> T:
        def run() -> T:
            with self.db.read() as conn:
                return fn(conn)

        return self.db.retrying(run)

    def close(self) -> None:
        """Release pooled database connections."""
        self.db.dispose()


class LocalArtifacts(LocalStoreBase):
    """Runs' artifact trees (records in the database, content in the blob store) and
    garbage collection of the blobs."""

    def upload_artifact(
        self, run_id: str, path: str, stream: BinaryIO, *, allow_ended: bool = False
    ) -> ArtifactInfo:
        """Store one artifact file: the blob first, then its record (so a recorded
        artifact always has its content). An ended run refuses it unless ``allow_ended``."""
        clean = v.check_artifact_path(path)
        self._read(lambda c: runs.require_writable(c, run_id, allow_ended=allow_ended))
        if isinstance(stream, io.BytesIO):
            # In-memory content (log_text, log_dict, ...): hashing first lets an
            # existing blob be reused without writing and syncing a temp file.
            ref = self.blobs.put_bytes(stream.getvalue())
        else:
            ref = self.blobs.put_stream(stream)

        def write(conn: Connection) -> None:
            runs.require_writable(conn, run_id, allow_ended=allow_ended)
            artifact_index.put(conn, run_id, clean, ref.digest, ref.size)

        self._write(write, "artifact.upload", "run", run_id, {"path": clean, "size": ref.size})
        return ArtifactInfo(path=clean, is_dir=False, size=ref.size, digest=ref.digest)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[ArtifactInfo]:
        """Direct children of a folder in a run's artifact tree."""
        prefix = None if path in (None, "", "/") else v.check_artifact_path(path)

        def read(conn: Connection) -> list[ArtifactInfo]:
            runs.get_row(conn, run_id)
            return artifact_index.list_dir(conn, run_id, prefix)

        return self._read(read)

    def open_artifact(self, run_id: str, path: str) -> BinaryIO:
        """A reader that verifies the content against its digest."""
        clean = v.check_artifact_path(path)

        def read(conn: Connection) -> ArtifactInfo:
            runs.get_row(conn, run_id)
            return artifact_index.get(conn, run_id, clean)

        info = self._read(read)
        assert info.digest is not None
        return self.blobs.open(info.digest)

    def download_artifacts(self, run_id: str, path: str | None, dest: Path) -> Path:
        """Copy a file or a folder of artifacts under ``dest`` (verified, atomic per file)."""
        prefix = None if path in (None, "", "/") else v.check_artifact_path(path)

        def read(conn: Connection) -> list[ArtifactInfo]:
            runs.get_row(conn, run_id)
            return artifact_index.files_under(conn, run_id, prefix)

        files = self._read(read)
        if not files:
            raise NotFound(f"run {run_id} has no artifact {prefix or '(root)'!r}")
        dest = Path(dest)
        for f in files:
            assert f.digest is not None
            self.blobs.copy_to(f.digest, dest / f.path)
        return dest / prefix if prefix else dest

    def delete_artifacts(self, run_id: str, path: str | None = None) -> int:
        """Forget the file at ``path``, or every file under the folder ``path`` (the
        whole tree when None), of a run that is not deleted; returns how many records
        went. Deleting nothing is not an error. The blobs stay until ``gc``."""
        prefix = None if path in (None, "", "/") else v.check_artifact_path(path)

        def write(conn: Connection) -> int:
            runs.require_writable(conn, run_id, allow_ended=True)
            return artifact_index.remove(conn, run_id, prefix)

        return self._write(write, "artifact.delete", "run", run_id, {"path": prefix or ""})

    # maintenance -------------------------------------------------------------

    def gc(self, dry_run: bool = True, grace_seconds: int | None = None) -> GcReport:
        """Blobs that no record refers to; removed unless ``dry_run``. Blobs younger
        than ``grace_seconds`` are kept: their record may not be committed yet."""
        grace = 3600 if grace_seconds is None else grace_seconds
        live = self._read(artifact_index.referenced_digests)
        cutoff = time.time() - grace
        dead: list[str] = []
        size = 0
        young = 0
        for blob in self.blobs.iter_blobs():
            if blob.digest in live:
                continue
            if blob.mtime > cutoff:
                young += 1
                continue
            dead.append(blob.digest)
            size += blob.size
        if not dry_run:
            # Re-check against records committed since the first look.
            live = self._read(artifact_index.referenced_digests)
            dead = [d for d in dead if d not in live]
            for digest in dead:
                self.blobs.delete(digest)
            # Blobs are not in the database: the audit row follows the deletion.
            self._write(
                lambda _: None,
                "gc",
                "artifacts",
                self.blobs.uri,
                {"removed": len(dead), "bytes": size},
            )
        return GcReport(tuple(sorted(dead)), size, not dry_run, young)
