"""Fuzz the native API from its own OpenAPI schema: no request may make it answer 5xx.

schemathesis generates requests for every operation of ``/openapi.json`` under
``/api/v1`` (and ``/health``), valid and invalid alike, and sends them to the ASGI
app in process over a fresh store. Auth is off (the store has no users), so every
route is reachable. Examples are derandomized: a run is reproducible.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from modelloop import Client
from modelloop.accounts import create_user
from modelloop.server import create_app
from modelloop.settings import Settings
from modelloop.store import Database

if TYPE_CHECKING:
    from conftest import LiveServer


MAX_EXAMPLES = 25


def _store(folder: Path) -> Settings:
    return Settings(
        tracking_uri=f"sqlite:///{folder / 'meta' / 'modelloop.db'}",
        artifacts_uri=str(folder / "artifacts"),
        capture_git=False,
        capture_environment=False,
    )


@pytest.mark.slow
def test_no_operation_answers_a_server_error(tmp_path: Path) -> None:
    store = _store(tmp_path)
    # Real ids to aim at: random ones only reach the id validation.
    seed = Client(settings=store)
    experiment_id = seed.create_experiment("fuzzed")
    run_id = seed.create_run(experiment_id, name="target").run_id
    seed.log_param(run_id, "p", 1)
    seed.log_metric(run_id, "m", 0.5, step=0)
    seed.set_tag(run_id, "t", "v")
    seed.log_text(run_id, "hello", "dir/file.txt")
    seed.close()
    known = {"run_id": run_id, "experiment_id": experiment_id, "key": "m", "path": "dir/file.txt"}

    app = create_app(store)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app).include(
        path_regex=r"^/(api/v1/|health$)"
    )
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20
    # Creating a user turns authentication on, after which everything is a 401:
    # the user operations go last.
    operations.sort(key=lambda op: "/users" in op.path or "/tokens" in op.path)

    headers: dict[str, str] = {}
    for operation in operations:
        if not headers and ("/users" in operation.path or "/tokens" in operation.path):
            # Turn authentication on with an admin of our own, so the user and token
            # operations are reached past the 401 (a fuzzed user would lock us out).
            db = Database(store.tracking_uri)
            create_user(db, "fuzz-admin", "admin", "fuzz-password")
            db.dispose()
            token = base64.b64encode(b"fuzz-admin:fuzz-password").decode()
            headers["Authorization"] = f"Basic {token}"

        @settings(
            max_examples=MAX_EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(), aim=st.booleans())
        def fuzz(case: schemathesis.Case, aim: bool) -> None:
            if aim:
                for name, value in known.items():
                    if case.path_parameters and name in case.path_parameters:
                        case.path_parameters[name] = value
                    if isinstance(case.body, dict) and name in case.body:
                        case.body[name] = value
            response = case.call(headers=headers)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} -> {response.status_code}: "
                    f"{case.as_curl_command()}\n{response.text[:300]}"
                )

        fuzz()
    app.state.backend.close()

    assert failures == [], "\n\n".join(failures)


# Regressions: requests the fuzzer found answering 500.


def test_revoking_a_token_id_beyond_64_bits_is_a_400(
    tmp_path: Path, live_server: LiveServer
) -> None:
    with live_server.serving(_store(tmp_path)) as url:
        response = httpx.post(f"{url}/api/v1/tokens/{2**70}/revoke")
        assert response.status_code == 400, response.text
        assert "64 bits" in response.json()["message"]
        assert httpx.post(f"{url}/api/v1/tokens/12345/revoke").status_code == 404
