"""The registry's records through the Client: registered models, versions, tags,
aliases and their history, verdicts, evaluations, datasets. Every test runs on
SQLite and PostgreSQL, in process and over HTTP (the ``client`` fixture)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pandas as pd
import pytest

from modelloop import Client
from modelloop.errors import (
    AlreadyExists,
    InvalidArgument,
    InvalidState,
    NotFound,
)
from modelloop.settings import Settings
from modelloop.store import Database, audit


def _version(client: Client, name: str, run_id: str | None = None) -> int:
    mv = client.backend.create_model_version(
        name, f"runs:/{run_id or 'r' * 32}/model", run_id=run_id, create_model=True
    )
    return mv.version


def test_versions_are_numbered_and_found(client: Client) -> None:
    model = client.create_registered_model("churn", "predicts churn", tags={"team": "growth"})
    assert model.name == "churn"
    assert model.tags == {"team": "growth"}
    assert model.latest_version is None
    assert [_version(client, "churn") for _ in range(3)] == [1, 2, 3]
    mv = client.get_model_version("churn", "2")
    assert (mv.name, mv.version, mv.uri) == ("churn", 2, "models:/churn/2")
    assert mv.source == f"runs:/{'r' * 32}/model"
    assert client.get_registered_model("churn").latest_version == 3
    found = client.search_model_versions("churn", max_results=2)
    assert [m.version for m in found] == [3, 2]
    assert found.next_page_token is not None
    rest = client.search_model_versions("churn", page_token=found.next_page_token, max_results=2)
    assert [m.version for m in rest] == [1]
    assert rest.next_page_token is None


def test_register_creates_the_model_and_refuses_bad_input(client: Client) -> None:
    assert _version(client, "fraud") == 1
    with pytest.raises(AlreadyExists, match="fraud"):
        client.create_registered_model("fraud")
    with pytest.raises(InvalidArgument, match="'/' or '@'"):
        client.create_registered_model("a/b")
    with pytest.raises(NotFound, match="'nope'"):
        client.get_registered_model("nope")
    with pytest.raises(NotFound, match="version 9"):
        client.get_model_version("fraud", 9)
    with pytest.raises(InvalidArgument, match="version"):
        client.get_model_version("fraud", "one")
    with pytest.raises(InvalidArgument, match="source"):
        client.backend.create_model_version("fraud", "")


def test_search_registered_models(client: Client) -> None:
    for name in ("churn-a", "churn-b", "fraud"):
        client.create_registered_model(name)
    assert [m.name for m in client.search_registered_models("churn%")] == ["churn-a", "churn-b"]
    page = client.search_registered_models(max_results=2)
    assert len(page) == 2
    assert page.next_page_token is not None


def test_tags_on_models_and_versions(client: Client) -> None:
    _version(client, "m")
    client.backend.set_registered_model_tag("m", "owner", "ana")
    client.set_model_version_tag("m", 1, "validated", True)
    assert client.get_registered_model("m").tags == {"owner": "ana"}
    assert client.get_model_version("m", 1).tags == {"validated": "True"}
    client.backend.delete_model_version_tag("m", 1, "validated")
    assert client.get_model_version("m", 1).tags == {}
    with pytest.raises(NotFound, match="validated"):
        client.backend.delete_model_version_tag("m", 1, "validated")


def test_aliases_set_move_delete_and_history(client: Client) -> None:
    for _ in range(3):
        _version(client, "m")
    first = client.set_model_alias("m", "champion", 1, reason="first release")
    assert (first.version, first.previous_version) == (1, None)
    t1 = first.time
    time.sleep(0.01)
    moved = client.set_model_alias("m", "champion", 2, reason="better")
    assert (moved.version, moved.previous_version) == (2, 1)
    client.set_model_alias("m", "challenger", 3)
    time.sleep(0.01)
    client.set_model_alias("m", "champion", 3)
    assert client.get_model_version_by_alias("m", "champion").version == 3
    assert client.get_model_version("m", 3).aliases == ("challenger", "champion")
    assert client.get_registered_model("m").aliases == {"challenger": 3, "champion": 3}
    client.delete_model_alias("m", "champion", reason="incident 42")
    with pytest.raises(NotFound, match="no alias 'champion'"):
        client.get_model_version_by_alias("m", "champion")

    history = client.alias_history("m", "champion")
    assert [(e.previous_version, e.version) for e in history] == [
        (None, 1),
        (1, 2),
        (2, 3),
        (3, None),
    ]
    assert history[0].reason == "first release"
    assert history[-1].reason == "incident 42"
    assert all(e.actor for e in history)
    assert client.alias_at("m", "champion", t1 - 1) is None
    assert client.alias_at("m", "champion", t1) == 1
    assert client.alias_at("m", "champion", history[1].time) == 2
    assert client.alias_at("m", "champion", history[2].time) == 3
    assert client.alias_at("m", "champion", datetime.now(UTC)) is None
    assert len(client.alias_history("m")) == 5


def test_alias_names_and_targets_are_checked(client: Client) -> None:
    _version(client, "m")
    for bad in ("latest", "v3", "", "has space", "9lives"):
        with pytest.raises(InvalidArgument):
            client.set_model_alias("m", bad, 1)
    with pytest.raises(NotFound, match="version 7"):
        client.set_model_alias("m", "champion", 7)
    with pytest.raises(NotFound):
        client.delete_model_alias("m", "champion")
    assert client.alias_history("m") == []


def test_archived_versions_are_skipped_by_latest(client: Client) -> None:
    _version(client, "m")
    _version(client, "m")
    assert client.backend.get_latest_model_version("m").version == 2
    assert client.archive_model_version("m", 2).archived
    assert client.backend.get_latest_model_version("m").version == 1
    with pytest.raises(InvalidArgument, match="stage"):
        client.backend.update_model_version("m", 1, stage="Retired")


def test_deleting_a_version_removes_its_aliases_on_record(client: Client) -> None:
    _version(client, "m")
    _version(client, "m")
    client.set_model_alias("m", "champion", 2)
    client.delete_model_version("m", 2)
    with pytest.raises(NotFound):
        client.get_model_version("m", 2)
    assert client.get_registered_model("m").aliases == {}
    last = client.alias_history("m", "champion")[-1]
    assert (last.previous_version, last.version) == (2, None)
    assert "deleted" in last.reason
    # numbers are never reused
    assert _version(client, "m") == 3


def test_rename_and_delete_model(client: Client) -> None:
    _version(client, "old")
    client.set_model_alias("old", "champion", 1)
    renamed = client.backend.rename_registered_model("old", "new")
    assert renamed.aliases == {"champion": 1}
    assert client.get_model_version("new", 1).aliases == ("champion",)
    assert len(client.alias_history("new")) == 1
    with pytest.raises(NotFound):
        client.get_registered_model("old")
    client.delete_registered_model("new")
    with pytest.raises(NotFound):
        client.get_model_version("new", 1)


def test_promotion_records_move_the_alias_only_when_passed_or_forced(client: Client) -> None:
    _version(client, "m")
    _version(client, "m")
    checks = [{"name": "accuracy >= 0.8", "passed": False, "value": 0.7}]
    refused = client.backend.record_promotion("m", 1, "champion", passed=False, checks=checks)
    assert (refused.passed, refused.moved) == (False, False)
    with pytest.raises(NotFound):
        client.get_model_version_by_alias("m", "champion")
    with pytest.raises(InvalidArgument, match="reason"):
        client.backend.record_promotion("m", 1, "champion", False, checks, forced=True)
    forced = client.backend.record_promotion(
        "m", 1, "champion", False, checks, forced=True, reason="hotfix"
    )
    assert forced.moved
    assert client.get_model_version_by_alias("m", "champion").version == 1
    ok = client.backend.record_promotion("m", 2, "champion", True, [])
    assert ok.moved
    history = client.alias_history("m", "champion")
    assert [e.verdict_id for e in history] == [forced.id, ok.id]
    assert history[0].reason == "hotfix"
    records = client.backend.list_promotions("m")
    assert [(r.version, r.passed, r.forced, r.moved) for r in records] == [
        (1, False, False, False),
        (1, False, True, True),
        (2, True, False, True),
    ]
    assert records[0].checks == checks
    assert [r.id for r in client.backend.list_promotions("m", 2)] == [ok.id]


def test_evaluations_link_to_versions(client: Client) -> None:
    _version(client, "m")
    result = {"metrics": {"accuracy": 0.9}, "slices": {"region=n": {"accuracy": 0.8}}}
    record = client.backend.record_evaluation(
        "m", 1, result, run_id=None, dataset_name="eval", dataset_digest="d" * 64
    )
    assert record.result == result
    listed = client.backend.list_evaluations("m", 1)
    assert [(e.id, e.dataset_digest) for e in listed] == [(record.id, "d" * 64)]


def test_registered_datasets_round_trip(client: Client) -> None:
    frame = pd.DataFrame({"x": [1.5, 2.5, None], "label": ["a", "b", "a"]})
    record = client.register_dataset("eval-1", frame, description="holdout")
    assert (record.rows, record.columns) == (3, ["x", "label"])
    pd.testing.assert_frame_equal(client.load_dataset("eval-1"), frame)
    assert [d.name for d in client.backend.list_datasets()] == ["eval-1"]
    again = client.register_dataset("eval-1", frame)
    assert again.digest == record.digest
    with pytest.raises(NotFound, match="nope"):
        client.load_dataset("nope")


def test_registry_changes_are_audited(store_settings: Settings) -> None:
    client = Client(settings=store_settings)
    try:
        _version(client, "m")
        client.set_model_alias("m", "champion", 1, reason="launch")
        client.delete_registered_model("m")
    finally:
        client.close()
    db = Database(store_settings.tracking_uri)
    try:
        with db.read() as conn:
            entries = audit.query(conn, object_type=None)
    finally:
        db.dispose()
    actions = [(e.action, e.object_id) for e in entries]
    assert ("model.create", "m") in actions
    assert ("model_version.create", "m/1") in actions
    assert ("model.set_alias", "m") in actions
    assert ("model.delete", "m") in actions
    alias_entry = next(e for e in entries if e.action == "model.set_alias")
    assert alias_entry.details["reason"] == "launch"


def test_concurrent_registrations_get_distinct_versions(settings: Settings) -> None:
    """8 threads, each with its own client (own connections, or own HTTP session),
    register 10 versions of one model at once: 80 distinct numbers, 1..80."""
    setup = Client(settings=settings)
    setup.create_registered_model("race")
    setup.close()
    got: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def worker() -> None:
        c = Client(settings=settings)
        try:
            barrier.wait()
            for _ in range(10):
                v = c.backend.create_model_version("race", "runs:/x/model").version
                with lock:
                    got.append(v)
        except BaseException as exc:
            errors.append(exc)
        finally:
            c.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(got) == list(range(1, 81))


def test_policy_is_validated_when_stored(client: Client) -> None:
    client.create_registered_model("m")
    with pytest.raises(InvalidArgument):
        client.backend.update_registered_model("m", policy={"checks": [{"nope": {}}]})
    _version(client, "m")
    with pytest.raises(InvalidState, match="no promotion policy"):
        client.promote("m", 1)
