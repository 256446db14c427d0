"""A real ``modelloop server`` process under load, and killed mid-ingest.

The server runs as a separate process (the CLI, as a user starts it) on a free
loopback port; the clients are threads of the test process, each with its own
``Client`` over HTTP.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from modelloop import Client
from modelloop.settings import Settings
from modelloop.store import Database
from modelloop.store.schema import metrics, params, runs

_CLI = "import sys; from modelloop.cli.app import main; sys.argv[0] = 'modelloop'; main()"
_COMMAND = (sys.executable, "-c", _CLI, "server")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """``modelloop server --db DB --artifacts DIR --port P`` in a child process."""

    def __init__(self, db: str, artifacts: Path, log: Path) -> None:
        self.db = db
        self.artifacts = artifacts
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> str:
        env = dict(os.environ)
        env["MODELLOOP_CAPTURE_GIT"] = "false"
        env["MODELLOOP_CAPTURE_ENVIRONMENT"] = "false"
        for attempt in range(3):
            port = _free_port()
            store = ["--db", self.db, "--artifacts", str(self.artifacts)]
            with self.log.open("ab") as out:
                self.proc = subprocess.Popen(
                    [*_COMMAND, *store, "--port", str(port)],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                )
            self.url = f"http://127.0.0.1:{port}"
            if self._wait_ready():
                return self.url
            self.kill()
            if attempt == 2:
                break
        raise RuntimeError(f"the server did not start:\n{self.log.read_text()}")

    def _wait_ready(self) -> bool:
        assert self.proc is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False  # e.g. the port was taken in the meantime
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.kill()


def _client(url: str) -> Client:
    settings = Settings(
        tracking_uri=url,
        artifacts_uri="",
        capture_git=False,
        capture_environment=False,
        metric_buffer_size=10**9,
        metric_flush_interval=3600.0,
    )
    return Client(settings=settings)


N_CLIENTS, N_RUNS, N_STEPS = 16, 3, 100


def _log_runs(url: str, worker: int, barrier: threading.Barrier, errors: list[str]) -> None:
    try:
        client = _client(url)
        try:
            barrier.wait(timeout=30)
            for r in range(N_RUNS):
                run = client.create_run("0", name=f"w{worker}-r{r}")
                client.log_params(run.run_id, {"worker": worker, "run": r, "x": "y"})
                for step in range(N_STEPS):
                    client.log_metric(run.run_id, "loss", 1.0 / (step + 1), step=step)
                    client.log_metrics(run.run_id, {"a": step, "b": -step}, step=step)
                client.set_tag(run.run_id, "done", "yes")
                client.end_run(run.run_id)  # flushes the buffered points
        finally:
            client.close()
    except Exception as exc:  # reported by the test thread
        errors.append(f"worker {worker}: {exc!r}")


@pytest.mark.slow
def test_sixteen_clients_log_through_one_server(
    db_url: str, tmp_path: Path, server_factory: list[ServerProcess]
) -> None:
    server = ServerProcess(db_url, tmp_path / "artifacts", tmp_path / "server.log")
    server_factory.append(server)
    url = server.start()

    errors: list[str] = []
    barrier = threading.Barrier(N_CLIENTS)
    threads = [
        threading.Thread(target=_log_runs, args=(url, w, barrier, errors)) for w in range(N_CLIENTS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []

    # Through a fresh client, over HTTP.
    check = _client(url)
    found = check.search_runs(["0"], max_results=1000)
    assert len(found) == N_CLIENTS * N_RUNS
    for run in found:
        assert run.status == "FINISHED"
        assert run.tags["done"] == "yes"
        assert set(run.params) == {"worker", "run", "x"}
        assert run.metrics["loss"] == 1.0 / N_STEPS
        assert run.metrics["b"] == -(N_STEPS - 1)
    history = check.get_metric_history(found[0].run_id, "a")
    assert [m.step for m in history] == list(range(N_STEPS))
    check.close()
    server.stop()

    # And in the database itself.
    db = Database(db_url)
    try:
        with db.read() as conn:
            assert conn.scalar(select(func.count()).select_from(runs)) == N_CLIENTS * N_RUNS
            assert conn.scalar(select(func.count()).select_from(params)) == N_CLIENTS * N_RUNS * 3
            points = conn.scalar(select(func.count()).select_from(metrics))
        assert points == N_CLIENTS * N_RUNS * N_STEPS * 3
        assert db.integrity_check() == []
    finally:
        db.dispose()


BATCH = 500


@pytest.mark.slow
def test_server_sigkilled_mid_ingest_keeps_every_acknowledged_point(
    tmp_path: Path, server_factory: list[ServerProcess]
) -> None:
    db_url = f"sqlite:///{tmp_path / 'meta' / 'modelloop.db'}"
    server = ServerProcess(db_url, tmp_path / "artifacts", tmp_path / "server.log")
    server_factory.append(server)
    url = server.start()

    client = _client(url)
    run_id = client.create_run("0", name="victim").run_id
    acknowledged = 0
    failure: list[BaseException] = []
    stop = threading.Event()

    def ingest() -> None:
        nonlocal acknowledged
        step = 0
        try:
            while not stop.is_set():
                for _ in range(BATCH):
                    client.log_metric(run_id, "x", float(step), step=step)
                    step += 1
                client.flush()
                acknowledged = step  # the server has committed every point below `step`
        except Exception as exc:  # expected: the server went away
            failure.append(exc)

    writer = threading.Thread(target=ingest)
    writer.start()
    deadline = time.monotonic() + 20
    while acknowledged < 6 * BATCH and time.monotonic() < deadline and writer.is_alive():
        time.sleep(0.01)
    server.kill()  # while the writer is sending the next batch
    writer.join(30)
    stop.set()
    assert not writer.is_alive()
    assert failure, "the client did not notice the server had gone"
    assert acknowledged >= BATCH
    client._buffer.discard(run_id)  # the unacknowledged batch is lost with the server
    client.backend.close()

    db = Database(db_url)
    try:
        assert db.integrity_check() == []
    finally:
        db.dispose()

    url = server.start()  # the same store, again
    check = _client(url)
    history = check.get_metric_history(run_id, "x")
    stored = len(history)
    assert stored >= acknowledged
    # Whole batches only, and in order: a torn batch would leave a gap or a partial tail.
    assert [m.step for m in history] == list(range(stored))
    assert stored % BATCH == 0
    assert check.get_run(run_id).metrics["x"] == float(stored - 1)
    check.close()
    server.stop()
