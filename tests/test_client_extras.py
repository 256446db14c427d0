"""Context capture, buffering, garbage collection and corruption, through the client."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from modelloop import Client
from modelloop.artifacts import open_blob_store
from modelloop.errors import DataCorrupted
from modelloop.settings import Settings


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=T", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def test_every_run_captures_git_and_environment(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "train.py").write_text("print('v1')\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "first")
    (repo / "train.py").write_text("print('v2')\n")
    monkeypatch.chdir(repo)

    client = Client(settings=settings.replace(capture_git=True, capture_environment=True))
    run = client.create_run()
    got = client.get_run(run.run_id)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert got.tags["modelloop.git.commit"] == head
    assert got.tags["modelloop.git.branch"] == "main"
    assert got.tags["modelloop.git.dirty"] == "true"
    assert "modelloop.python" in got.tags
    assert got.tags["modelloop.host"]
    assert got.tags["modelloop.command"]
    with client.open_artifact(run.run_id, "_modelloop/git.diff") as fh:
        diff = fh.read().decode()
    assert "-print('v1')" in diff and "+print('v2')" in diff
    with client.open_artifact(run.run_id, "_modelloop/requirements.txt") as fh:
        reqs = fh.read().decode()
    assert "sqlalchemy==" in reqs.lower()
    client.close()


def test_metrics_are_buffered_until_flush(client: Client) -> None:
    run = client.create_run()
    client.log_metric(run.run_id, "x", 1.0)
    # A second client (another process, say) does not see buffered points yet.
    other = Client(settings=client.settings)
    assert other.backend.get_run(run.run_id).metrics == {}
    assert client.flush() == 1
    assert other.backend.get_run(run.run_id).metrics == {"x": 1.0}
    other.close()


def test_buffer_writes_when_full(settings: Settings) -> None:
    client = Client(settings=settings.replace(metric_buffer_size=10))
    run = client.create_run()
    for i in range(25):
        client.log_metric(run.run_id, "x", float(i), step=i)
    stored = client.backend.get_metric_history(run.run_id, "x")
    assert len(stored) == 20  # two automatic writes of 10; 5 still buffered
    client.end_run(run.run_id)
    assert len(client.backend.get_metric_history(run.run_id, "x")) == 25
    client.close()


def test_gc_removes_only_unreferenced_old_blobs(client: Client, artifacts_dir: Path) -> None:
    run = client.create_run()
    kept = client.log_text(run.run_id, "keep me", "a.txt")
    blobs = open_blob_store(str(artifacts_dir))
    orphan = blobs.put_bytes(b"nobody refers to me")
    young_orphan = blobs.put_bytes(b"just written, record not committed yet")
    old = time.time() - 7200
    for digest in (orphan.digest, kept.digest):
        os.utime(artifacts_dir / "blobs" / digest[:2] / digest[2:], (old, old))

    report = client.gc(dry_run=True, grace_seconds=3600)
    assert report.unreferenced == (orphan.digest,)
    assert report.kept_young == 1
    assert blobs.exists(orphan.digest)

    report = client.gc(dry_run=False, grace_seconds=3600)
    assert report.removed
    assert not blobs.exists(orphan.digest)
    assert blobs.exists(young_orphan.digest)
    assert blobs.exists(kept.digest)
    with client.open_artifact(run.run_id, "a.txt") as fh:
        assert fh.read() == b"keep me"


def test_blob_altered_on_disk_is_detected_on_read(
    client: Client, artifacts_dir: Path, tmp_path: Path
) -> None:
    run = client.create_run()
    info = client.log_text(run.run_id, "the true content", "model.txt")
    assert info.digest is not None
    blob = artifacts_dir / "blobs" / info.digest[:2] / info.digest[2:]
    blob.write_bytes(b"the evil content")
    with (
        pytest.raises(DataCorrupted, match=info.digest),
        client.open_artifact(run.run_id, "model.txt") as fh,
    ):
        fh.read()
    with pytest.raises(DataCorrupted):
        client.download_artifacts(run.run_id, "model.txt", tmp_path / "dl")
    assert not (tmp_path / "dl" / "model.txt").exists()


def test_remote_artifact_store_through_fsspec(db_url: str, tmp_path: Path) -> None:
    import uuid

    import fsspec

    root = f"memory://modelloop-{uuid.uuid4().hex}"
    settings = Settings(
        tracking_uri=db_url, artifacts_uri=root, capture_git=False, capture_environment=False
    )
    client = Client(settings=settings)
    run = client.create_run()
    client.log_text(run.run_id, "remote bytes", "dir/file.txt")
    client.log_text(run.run_id, "remote bytes", "dir/same.txt")
    with client.open_artifact(run.run_id, "dir/file.txt") as fh:
        assert fh.read() == b"remote bytes"
    out = client.download_artifacts(run.run_id, "dir", tmp_path / "dl")
    assert (out / "same.txt").read_text() == "remote bytes"
    fs = fsspec.filesystem("memory")
    assert len(fs.find(root + "/blobs")) == 1  # stored once
    fs.rm(root, recursive=True)
    client.close()
