"""Deployments: spec validation, weighted and sticky routing, numbered revisions with
rollback and audit (SQLite and PostgreSQL, in process and over HTTP), and the CLI."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from test_cli import NO_CAPTURE, assert_ok, err, invoke

from modelloop import Client
from modelloop.errors import InvalidArgument, NotFound
from modelloop.serving.deployment import DeploymentSpec, Router, parse_share, simple_spec
from modelloop.settings import Settings
from modelloop.store import Database, audit


def test_spec_validation_names_the_problem() -> None:
    ok = simple_spec("models:/m@champion", [("models:/m@challenger", 10)], ["models:/m/7"])
    assert [(r.name, r.weight) for r in ok.routes] == [("main", 90.0), ("canary", 10.0)]
    assert [s.name for s in ok.shadows] == ["shadow"]
    bad = {"routes": [{"name": "a", "model": "x", "weight": 60}]}
    with pytest.raises(InvalidArgument, match="add up to 100"):
        DeploymentSpec.parse(bad)
    with pytest.raises(InvalidArgument, match="unique"):
        DeploymentSpec.parse({"routes": [{"name": "a", "model": "x", "weight": 50}] * 2})
    with pytest.raises(InvalidArgument, match="sticky_key"):
        simple_spec("models:/m/1", sticky_key="cookie")
    with pytest.raises(InvalidArgument, match="routes"):
        DeploymentSpec.parse({"routes": []})
    with pytest.raises(InvalidArgument, match="x: Extra inputs"):
        DeploymentSpec.parse({"routes": [{"name": "a", "model": "x", "weight": 100}], "x": 1})
    assert parse_share("models:/m@c=12.5%") == ("models:/m@c", 12.5)
    with pytest.raises(InvalidArgument, match="MODEL_URI=PERCENT"):
        parse_share("models:/m@c")


def test_weighted_routing_is_within_statistical_tolerance() -> None:
    router = Router(simple_spec("models:/m/1", [("models:/m/2", 10)]), seed=7)
    n = 20_000
    canary = sum(router.choose().name == "canary" for _ in range(n))
    sigma = math.sqrt(n * 0.1 * 0.9)
    assert abs(canary - 0.1 * n) < 4 * sigma


def test_sticky_routing_keeps_a_key_on_its_route_and_splits_keys_by_weight() -> None:
    spec = simple_spec("models:/m/1", [("models:/m/2", 30)], sticky_key="header:X-User")
    a, b = Router(spec, seed=1), Router(spec, seed=2)
    keys = [f"user-{i}" for i in range(5_000)]
    first = [a.choose(k).name for k in keys]
    assert first == [b.choose(k).name for k in keys]  # stable across routers/processes
    assert first == [a.choose(k).name for k in keys]  # and across calls
    share = first.count("canary") / len(keys)
    assert abs(share - 0.3) < 4 * math.sqrt(0.3 * 0.7 / len(keys))


def test_zero_weight_routes_get_no_traffic() -> None:
    spec = DeploymentSpec.parse(
        {
            "routes": [
                {"name": "a", "model": "x", "weight": 100},
                {"name": "b", "model": "y", "weight": 0},
            ]
        }
    )
    router = Router(spec, seed=3)
    assert {router.choose().name for _ in range(1000)} == {"a"}
    assert {router.choose(str(i)).name for i in range(1000)} == {"a"}


def _register_two(client: Client) -> None:
    for source in ("runs:/r1/model", "runs:/r2/model"):
        client.backend.create_model_version("m", source, create_model=True)
    client.set_model_alias("m", "champion", 1)
    client.set_model_alias("m", "challenger", 2)


def test_revisions_rollback_and_history(client: Client) -> None:
    _register_two(client)
    first = client.deploy(
        "churn", "models:/m@champion", canaries=[("models:/m@challenger", 10)],
        shadows=["models:/m/2"], sticky_key="input:customer_id", reason="launch",
    )  # fmt: skip
    assert first.revision == 1
    assert first.spec["sticky_key"] == "input:customer_id"
    second = client.deploy("churn", "models:/m@champion", reason="canary done")
    assert second.revision == 2
    assert client.get_deployment("churn").revision == 2
    assert client.get_deployment("churn", 1).spec == first.spec
    back = client.rollback_deployment("churn")
    assert back.revision == 3
    assert back.spec == first.spec
    assert back.reason == "rollback to revision 1"
    again = client.rollback_deployment("churn", to_revision=2, reason="undo the rollback")
    assert again.spec == second.spec
    assert [r.revision for r in client.deployment_history("churn")] == [1, 2, 3, 4]
    assert [d.name for d in client.list_deployments()] == ["churn"]
    assert client.list_deployments()[0].revision == 4
    with pytest.raises(InvalidArgument, match="not earlier"):
        client.rollback_deployment("churn", to_revision=4)
    with pytest.raises(NotFound, match="'nope'"):
        client.get_deployment("nope")
    with pytest.raises(NotFound, match="revision 9"):
        client.get_deployment("churn", 9)


def test_deploy_refuses_models_that_do_not_resolve(client: Client) -> None:
    _register_two(client)
    with pytest.raises(NotFound, match="no alias 'gold'"):
        client.deploy("churn", "models:/m@gold")
    with pytest.raises(InvalidArgument, match="weights"):
        client.backend.put_deployment(
            "churn", {"routes": [{"name": "a", "model": "x", "weight": 5}]}
        )
    with pytest.raises(NotFound):
        client.get_deployment("churn")


def test_every_revision_is_audited(store_settings: Settings) -> None:
    client = Client(settings=store_settings)
    try:
        _register_two(client)
        client.deploy("churn", "models:/m@champion", reason="launch")
        client.deploy("churn", "models:/m/2")
        client.rollback_deployment("churn", reason="bad canary")
    finally:
        client.close()
    db = Database(store_settings.tracking_uri)
    try:
        with db.read() as conn:
            rows = audit.query(conn, object_type="deployment")
    finally:
        db.dispose()
    assert [e.action for e in reversed(rows)] == [
        "deployment.update",
        "deployment.update",
        "deployment.rollback",
    ]
    assert rows[0].details["reason"] == "bad canary"


def test_cli_deploy_rollback_history(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    client = Client(str(folder), settings=NO_CAPTURE)
    _register_two(client)
    client.close()
    out = assert_ok(
        invoke(folder, "deploy", "churn", "--model", "models:/m@champion",
               "--canary", "models:/m@challenger=25%", "--shadow", "models:/m/2")
    )  # fmt: skip
    assert "75%" in out
    assert "shadow" in out
    assert "revision 2" in assert_ok(
        invoke(folder, "deploy", "set", "churn", "--model", "models:/m/1")
    )
    assert "revision 3" in assert_ok(invoke(folder, "deploy", "rollback", "churn"))
    history = assert_ok(invoke(folder, "deploy", "history", "churn"))
    assert "rollback to revision 1" in history
    assert "churn" in assert_ok(invoke(folder, "deploy", "list"))
    assert '"revision": 3' in assert_ok(invoke(folder, "deploy", "show", "churn", "--json"))
    bad = invoke(folder, "deploy", "churn", "--model", "models:/m/1", "--canary", "models:/m/2=150")
    assert bad.exit_code == 1
    assert "traffic share" in err(bad)
