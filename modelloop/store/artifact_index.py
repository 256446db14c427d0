"""A run's artifact tree: relative paths mapped to content-addressed blobs."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Connection, delete, select, union

from modelloop.entities import ArtifactInfo
from modelloop.errors import NotFound
from modelloop.store._util import now_ms, upsert
from modelloop.store.schema import BLOB_REFERENCES, run_artifacts


def put(conn: Connection, run_id: str, path: str, digest: str, size: int) -> None:
    """Record (or overwrite) the file at ``path``."""
    upsert(
        conn,
        run_artifacts,
        [
            {
                "run_id": run_id,
                "path": path,
                "digest": digest,
                "size": size,
                "created_time": now_ms(),
            }
        ],
        update=["digest", "size", "created_time"],
    )


def get(conn: Connection, run_id: str, path: str) -> ArtifactInfo:
    """The file at ``path``; NotFound if there is none."""
    row = conn.execute(
        select(run_artifacts.c.digest, run_artifacts.c.size).where(
            run_artifacts.c.run_id == run_id, run_artifacts.c.path == path
        )
    ).first()
    if row is None:
        raise NotFound(f"run {run_id} has no artifact {path!r}", run_id=run_id, path=path)
    return ArtifactInfo(path=path, is_dir=False, size=row.size, digest=row.digest)


def _under(run_id: str, prefix: str | None) -> ColumnElement[bool]:
    cond = run_artifacts.c.run_id == run_id
    if prefix:
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        cond &= (run_artifacts.c.path == prefix) | run_artifacts.c.path.like(
            escaped + "/%", escape="\\"
        )
    return cond


def files_under(conn: Connection, run_id: str, prefix: str | None) -> list[ArtifactInfo]:
    """Every file at or below ``prefix`` (the whole tree when None), sorted by path."""
    q = select(run_artifacts.c.path, run_artifacts.c.digest, run_artifacts.c.size).where(
        _under(run_id, prefix)
    )
    return [
        ArtifactInfo(path=r.path, is_dir=False, size=r.size, digest=r.digest)
        for r in conn.execute(q.order_by(run_artifacts.c.path))
    ]


def remove(conn: Connection, run_id: str, prefix: str | None) -> int:
    """Remove the records of every file at or below ``prefix``; returns how many."""
    return conn.execute(delete(run_artifacts).where(_under(run_id, prefix))).rowcount


def list_dir(conn: Connection, run_id: str, prefix: str | None) -> list[ArtifactInfo]:
    """Direct children of a folder (files and sub-folders), like ``ls``."""
    base = f"{prefix}/" if prefix else ""
    seen: dict[str, ArtifactInfo] = {}
    for f in files_under(conn, run_id, prefix):
        if f.path == prefix:
            return [f]  # prefix names a file
        rest = f.path[len(base) :]
        head, sep, _ = rest.partition("/")
        path = base + head
        if sep:
            seen.setdefault(path, ArtifactInfo(path=path, is_dir=True))
        else:
            seen[path] = f
    return sorted(seen.values(), key=lambda a: a.path)


def referenced_digests(conn: Connection) -> set[str]:
    """Every digest a live record refers to (what gc must keep)."""
    q = union(*(select(col.label("digest")) for col in BLOB_REFERENCES))
    return {r.digest for r in conn.execute(q)}
