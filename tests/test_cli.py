"""The ``modelloop`` command line against a real SQLite store in ``tmp_path``.

Commands run in process through Typer's ``CliRunner``; a couple run the installed
console script. ``COLUMNS=200`` keeps Rich from shortening run ids in tables; it
takes effect unless COLUMNS was already exported when pytest started, because the
CLI's module-level Rich consoles fix their width when ``modelloop.cli`` is imported.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import modelloop
from modelloop import Client, Settings
from modelloop.artifacts import open_blob_store
from modelloop.backends.factory import DB_FILE_NAME
from modelloop.cli.app import app
from modelloop.store import engine
from modelloop.store.engine import SCHEMA_HEAD

ENV: dict[str, str | None] = {
    "COLUMNS": "200",
    "LINES": "200",
    "NO_COLOR": "1",
    "FORCE_COLOR": None,
    "TTY_COMPATIBLE": None,
    "MODELLOOP_CAPTURE_GIT": "false",
    "MODELLOOP_CAPTURE_ENVIRONMENT": "false",
    "MODELLOOP_TRACKING_URI": None,
    "MODELLOOP_CONFIG": None,
}
NO_CAPTURE = Settings(capture_git=False, capture_environment=False)
MISSING_RUN = "0123456789abcdef0123456789abcdef"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclasses.dataclass(frozen=True)
class Store:
    folder: Path
    experiment_id: str
    runs: dict[str, str]  # run name -> run id

    def client(self) -> Client:
        return Client(str(self.folder), settings=NO_CAPTURE)


def invoke(folder: Path, *args: str) -> Result:
    """Run ``modelloop --tracking-uri FOLDER ARGS...`` in process."""
    return CliRunner().invoke(app, ["--tracking-uri", str(folder), *args], env=ENV)


def out(result: Result) -> str:
    """Standard output without colour codes (in case the console was made coloured)."""
    return _ANSI.sub("", result.stdout)


def err(result: Result) -> str:
    return _ANSI.sub("", result.stderr)


def assert_ok(result: Result) -> str:
    assert result.exit_code == 0, (result.output, result.exception)
    return out(result)


def assert_friendly_error(result: Result, code: str) -> str:
    """Exit 1 with one ``error (CODE): ...`` line and no traceback."""
    assert result.exit_code == 1, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    message = err(result)
    assert message.startswith(f"error ({code}): "), message
    assert "Traceback" not in result.output
    assert message.count("\n") == 1, "the error should be one line"
    return message


def line_of(text: str, needle: str) -> int:
    """Index of the first output line containing ``needle``."""
    for i, line in enumerate(text.splitlines()):
        if needle in line:
            return i
    raise AssertionError(f"{needle!r} not in output:\n{text}")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """An experiment ``churn`` with three finished runs, created in the order low, high,
    mid; ``high`` has artifacts ``report.txt`` and ``plots/a.txt``."""
    folder = tmp_path / "store"
    client = Client(str(folder), settings=NO_CAPTURE)
    try:
        exp = client.create_experiment("churn")
        ids = {}
        for name, acc, lr in (("low", 0.3, "0.1"), ("high", 0.9, "0.01"), ("mid", 0.7, "0.05")):
            run = client.create_run(exp, name=name)
            client.log_params(run.run_id, {"lr": lr, "model": "rf"})
            client.log_metrics(run.run_id, {"acc": acc, "loss": 0.25})
            client.set_tag(run.run_id, "team", "growth")
            if name == "high":
                client.log_text(run.run_id, "hello", "report.txt")
                client.log_text(run.run_id, "x", "plots/a.txt")
            client.end_run(run.run_id)
            ids[name] = run.run_id
    finally:
        client.close()
    return Store(folder, exp, ids)


# experiments -----------------------------------------------------------------


def test_experiments_list_shows_names(store: Store) -> None:
    text = assert_ok(invoke(store.folder, "experiments", "list"))
    assert "churn" in text
    assert "Default" in text
    assert line_of(text, "churn") != line_of(text, "Default")


def test_experiment_create_rename_delete_restore(store: Store) -> None:
    exp_id = assert_ok(invoke(store.folder, "experiments", "create", "vision")).strip()
    assert exp_id.isdigit()
    assert "vision" in assert_ok(invoke(store.folder, "experiments", "list"))

    assert_ok(invoke(store.folder, "experiments", "rename", exp_id, "images"))
    listed = assert_ok(invoke(store.folder, "experiments", "list"))
    assert "images" in listed
    assert "vision" not in listed

    assert_ok(invoke(store.folder, "experiments", "delete", exp_id))
    assert "images" not in assert_ok(invoke(store.folder, "experiments", "list"))
    deleted = assert_ok(invoke(store.folder, "experiments", "list", "--view", "deleted_only"))
    assert "images" in deleted
    assert "churn" not in deleted

    assert_ok(invoke(store.folder, "experiments", "restore", exp_id))
    assert "images" in assert_ok(invoke(store.folder, "experiments", "list"))
    client = store.client()
    try:
        assert client.get_experiment(exp_id).name == "images"
    finally:
        client.close()


def test_creating_an_existing_experiment_is_already_exists(store: Store) -> None:
    message = assert_friendly_error(
        invoke(store.folder, "experiments", "create", "churn"), "ALREADY_EXISTS"
    )
    assert "churn" in message


def test_renaming_a_missing_experiment_is_not_found(store: Store) -> None:
    assert_friendly_error(invoke(store.folder, "experiments", "rename", "999", "x"), "NOT_FOUND")


# runs ------------------------------------------------------------------------


def test_runs_list_filters_and_orders(store: Store) -> None:
    low, mid, high = store.runs["low"], store.runs["mid"], store.runs["high"]
    args = ("runs", "list", "-e", "churn", "-f", "metrics.acc > 0.5")

    text = assert_ok(invoke(store.folder, *args, "-o", "metrics.acc DESC"))
    assert low not in text
    assert line_of(text, high) < line_of(text, mid)
    assert "0.9" in text.splitlines()[line_of(text, high)]

    text = assert_ok(invoke(store.folder, *args, "-o", "metrics.acc ASC"))
    assert line_of(text, mid) < line_of(text, high)


def test_runs_list_without_filter_lists_every_run(store: Store) -> None:
    text = assert_ok(invoke(store.folder, "runs", "list"))
    for run_id in store.runs.values():
        assert run_id in text
    assert "FINISHED" in text


def test_runs_list_max_says_there_are_more(store: Store) -> None:
    text = assert_ok(invoke(store.folder, "runs", "list", "--max", "1"))
    assert sum(run_id in text for run_id in store.runs.values()) == 1
    assert "more runs" in text


def test_runs_list_invalid_filter(store: Store) -> None:
    message = assert_friendly_error(
        invoke(store.folder, "runs", "list", "-f", "metrics.acc >> 0.5"), "INVALID_ARGUMENT"
    )
    assert "metrics.acc >> 0.5" in message


def test_runs_list_unknown_experiment(store: Store) -> None:
    message = assert_friendly_error(invoke(store.folder, "runs", "list", "-e", "nope"), "NOT_FOUND")
    assert "nope" in message


def test_runs_show(store: Store) -> None:
    run_id = store.runs["high"]
    text = assert_ok(invoke(store.folder, "runs", "show", run_id))
    assert f"run {run_id}" in text
    assert "FINISHED" in text
    for section, key, value in (
        ("params", "lr", "0.01"),
        ("params", "model", "rf"),
        ("metrics", "acc", "0.9"),
        ("metrics", "loss", "0.25"),
        ("tags", "team", "growth"),
    ):
        row = text.splitlines()[line_of(text, f" {key} ")]
        assert value in row
        assert line_of(text, section) < line_of(text, f" {key} ")
    assert line_of(text, "artifacts") < line_of(text, "report.txt")
    assert "5" in text.splitlines()[line_of(text, "report.txt")]
    assert "plots/" in text


def test_runs_show_unknown_run_is_not_found(store: Store) -> None:
    message = assert_friendly_error(invoke(store.folder, "runs", "show", MISSING_RUN), "NOT_FOUND")
    assert MISSING_RUN in message


def test_runs_compare_puts_differences_first(store: Store) -> None:
    low, high = store.runs["low"], store.runs["high"]
    text = assert_ok(invoke(store.folder, "runs", "compare", low, high))
    assert low[:8] in text
    assert high[:8] in text
    order = [line_of(text, label) for label in ("params.lr", "metrics.acc")]
    same = [line_of(text, label) for label in ("params.model", "metrics.loss")]
    assert order == sorted(order)
    assert same == sorted(same)
    assert max(order) < min(same)
    lr_row = text.splitlines()[line_of(text, "params.lr")]
    assert lr_row.index("0.1") < lr_row.index("0.01")


def test_runs_compare_diff_only_hides_equal_rows(store: Store) -> None:
    text = assert_ok(
        invoke(store.folder, "runs", "compare", store.runs["low"], store.runs["mid"], "--diff-only")
    )
    assert "params.lr" in text
    assert "metrics.acc" in text
    assert "params.model" not in text
    assert "metrics.loss" not in text


def test_runs_compare_unknown_run_is_not_found(store: Store) -> None:
    assert_friendly_error(
        invoke(store.folder, "runs", "compare", store.runs["low"], MISSING_RUN), "NOT_FOUND"
    )


def test_user_text_is_printed_verbatim_not_as_markup(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    client = Client(str(folder), settings=NO_CAPTURE)
    try:
        exp = client.create_experiment("exp[bold]x")
        run = client.create_run(exp, name="r[/]")
        client.log_params(run.run_id, {"act": "[relu]", "stop": "[/]"})
        client.end_run(run.run_id)
    finally:
        client.close()

    assert "exp[bold]x" in assert_ok(invoke(folder, "experiments", "list"))
    shown = assert_ok(invoke(folder, "runs", "show", run.run_id))
    assert "r[/]" in shown
    assert "[relu]" in shown
    assert "r[/]" in assert_ok(invoke(folder, "runs", "list"))
    assert "[relu]" in assert_ok(invoke(folder, "runs", "compare", run.run_id, run.run_id))
    message = assert_friendly_error(
        invoke(folder, "experiments", "create", "exp[bold]x"), "ALREADY_EXISTS"
    )
    assert "exp[bold]x" in message


# db and maintenance --------------------------------------------------------------


def test_db_upgrade_creates_then_says_already_at(tmp_path: Path) -> None:
    folder = tmp_path / "fresh"
    text = assert_ok(invoke(folder, "db", "upgrade"))
    assert "upgraded schema (empty)" in text
    assert SCHEMA_HEAD in text
    assert (folder / DB_FILE_NAME).is_file()
    assert f"already at schema {SCHEMA_HEAD}" in assert_ok(invoke(folder, "db", "upgrade"))


def test_db_check_ok(store: Store) -> None:
    assert assert_ok(invoke(store.folder, "db", "check")).strip() == "ok"


def _set_schema_revision(folder: Path, revision: str) -> None:
    conn = sqlite3.connect(folder / DB_FILE_NAME)
    try:
        with conn:
            conn.execute("UPDATE alembic_version SET version_num = ?", (revision,))
    finally:
        conn.close()


@pytest.mark.parametrize(
    "command", [("runs", "list"), ("experiments", "list"), ("db", "check")], ids=" ".join
)
def test_unknown_schema_revision_is_refused(store: Store, command: tuple[str, ...]) -> None:
    # '0000' is no packaged revision, so modelloop cannot migrate it: the message
    # says the database is from a newer modelloop rather than to run `db upgrade`.
    _set_schema_revision(store.folder, "0000")
    message = assert_friendly_error(invoke(store.folder, *command), "SCHEMA_OUTDATED")
    assert "schema 0000" in message
    assert f"needs {SCHEMA_HEAD}" in message
    assert "newer modelloop" in message


def test_db_upgrade_of_an_unknown_revision_is_a_friendly_error(store: Store) -> None:
    _set_schema_revision(store.folder, "0000")
    assert_friendly_error(invoke(store.folder, "db", "upgrade"), "SCHEMA_OUTDATED")


def test_outdated_message_for_a_known_revision_names_db_upgrade() -> None:
    # Only one migration ships, so no store can be at an older known revision yet;
    # this pins the message such a store will get.
    message = engine._outdated_message(SCHEMA_HEAD)
    assert "`modelloop db upgrade`" in message


def test_gc_reports_then_removes_orphans_and_keeps_referenced_blobs(store: Store) -> None:
    client = store.client()
    try:
        run_id = client.create_run(store.experiment_id, capture_context=False).run_id
        info = client.log_text(run_id, "kept", "a.txt")
        client.end_run(run_id)
    finally:
        client.close()
    assert info.digest is not None
    blobs = open_blob_store(str(store.folder / "artifacts"))
    orphan = blobs.put_bytes(b"orphan")
    past = time.time() - 7 * 24 * 3600
    for path in (store.folder / "artifacts").rglob("*"):
        if path.is_file():
            os.utime(path, (past, past))

    text = assert_ok(invoke(store.folder, "gc"))
    assert "would remove 1 unreferenced blobs (6 bytes)" in text
    assert "--delete" in text
    assert blobs.exists(orphan.digest)

    text = assert_ok(invoke(store.folder, "gc", "--delete", "--grace", "0"))
    assert "removed 1 unreferenced blobs (6 bytes)" in text
    assert not blobs.exists(orphan.digest)
    assert blobs.exists(info.digest)
    client = store.client()
    try:
        with client.open_artifact(run_id, "a.txt") as fh:
            assert fh.read() == b"kept"
    finally:
        client.close()

    young = blobs.put_bytes(b"just written")
    text = assert_ok(invoke(store.folder, "gc", "--delete"))
    assert "removed 0 unreferenced blobs" in text
    assert "kept 1 younger than the grace period" in text
    assert blobs.exists(young.digest)


# the installed console script ------------------------------------------------------


def _console_script(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("modelloop")
    assert exe.is_file(), f"console script not installed next to {sys.executable}"
    env = {k: v for k, v in os.environ.items() if k not in {"FORCE_COLOR", "TTY_COMPATIBLE"}}
    env.update({k: v for k, v in ENV.items() if v is not None})
    return subprocess.run(
        [str(exe), *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        check=False,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )


def test_console_script_help_and_version(tmp_path: Path) -> None:
    proc = _console_script(tmp_path, "--help")
    assert proc.returncode == 0, proc.stderr
    assert "Usage: modelloop" in proc.stdout
    for name in ("--tracking-uri", "experiments", "runs", "db", "gc", "version"):
        assert name in proc.stdout

    proc = _console_script(tmp_path, "version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"{modelloop.__version__}\n"
    assert not (tmp_path / ".modelloop").exists()


def test_console_script_error_is_one_line_without_traceback(tmp_path: Path) -> None:
    proc = _console_script(
        tmp_path, "--tracking-uri", str(tmp_path / "s"), "runs", "show", MISSING_RUN
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("error (NOT_FOUND): ")
    assert proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize("command", ["server", "serve"])
def test_server_processes_tune_their_garbage_collector(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``modelloop server`` and ``modelloop serve`` freeze what they loaded and collect
    less often just before serving (uvicorn.run is replaced here: nothing listens);
    the library never touches the collector of a user's process."""
    import gc

    import uvicorn

    seen: dict[str, object] = {}

    def fake_run(app: object, **options: object) -> None:
        seen["frozen"] = gc.get_freeze_count()
        seen["threshold"] = gc.get_threshold()

    monkeypatch.setattr(uvicorn, "run", fake_run)
    threshold = gc.get_threshold()
    gc.unfreeze()
    try:
        if command == "server":
            from modelloop.server import create_app

            library_app = create_app(NO_CAPTURE.replace(tracking_uri=str(tmp_path / "lib")))
            library_app.state.backend.close()
            assert gc.get_freeze_count() == 0  # the library leaves the collector alone
            result = invoke(tmp_path / "store", "server", "--port", "5999")
        else:
            from sklearn.linear_model import LogisticRegression

            client = Client(str(tmp_path / "store"), settings=NO_CAPTURE)
            run = client.create_run(client.create_experiment("gc"))
            model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
            client.log_model(run.run_id, model, "model")
            client.close()
            assert gc.get_freeze_count() == 0
            uri = f"runs:/{run.run_id}/model"
            result = invoke(tmp_path / "store", "serve", uri, "--port", "5999")
        assert result.exit_code == 0, out(result) + err(result)
        assert isinstance(seen["frozen"], int) and seen["frozen"] > 1000
        assert seen["threshold"] == (50_000, 50, 100)
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
