"""Many processes on one SQLite store, and a process killed mid-write."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from modelloop import Client
from modelloop.errors import StoreUnavailable
from modelloop.store import Database
from modelloop.store.schema import experiments, metrics, params, runs

WORKER = textwrap.dedent(
    """
    import sys, time
    from modelloop import Client
    from modelloop.settings import load_settings

    store, start_at, n_runs, n_steps, worker = sys.argv[1:6]
    client = Client(settings=load_settings(tracking_uri=store, metric_buffer_size=50))
    while time.time() < float(start_at):
        time.sleep(0.001)
    for r in range(int(n_runs)):
        run = client.create_run("0", name=f"w{worker}-r{r}")
        client.log_params(run.run_id, {"worker": worker, "run": r})
        for step in range(int(n_steps)):
            client.log_metric(run.run_id, "loss", 1.0 / (step + 1), step=step)
            client.log_metrics(run.run_id, {"a": step, "b": -step}, step=step)
        client.set_tag(run.run_id, "done", "yes")
        client.end_run(run.run_id)
    print("ok")
    """
)

KILLED_WORKER = textwrap.dedent(
    """
    import sys
    from modelloop import Client
    from modelloop.settings import load_settings

    client = Client(settings=load_settings(tracking_uri=sys.argv[1], metric_buffer_size=10**9))
    run = client.create_run("0", name="victim")
    print(run.run_id, flush=True)
    step = 0
    while True:
        for _ in range(500):
            client.log_metric(run.run_id, "x", float(step), step=step)
            step += 1
        client.flush()
        print(step, flush=True)  # every point below `step` is committed
    """
)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["MODELLOOP_CAPTURE_GIT"] = "false"
    env["MODELLOOP_CAPTURE_ENVIRONMENT"] = "false"
    return env


@pytest.mark.slow
def test_eight_processes_log_to_one_sqlite_store(tmp_path: Path) -> None:
    store = tmp_path / "store"
    Client(str(store)).close()  # create the schema once, like a user's first run
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    n_workers, n_runs, n_steps = 8, 6, 150
    start_at = time.time() + 3.0  # all processes start writing at the same moment
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(script),
                str(store),
                str(start_at),
                str(n_runs),
                str(n_steps),
                str(w),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        for w in range(n_workers)
    ]
    outputs = [p.communicate(timeout=240) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert "locked" not in err
        assert proc.returncode == 0, err
        assert out.strip() == "ok"

    db = Database(f"sqlite:///{store / 'modelloop.db'}")
    with db.read() as conn:
        assert conn.scalar(select(func.count()).select_from(runs)) == n_workers * n_runs
        assert conn.scalar(select(func.count()).select_from(params)) == n_workers * n_runs * 2
        points = conn.scalar(select(func.count()).select_from(metrics))
    assert points == n_workers * n_runs * n_steps * 3
    assert db.integrity_check() == []
    db.dispose()


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.3, 1.1])
def test_sigkill_while_logging_keeps_every_flushed_point(tmp_path: Path, delay: float) -> None:
    store = tmp_path / "store"
    script = tmp_path / "victim.py"
    script.write_text(KILLED_WORKER)
    with subprocess.Popen(
        [sys.executable, str(script), str(store)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    ) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        run_id = proc.stdout.readline().strip()
        assert len(run_id) == 32, proc.stderr.read()
        acknowledged = 0
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline or acknowledged == 0:
            line = proc.stdout.readline()
            if not line:
                break
            acknowledged = int(line)
        os.kill(proc.pid, signal.SIGKILL)
        # Lines printed after our last read are acknowledgements too.
        rest = proc.stdout.read()
        proc.wait(timeout=30)
    for line in rest.split():
        acknowledged = int(line)
    assert proc.returncode == -signal.SIGKILL
    assert acknowledged > 0

    db = Database(f"sqlite:///{store / 'modelloop.db'}")
    assert db.integrity_check() == []
    with db.read() as conn:
        stored = conn.scalar(
            select(func.count()).select_from(metrics).where(metrics.c.run_id == run_id)
        )
        steps = conn.scalars(select(metrics.c.step).where(metrics.c.run_id == run_id)).all()
    db.dispose()
    assert stored is not None
    assert stored >= acknowledged
    # What is stored is a prefix of the series (whole flushes), never a torn batch.
    assert sorted(steps) == list(range(stored))
    assert stored % 500 == 0

    client = Client(str(store))
    run = client.get_run(run_id)
    assert run.metrics["x"] == float(stored - 1)
    client.close()


def test_sqlite_writers_of_one_process_take_turns(tmp_path: Path) -> None:
    """Threads of one process writing to SQLite queue on the database's own lock (woken
    when the writer before them commits, not by SQLite's polling busy handler), and a
    turn that does not come within the busy timeout is StoreUnavailable, not a hang."""
    db = Database(f"sqlite:///{tmp_path / 'meta.db'}", busy_timeout=0.3)
    inside, release = threading.Event(), threading.Event()
    active: list[int] = []
    overlaps: list[int] = []

    def hold() -> None:
        with db.write():
            inside.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert inside.wait(10)
        with pytest.raises(StoreUnavailable, match=r"no write turn within 0\.3 s"), db.write():
            pass
    finally:
        release.set()
        holder.join()

    def write(n: int) -> None:
        row = {"name": f"e{n}", "artifact_location": "", "lifecycle_stage": "active"}
        with db.write() as conn:
            active.append(n)
            overlaps.append(len(active))
            try:
                conn.execute(insert(experiments).values(creation_time=0, last_update_time=0, **row))
                time.sleep(0.002)
            finally:
                active.remove(n)

    db.busy_timeout = 30
    threads = [threading.Thread(target=write, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps == [1] * 16  # one writer inside at a time
    with db.read() as conn:
        assert conn.scalar(select(func.count()).select_from(experiments)) == 16 + 1  # + Default
    db.dispose()
