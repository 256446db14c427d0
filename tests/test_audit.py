"""The audit log (recorded through the server, atomically with each change) and the
``modelloop users`` / ``tokens`` / ``audit`` commands."""

from __future__ import annotations

import getpass
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from typer.testing import CliRunner, Result

from modelloop import accounts
from modelloop.backends import LocalBackend, open_backend
from modelloop.backends.factory import DB_FILE_NAME
from modelloop.cli.app import app as cli_app
from modelloop.cli.audit import parse_since
from modelloop.entities import Metric
from modelloop.errors import InvalidArgument, NotFound
from modelloop.settings import Settings
from modelloop.store import Database
from modelloop.store import audit as audit_store
from modelloop.store.audit import AuditEntry

if TYPE_CHECKING:
    from conftest import LiveServer

PASSWORD = "correct horse battery"
ENV = {"NO_COLOR": "1", "COLUMNS": "200", "MODELLOOP_TRACKING_URI": None}


def _settings(folder: Path) -> Settings:
    return Settings(tracking_uri=str(folder), capture_git=False, capture_environment=False)


def _db(folder: Path) -> Database:
    return Database(f"sqlite:///{folder / DB_FILE_NAME}")


def _log(folder: Path, **filters: str) -> list[AuditEntry]:
    db = _db(folder)
    try:
        return accounts.audit_log(db, **filters)  # type: ignore[arg-type]
    finally:
        db.dispose()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "store"
    db = _db(folder)
    try:
        accounts.create_user(db, "eddie", "editor", PASSWORD)
        accounts.create_user(db, "vera", "viewer", PASSWORD)
    finally:
        db.dispose()
    return folder


@pytest.fixture
def web(live_server: LiveServer, folder: Path) -> Iterator[httpx.Client]:
    with live_server.serving(_settings(folder)) as url, httpx.Client(base_url=url) as c:
        yield c


def _as(name: str) -> dict[str, str]:
    return {"Authorization": httpx.BasicAuth(name, PASSWORD)._auth_header}


def _changes(folder: Path) -> list[tuple[str, str, str, str]]:
    """(actor, action, object type, object id) of the request-made rows, oldest first."""
    rows = [r for r in _log(folder) if not r.action.startswith("user.")]
    return [(r.actor, r.action, r.object_type, r.object_id) for r in reversed(rows)]


def test_changes_through_the_server_are_audited_with_actor_action_object(
    folder: Path, web: httpx.Client
) -> None:
    eddie = _as("eddie")
    r = web.post("/api/v1/experiments", json={"name": "churn"}, headers=eddie)
    exp_id = r.json()["experiment_id"]
    run_id = web.post("/api/v1/runs", json={"experiment_id": exp_id}, headers=eddie).json()[
        "run_id"
    ]
    batch = {
        "metrics": [{"key": "acc", "value": i / 10, "timestamp": 1, "step": i} for i in range(50)],
        "params": [{"key": "lr", "value": "0.1"}],
    }
    assert web.post(f"/api/v1/runs/{run_id}/batch", json=batch, headers=eddie).status_code == 204
    mlflow_tag = {"run_id": run_id, "key": "team", "value": "growth"}
    assert web.post("/api/2.0/mlflow/runs/set-tag", json=mlflow_tag, headers=eddie).is_success
    r = web.put(f"/api/v1/runs/{run_id}/artifacts/a.txt", content=b"hi", headers=eddie)
    assert r.is_success, r.text
    assert web.delete(f"/api/v1/runs/{run_id}/tags/team", headers=eddie).status_code == 204
    assert _changes(folder) == [
        ("eddie", "experiment.create", "experiment", exp_id),
        ("eddie", "run.create", "run", run_id),
        ("eddie", "run.log_batch", "run", run_id),
        ("eddie", "run.log_batch", "run", run_id),
        ("eddie", "artifact.upload", "run", run_id),
        ("eddie", "tag.delete", "run", run_id),
    ]
    batch_row = _log(folder, action="run.log_batch")[-1]
    assert batch_row.details == {"metrics": 50, "params": 1, "tags": 0}
    # Reads are not audited.
    web.get(f"/api/v1/runs/{run_id}", headers=eddie)
    web.post("/api/v1/runs/search", json={"experiment_ids": [exp_id]}, headers=eddie)
    assert len(_changes(folder)) == 6


def test_refused_and_failed_requests_record_nothing(folder: Path, web: httpx.Client) -> None:
    assert web.post("/api/v1/experiments", json={"name": "x"}).status_code == 401
    assert (
        web.post("/api/v1/experiments", json={"name": "x"}, headers=_as("vera")).status_code == 403
    )
    bad = web.post("/api/v1/experiments", json={"name": ""}, headers=_as("eddie"))
    assert bad.status_code == 400
    missing = web.post(
        "/api/2.0/mlflow/runs/log-batch",
        json={"run_id": "0" * 32, "metrics": []},
        headers=_as("eddie"),
    )
    assert missing.status_code == 404
    assert _changes(folder) == []


def test_without_users_the_server_records_the_local_actor(
    live_server: LiveServer, tmp_path: Path
) -> None:
    folder = tmp_path / "open"
    with live_server.serving(_settings(folder)) as url:
        assert httpx.post(f"{url}/api/v1/experiments", json={"name": "e"}).status_code == 201
    assert _changes(folder) == [("local", "experiment.create", "experiment", "1")]


def test_the_python_api_records_the_os_user(tmp_path: Path) -> None:
    backend = open_backend(_settings(tmp_path / "s"))
    try:
        backend.create_experiment("e")
    finally:
        backend.close()
    assert _changes(tmp_path / "s")[0][0] == getpass.getuser()


def test_a_change_and_its_audit_row_commit_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = open_backend(_settings(tmp_path / "s"))
    assert isinstance(backend, LocalBackend)
    try:
        run = backend.create_run("0")

        def failing_record(*args: object, **kwargs: object) -> None:
            raise InvalidArgument("the audit insert failed")

        monkeypatch.setattr(audit_store, "record", failing_record)
        with pytest.raises(InvalidArgument, match="audit insert failed"):
            backend.log_batch(run.run_id, [Metric("acc", 1.0, 1, 0)])
        with pytest.raises(InvalidArgument):
            backend.create_experiment("never")
        monkeypatch.undo()
        assert backend.get_run(run.run_id).metrics == {}
        assert [e.name for e in backend.list_experiments()] == ["Default"]
        # A write that fails inside its transaction leaves no audit row either.
        with pytest.raises(NotFound):
            backend.log_batch("f" * 32, [Metric("acc", 1.0, 1, 0)])
        with pytest.raises(NotFound):
            backend.delete_tag("f" * 32, "team")
    finally:
        backend.close()
    assert [a for _, a, _, _ in _changes(tmp_path / "s")] == ["run.create"]


# the commands ------------------------------------------------------------------------


def invoke(folder: Path, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli_app, ["--tracking-uri", str(folder), *args], env=ENV, input=stdin)


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def test_users_create_list_delete(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    out = ok(
        invoke(
            folder,
            "users",
            "create",
            "ada",
            "--role",
            "admin",
            "--password-stdin",
            stdin=PASSWORD + "\n",
        )
    )
    assert "created user ada (admin)" in out
    ok(invoke(folder, "users", "create", "tok", "--role", "viewer", "--no-password"))
    prompted = invoke(folder, "users", "create", "pat", stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert "created user pat (editor)" in ok(prompted)
    listing = ok(invoke(folder, "users", "list"))
    assert "ada" in listing and "admin" in listing and "viewer" in listing
    again = invoke(folder, "users", "create", "ada", "--password-stdin", stdin=PASSWORD + "\n")
    assert again.exit_code == 1 and "ALREADY_EXISTS" in again.stderr
    bad_role = invoke(folder, "users", "create", "x", "--role", "root", "--no-password")
    assert bad_role.exit_code == 1 and "unknown role" in bad_role.stderr
    short = invoke(folder, "users", "create", "y", "--password-stdin", stdin="short\n")
    assert short.exit_code == 1 and "at least 8" in short.stderr
    assert "deleted user pat" in ok(invoke(folder, "users", "delete", "pat"))
    assert "pat" not in ok(invoke(folder, "users", "list"))
    assert invoke(folder, "users", "delete", "pat").exit_code == 1
    db = _db(folder)
    try:
        assert accounts.authenticate_password(db, "ada", PASSWORD) is not None
    finally:
        db.dispose()


def test_tokens_create_list_revoke(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    ok(invoke(folder, "users", "create", "eddie", "--no-password"))
    created = invoke(folder, "tokens", "create", "--user", "eddie", "--name", "ci")
    token = ok(created).strip()
    assert token.startswith(accounts.TOKEN_PREFIX)
    assert "cannot be shown again" in created.stderr
    listing = ok(invoke(folder, "tokens", "list", "--user", "eddie"))
    assert "ci" in listing and token not in listing
    db = _db(folder)
    try:
        assert accounts.authenticate_token(db, token) is not None
        token_id = accounts.list_tokens(db)[0].id
        assert "revoked token" in ok(invoke(folder, "tokens", "revoke", str(token_id)))
        assert accounts.authenticate_token(db, token) is None
    finally:
        db.dispose()
    assert invoke(folder, "tokens", "revoke", "999").exit_code == 1
    assert invoke(folder, "tokens", "create", "--user", "nobody").exit_code == 1
    with sqlite3.connect(folder / DB_FILE_NAME) as conn:
        assert token not in "\n".join(conn.iterdump())


def test_audit_command_filters(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    ok(invoke(folder, "users", "create", "eddie", "--no-password"))
    ok(invoke(folder, "tokens", "create", "--user", "eddie"))
    ok(invoke(folder, "experiments", "create", "churn"))
    everything = ok(invoke(folder, "audit"))
    for action in ("user.create", "token.create", "experiment.create"):
        assert action in everything
    only = ok(invoke(folder, "audit", "--action", "user.create"))
    assert "user.create" in only and "experiment.create" not in only
    obj = ok(invoke(folder, "audit", "--object", "experiment:1"))
    assert "experiment.create" in obj and "user.create" not in obj
    assert "user.create" not in ok(invoke(folder, "audit", "--actor", "someone-else"))
    assert "user.create" in ok(invoke(folder, "audit", "--since", "1h", "--limit", "5"))
    bad = invoke(folder, "audit", "--since", "yesterday-ish")
    assert bad.exit_code == 1 and "invalid --since" in bad.stderr
    assert invoke(folder, "audit", "--db", "http://127.0.0.1:1").exit_code == 1


def test_parse_since() -> None:
    assert parse_since("2h", 10_000_000) == 10_000_000 - 7_200_000
    assert parse_since("30s", 100_000) == 70_000
    assert parse_since("2026-01-31", 0) > 0
    with pytest.raises(InvalidArgument):
        parse_since("soon", 0)


def test_server_allows_a_public_host_once_a_user_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import modelloop.cli.server as server_cli

    served: list[str] = []
    monkeypatch.setattr(
        server_cli, "_serve", lambda settings, host, port, workers, log: served.append(host)
    )
    folder = tmp_path / "s"
    refused = invoke(folder, "server", "--host", "0.0.0.0", "--db", str(folder))
    assert refused.exit_code == 1 and "no users" in refused.stderr
    ok(invoke(folder, "users", "create", "ada", "--role", "admin", "--no-password"))
    ok(invoke(folder, "server", "--host", "0.0.0.0", "--db", str(folder)))
    assert served == ["0.0.0.0"]
