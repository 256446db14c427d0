"""The run search language, against real SQLite (and PostgreSQL when configured)."""

from __future__ import annotations

import base64
import json
import os
import random
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, create_engine, delete, func, insert, select
from sqlalchemy.engine import make_url

from modelloop.entities import ViewType
from modelloop.errors import InvalidArgument
from modelloop.store import Database, normalize_db_url
from modelloop.store.schema import (
    datasets,
    experiments,
    latest_metrics,
    metadata,
    params,
    run_inputs,
    run_tags,
    runs,
)
from modelloop.store.search import (
    Comparison,
    OrderClause,
    parse_filter,
    parse_order_by,
    search_run_ids,
)

PG_URL = os.environ.get("MODELLOOP_TEST_DB_URL")


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def pg_database_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this module, dropped afterwards."""
    assert PG_URL
    server_url = normalize_db_url(PG_URL)
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    name = f"modelloop_test_{uuid.uuid4().hex[:16]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param(
            "postgresql",
            marks=[
                pytest.mark.postgres,
                pytest.mark.skipif(not PG_URL, reason="MODELLOOP_TEST_DB_URL is not set"),
            ],
        ),
    ]
)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An empty metadata database at head (experiment 0 only)."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'meta.db'}")
    else:
        database = Database(request.getfixturevalue("pg_database_url"))
    try:
        yield database
    finally:
        if database.dialect != "sqlite":
            # The PostgreSQL database is shared by the module: leave it as we found it.
            with database.write() as conn:
                for table in reversed(metadata.sorted_tables):
                    if table is experiments:
                        conn.execute(delete(table).where(table.c.experiment_id != 0))
                    else:
                        conn.execute(delete(table))
        database.dispose()


def add_experiment(conn: Connection, name: str) -> str:
    row = conn.execute(
        insert(experiments)
        .values(
            name=name,
            artifact_location="",
            lifecycle_stage="active",
            creation_time=0,
            last_update_time=0,
        )
        .returning(experiments.c.experiment_id)
    ).scalar_one()
    return str(row)


def add_run(
    conn: Connection,
    run_id: str,
    *,
    start_time: int,
    experiment_id: str = "0",
    name: str | None = None,
    user_id: str = "alice",
    status: str = "FINISHED",
    end_time: int | None = None,
    lifecycle_stage: str = "active",
    parent_run_id: str | None = None,
    metrics: dict[str, float | None] | None = None,
    params_: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
) -> None:
    conn.execute(
        insert(runs).values(
            run_id=run_id,
            experiment_id=int(experiment_id),
            name=name if name is not None else run_id,
            user_id=user_id,
            status=status,
            start_time=start_time,
            end_time=end_time,
            lifecycle_stage=lifecycle_stage,
            parent_run_id=parent_run_id,
        )
    )
    for key, value in (metrics or {}).items():
        conn.execute(
            insert(latest_metrics).values(run_id=run_id, key=key, value=value, step=0, timestamp=0)
        )
    for key, text in (params_ or {}).items():
        conn.execute(insert(params).values(run_id=run_id, key=key, value=text))
    for key, text in (tags or {}).items():
        conn.execute(insert(run_tags).values(run_id=run_id, key=key, value=text))


@pytest.fixture
def populated(db: Database) -> Database:
    """Four active runs in experiment 0, one deleted run, one run in another experiment."""
    with db.write() as conn:
        add_run(
            conn,
            "r1",
            name="alpha",
            start_time=1000,
            end_time=2000,
            metrics={"acc": 0.9, "loss": 0.1, "my metric": 1.0},
            params_={"model": "cnn", "lr": "0.1", "note": "it's 100% done"},
            tags={"env": "prod", "team": "Vision", "k with space": "v", "glob": "a*b"},
        )
        add_run(
            conn,
            "r2",
            name="beta",
            user_id="bob",
            status="FAILED",
            start_time=2000,
            metrics={"acc": 0.5, "loss": None},  # None is how NaN is stored
            params_={"model": "CNN", "lr": "0.01", "note": "100 done"},
            tags={"env": "dev", "glob": "axb"},
        )
        add_run(
            conn,
            "r3",
            name="gamma",
            status="RUNNING",
            start_time=3000,
            metrics={"acc": 0.7},
            params_={"model": "rnn"},
            tags={"env": "prod", "glob": "[ab]"},
        )
        add_run(
            conn,
            "r4",
            name="delta",
            user_id="carol",
            start_time=4000,
            end_time=5000,
            parent_run_id="r1",
        )
        add_run(
            conn,
            "r5",
            name="epsilon",
            start_time=5000,
            lifecycle_stage="deleted",
            metrics={"acc": 0.99},
        )
        other = add_experiment(conn, "other")
        add_run(conn, "r6", experiment_id=other, start_time=6000, metrics={"acc": 0.8})
        conn.execute(
            insert(datasets).values(
                digest="d1",
                name="iris",
                source="file:///iris.csv",
                source_type="local",
                num_rows=150,
                schema_json="{}",
                profile_json="{}",
                created_time=0,
            )
        )
        conn.execute(insert(run_inputs).values(run_id="r1", dataset_digest="d1", context="train"))
        conn.execute(insert(run_inputs).values(run_id="r3", dataset_digest="d1", context="eval"))
    return db


def search(
    db: Database,
    filter_string: str | None = None,
    *,
    experiment_ids: Sequence[str] = ("0",),
    order_by: Sequence[str] | None = None,
    view_type: ViewType = ViewType.ACTIVE_ONLY,
) -> list[str]:
    with db.read() as conn:
        found, token = search_run_ids(
            conn,
            experiment_ids,
            filter_string,
            view_type=view_type,
            order_by=order_by,
            max_results=1000,
        )
    assert token is None
    return found


def matches(db: Database, filter_string: str) -> set[str]:
    return set(search(db, filter_string))


# --------------------------------------------------------------------------- scope


def test_no_filter_returns_active_runs_newest_first(populated: Database) -> None:
    assert search(populated) == ["r4", "r3", "r2", "r1"]
    assert search(populated, "   ") == ["r4", "r3", "r2", "r1"]


def test_view_types(populated: Database) -> None:
    assert search(populated, view_type=ViewType.DELETED_ONLY) == ["r5"]
    assert search(populated, view_type=ViewType.ALL) == ["r5", "r4", "r3", "r2", "r1"]


def test_several_experiments(populated: Database) -> None:
    with populated.read() as conn:
        other_id = conn.scalar(
            select(experiments.c.experiment_id).where(experiments.c.name == "other")
        )
    other = search(populated, experiment_ids=["0", str(other_id)])
    assert other[0] == "r6"
    assert set(other) == {"r1", "r2", "r3", "r4", "r6"}
    assert search(populated, experiment_ids=[]) == []


# --------------------------------------------------------------------------- metrics


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        ("=", {"r3"}),
        ("!=", {"r1", "r2"}),
        ("<", {"r2"}),
        ("<=", {"r2", "r3"}),
        (">", {"r1"}),
        (">=", {"r1", "r3"}),
    ],
)
def test_metric_comparators(populated: Database, op: str, expected: set[str]) -> None:
    assert matches(populated, f"metrics.acc {op} 0.7") == expected


def test_metric_number_forms(populated: Database) -> None:
    assert matches(populated, "metrics.acc>0.7") == {"r1"}
    assert matches(populated, "metrics.acc > 7e-1") == {"r1"}
    assert matches(populated, "metrics.acc > .7") == {"r1"}
    assert matches(populated, "metrics.acc > -1") == {"r1", "r2", "r3"}
    assert matches(populated, "metrics.`my metric` = 1") == {"r1"}


def test_nan_metric_only_matches_not_equal(populated: Database) -> None:
    # r2's loss is NaN (stored as NULL); r3 and r4 have no loss at all.
    assert matches(populated, "metrics.loss < 1") == {"r1"}
    assert matches(populated, "metrics.loss >= 0") == {"r1"}
    assert matches(populated, "metrics.loss = 0.1") == {"r1"}
    assert matches(populated, "metrics.loss != 0.1") == {"r2"}
    assert matches(populated, "metrics.loss != 5") == {"r1", "r2"}


def test_missing_metric_matches_nothing(populated: Database) -> None:
    assert matches(populated, "metrics.nope >= 0") == set()
    assert matches(populated, "metrics.nope != 0") == set()


# --------------------------------------------------------------------------- params and tags


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("params.model = 'cnn'", {"r1"}),
        ("params.model != 'cnn'", {"r2", "r3"}),  # r4 has no "model" param
        ("params.model LIKE 'c%'", {"r1"}),
        ("params.model LIKE 'C%'", {"r2"}),
        ("params.model ILIKE 'c%'", {"r1", "r2"}),
        ("params.model ILIKE '%N'", {"r1", "r2", "r3"}),
        ("params.model LIKE '_nn'", {"r1", "r3"}),
        ("params.model IN ('cnn', 'rnn')", {"r1", "r3"}),
        ("params.model NOT IN ('cnn')", {"r2", "r3"}),
        ("params.lr = '0.1'", {"r1"}),
        ('params.lr = "0.01"', {"r2"}),
        ("params.missing != 'x'", set()),
    ],
)
def test_param_comparators(populated: Database, filter_string: str, expected: set[str]) -> None:
    assert matches(populated, filter_string) == expected


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("tags.env = 'prod'", {"r1", "r3"}),
        ("tags.env != 'prod'", {"r2"}),
        ("tags.env LIKE 'PROD'", set()),
        ("tags.env ILIKE 'PROD'", {"r1", "r3"}),
        ("tags.env LIKE 'pro%'", {"r1", "r3"}),
        ("tags.env IN ('dev')", {"r2"}),
        ("tags.env NOT IN ('dev', 'staging')", {"r1", "r3"}),
        ("tags.team LIKE 'vision'", set()),
        ("tags.team ILIKE 'vision'", {"r1"}),
    ],
)
def test_tag_comparators(populated: Database, filter_string: str, expected: set[str]) -> None:
    assert matches(populated, filter_string) == expected


def test_like_wildcards_and_escapes(populated: Database) -> None:
    # Characters special to SQLite's GLOB are literal in LIKE patterns.
    assert matches(populated, "tags.glob LIKE 'a*b'") == {"r1"}
    assert matches(populated, "tags.glob LIKE 'a?b'") == set()
    assert matches(populated, "tags.glob LIKE 'a_b'") == {"r1", "r2"}
    assert matches(populated, "tags.glob LIKE '[ab]'") == {"r3"}
    assert matches(populated, "tags.glob LIKE '[%'") == {"r3"}
    # A backslash escapes the wildcards.
    assert matches(populated, "params.note LIKE '%100\\% done'") == {"r1"}
    assert matches(populated, "params.note LIKE '%100% done'") == {"r1", "r2"}
    assert matches(populated, "params.note ILIKE '%100\\% DONE'") == {"r1"}
    assert matches(populated, "tags.glob LIKE 'a\\_b'") == set()


def test_quoting_styles(populated: Database) -> None:
    assert matches(populated, "metrics.`my metric` > 0") == {"r1"}
    assert matches(populated, 'metrics."my metric" > 0') == {"r1"}
    assert matches(populated, "tags.`k with space` = 'v'") == {"r1"}
    assert matches(populated, 'tags."k with space" = "v"') == {"r1"}
    assert matches(populated, "params.note = 'it''s 100% done'") == {"r1"}
    assert matches(populated, 'params.note = "it\'s 100% done"') == {"r1"}
    assert matches(populated, "params.`model` = 'cnn'") == {"r1"}


@pytest.mark.parametrize("prefix", ["metric", "metrics"])
def test_metric_prefixes(populated: Database, prefix: str) -> None:
    assert matches(populated, f"{prefix}.acc > 0.8") == {"r1"}


@pytest.mark.parametrize("prefix", ["param", "params", "parameter", "parameters"])
def test_param_prefixes(populated: Database, prefix: str) -> None:
    assert matches(populated, f"{prefix}.model = 'rnn'") == {"r3"}


@pytest.mark.parametrize("prefix", ["tag.", "tags.", "attribute.", "attributes.", "attr.", ""])
def test_tag_and_attribute_prefixes(populated: Database, prefix: str) -> None:
    key = "`mlflow.runName`" if prefix.startswith("tag") else "run_name"
    assert matches(populated, f"{prefix}{key} = 'beta'") == {"r2"}


# --------------------------------------------------------------------------- attributes


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("attributes.run_name = 'alpha'", {"r1"}),
        ("attributes.run_name != 'alpha'", {"r2", "r3", "r4"}),
        ("attributes.run_name LIKE '%a'", {"r1", "r2", "r3", "r4"}),
        ("attributes.run_name LIKE 'A%'", set()),
        ("attributes.run_name ILIKE 'A%'", {"r1"}),
        ("tags.mlflow.runName = 'gamma'", {"r3"}),
        ("tags.\"mlflow.runName\" IN ('alpha', 'delta')", {"r1", "r4"}),
        ("attributes.status = 'FINISHED'", {"r1", "r4"}),
        ("attributes.status IN ('FAILED', 'RUNNING')", {"r2", "r3"}),
        ("attributes.status NOT IN ('FINISHED')", {"r2", "r3"}),
        ("attributes.user_id != 'alice'", {"r2", "r4"}),
        ("attributes.run_id = 'r3'", {"r3"}),
        ("attributes.run_uuid IN ('r1', 'r2', 'nope')", {"r1", "r2"}),
        ("attributes.parent_run_id = 'r1'", {"r4"}),
        ("attributes.lifecycle_stage = 'active'", {"r1", "r2", "r3", "r4"}),
        ("attributes.experiment_id = '0'", {"r1", "r2", "r3", "r4"}),
        ("attributes.experiment_id = 0", {"r1", "r2", "r3", "r4"}),
        ("attributes.experiment_id != '0'", set()),
        ("attributes.experiment_id IN ('0', '7')", {"r1", "r2", "r3", "r4"}),
        ("attributes.experiment_id NOT IN ('0')", set()),
        ("attributes.start_time = 2000", {"r2"}),
        ("attributes.start_time != 2000", {"r1", "r3", "r4"}),
        ("attributes.start_time > 2000", {"r3", "r4"}),
        ("attributes.start_time >= 2000", {"r2", "r3", "r4"}),
        ("attributes.start_time < 2000", {"r1"}),
        ("attributes.start_time <= 2e3", {"r1", "r2"}),
        ("attributes.end_time <= 2000", {"r1"}),
        ("attributes.end_time > 0", {"r1", "r4"}),  # runs without an end time never match
        ("status = 'RUNNING'", {"r3"}),
    ],
)
def test_attribute_comparisons(populated: Database, filter_string: str, expected: set[str]) -> None:
    assert matches(populated, filter_string) == expected


def test_lifecycle_stage_with_all_view(populated: Database) -> None:
    found = search(populated, "attributes.lifecycle_stage = 'deleted'", view_type=ViewType.ALL)
    assert found == ["r5"]


def test_datasets(populated: Database) -> None:
    assert matches(populated, "datasets.name = 'iris'") == {"r1", "r3"}
    assert matches(populated, "datasets.context = 'train'") == {"r1"}
    assert matches(populated, "datasets.context IN ('eval', 'test')") == {"r3"}
    assert matches(populated, "dataset.digest = 'd1' AND datasets.context != 'train'") == {"r3"}
    assert matches(populated, "datasets.name LIKE 'IRIS'") == set()
    assert matches(populated, "datasets.name ILIKE 'IRIS'") == {"r1", "r3"}


# --------------------------------------------------------------------------- conjunctions


def test_and_chains(populated: Database) -> None:
    assert matches(populated, "metrics.acc > 0.6 AND tags.env = 'prod'") == {"r1", "r3"}
    assert matches(
        populated, "metrics.acc > 0.6 and tags.env = 'prod' And params.model LIKE 'c%'"
    ) == {"r1"}
    assert matches(populated, "metrics.acc > 0.6 AND metrics.acc < 0.8") == {"r3"}
    assert matches(populated, "params.model like 'c%' and params.model in ('cnn')") == {"r1"}
    assert matches(populated, "params.model not in ('cnn') AND status = 'FAILED'") == {"r2"}


def test_several_comparisons_on_one_key(populated: Database) -> None:
    # All comparisons on one key apply to the same row (one join per key).
    assert matches(populated, "metrics.acc >= 0.5 AND metrics.acc != 0.7") == {"r1", "r2"}
    assert matches(populated, "metrics.acc > 0.6 AND metrics.acc < 0.6") == set()
    # NaN matches != only, whatever the number of them; r3 has no loss at all.
    assert matches(populated, "metrics.loss != 0.1 AND metrics.loss != 5") == {"r2"}
    assert matches(populated, "metrics.loss != 5 AND metrics.loss >= 0") == {"r1"}
    assert matches(populated, "tags.env != 'dev' AND tags.env LIKE 'p%'") == {"r1", "r3"}
    assert matches(populated, "params.lr IN ('0.1', '0.01') AND params.lr != '0.1'") == {"r2"}
    assert matches(populated, "metrics.acc > 0.6 AND params.model = 'cnn' AND metrics.acc < 1") == {
        "r1"
    }


def test_parse_filter_builds_typed_comparisons() -> None:
    parsed = parse_filter(
        "metrics.acc >= 1 AND params.`a b` not in ('x', \"y\") AND attr.run_uuid = 'r' "
        "AND attributes.start_time < 10 AND tags.mlflow.runName ilike 'n%' AND datasets.name = 'd'"
    )
    assert parsed == [
        Comparison("metric", "acc", ">=", 1.0),
        Comparison("param", "a b", "NOT IN", ("x", "y")),
        Comparison("attribute", "run_id", "=", "r"),
        Comparison("attribute", "start_time", "<", 10),
        Comparison("attribute", "run_name", "ILIKE", "n%"),
        Comparison("dataset", "name", "=", "d"),
    ]
    assert isinstance(parsed[0].value, float)
    assert isinstance(parsed[3].value, int)
    assert parse_filter(None) == []
    assert parse_filter("") == []


# --------------------------------------------------------------------------- ordering


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        (["metrics.acc"], ["r2", "r3", "r1", "r4"]),
        (["metrics.acc ASC"], ["r2", "r3", "r1", "r4"]),
        (["metrics.acc DESC"], ["r1", "r3", "r2", "r4"]),
        (["metrics.acc desc"], ["r1", "r3", "r2", "r4"]),
        # NaN sorts with the missing values: last, then by the tie-breakers.
        (["metrics.loss ASC"], ["r1", "r4", "r3", "r2"]),
        (["metrics.loss DESC"], ["r1", "r4", "r3", "r2"]),
        # Byte order: upper case before lower case.
        (["params.model"], ["r2", "r1", "r3", "r4"]),
        (["params.model DESC"], ["r3", "r1", "r2", "r4"]),
        (["tags.env DESC"], ["r3", "r1", "r2", "r4"]),
        (["tags.env", "metrics.acc DESC"], ["r2", "r1", "r3", "r4"]),
        (["attributes.start_time"], ["r1", "r2", "r3", "r4"]),
        (["start_time DESC"], ["r4", "r3", "r2", "r1"]),
        (["attributes.run_name"], ["r1", "r2", "r4", "r3"]),
        (["tags.`mlflow.runName` DESC"], ["r3", "r4", "r2", "r1"]),
        (["attributes.end_time DESC"], ["r4", "r1", "r3", "r2"]),
        (["attributes.end_time ASC"], ["r1", "r4", "r3", "r2"]),
        (["attributes.status", "attributes.user_id DESC"], ["r2", "r4", "r1", "r3"]),
        (["metrics.`my metric` DESC"], ["r1", "r4", "r3", "r2"]),
    ],
)
def test_order_by(populated: Database, order_by: list[str], expected: list[str]) -> None:
    assert search(populated, order_by=order_by) == expected


def test_tie_breakers(db: Database) -> None:
    with db.write() as conn:
        for run_id in ("b", "c", "a"):
            add_run(conn, run_id, start_time=10, metrics={"m": 1.0})
        add_run(conn, "z", start_time=20, metrics={"m": 1.0})
    assert search(db) == ["z", "a", "b", "c"]
    assert search(db, order_by=["metrics.m"]) == ["z", "a", "b", "c"]
    assert search(db, order_by=["attributes.start_time"]) == ["a", "b", "c", "z"]
    assert search(db, order_by=["attributes.run_id DESC"]) == ["z", "c", "b", "a"]


def test_order_and_filter_combined(populated: Database) -> None:
    found = search(populated, "tags.env = 'prod'", order_by=["metrics.acc"])
    assert found == ["r3", "r1"]


@pytest.mark.parametrize(
    ("filter_string", "order_by", "expected"),
    [
        # The order key is filtered: runs without it are filtered out.
        ("metrics.acc > 0.1", ["metrics.acc DESC"], ["r1", "r3", "r2"]),
        ("metrics.acc > 0.1", ["metrics.acc"], ["r2", "r3", "r1"]),
        ("params.model != 'x'", ["params.model DESC"], ["r3", "r1", "r2"]),
        # Filtered with != only: NaN still matches and still sorts last.
        ("metrics.loss != 5", ["metrics.loss"], ["r1", "r2"]),
        ("metrics.loss != 5", ["metrics.loss DESC"], ["r1", "r2"]),
        # Not filtered: runs without it (or with NaN) come last, by the tie-breakers.
        ("metrics.acc > 0.1", ["metrics.loss"], ["r1", "r3", "r2"]),
        ("metrics.acc > 0.1", ["metrics.loss DESC"], ["r1", "r3", "r2"]),
        ("tags.env = 'prod'", ["metrics.loss DESC"], ["r1", "r3"]),
        (None, ["metrics.loss", "params.model DESC"], ["r1", "r3", "r2", "r4"]),
        (None, ["metrics.loss", "metrics.acc DESC"], ["r1", "r3", "r2", "r4"]),
        (None, ["metrics.loss", "metrics.loss DESC"], ["r1", "r4", "r3", "r2"]),
        ("metrics.acc < 0.8", ["params.lr", "metrics.acc"], ["r2", "r3"]),
        # Filtered and unfiltered order keys together.
        ("metrics.acc > 0.1", ["tags.env", "metrics.acc DESC"], ["r2", "r1", "r3"]),
        ("params.model != 'x'", ["metrics.loss", "params.model"], ["r1", "r2", "r3"]),
    ],
)
def test_order_by_filtered_and_unfiltered_keys(
    populated: Database, filter_string: str | None, order_by: list[str], expected: list[str]
) -> None:
    assert search(populated, filter_string, order_by=order_by) == expected
    # The same order, page by page (the page can straddle runs with and without
    # the order key).
    for size in (1, 2):
        paged, _ = collect_pages(populated, size, filter_string=filter_string, order_by=order_by)
        assert paged == expected


def test_parse_order_by() -> None:
    assert parse_order_by(["metrics.`a b` DESC", "tags.x", "run_name asc"]) == [
        OrderClause("metric", "a b", ascending=False),
        OrderClause("tag", "x", ascending=True),
        OrderClause("attribute", "run_name", ascending=True),
    ]
    assert parse_order_by(None) == []


# --------------------------------------------------------------------------- query plans


_PLAN_QUERIES: list[tuple[str | None, list[str] | None]] = [
    (None, None),
    ("metrics.m > 0.3", None),
    ("metrics.m > 0.9", None),
    ("metrics.m >= 0.2 AND params.p = 'a'", ["metrics.m DESC"]),
    ("metrics.m >= 0.2 AND metrics.m < 0.8", ["metrics.m"]),
    ("params.p = 'b'", ["metrics.n"]),
    (None, ["metrics.n DESC", "params.p"]),
    ("metrics.n < 0.5", ["params.p DESC", "metrics.m"]),
    ("metrics.m != 0.5", ["metrics.m"]),
    ("metrics.m < 0.95 AND metrics.n > 0.05", ["attributes.start_time"]),
    ("metrics.n > 0.97 AND params.p = 'c'", ["metrics.m DESC"]),
]


def _expected_order(
    data: dict[str, dict[str, Any]], filter_string: str | None, order_by: list[str] | None
) -> list[str]:
    """Brute-force search semantics for the metric/param/start_time subset used above."""
    ops = {
        "=": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }

    def value(run: dict[str, Any], entity: str, key: str) -> Any:
        if entity == "attribute":
            return run[key]
        return run["metrics" if entity == "metric" else "params"].get(key, "missing")

    def keep(run: dict[str, Any]) -> bool:
        for c in parse_filter(filter_string):
            v = value(run, c.entity_type, c.key)
            if v == "missing" or (v is None and c.op != "!="):
                return False
            if v is not None and not ops[c.op](v, c.value):
                return False
        return True

    # Stable sorts from the last key to the first; missing values and NaN go last.
    found = sorted((r for r in data if keep(data[r])), key=lambda r: r)
    found.sort(key=lambda r: data[r]["start_time"], reverse=True)
    for clause in reversed(parse_order_by(order_by)):
        known = [
            r
            for r in found
            if value(data[r], clause.entity_type, clause.key) not in (None, "missing")
        ]
        known.sort(
            key=lambda r: value(data[r], clause.entity_type, clause.key),
            reverse=not clause.ascending,
        )
        found = known + [r for r in found if r not in known]
    return found


@pytest.mark.parametrize("walk_budget", [None, (1, 1), (1, 4), (2, 25)])
def test_every_query_plan_gives_the_same_answer(
    db: Database, monkeypatch: pytest.MonkeyPatch, walk_budget: tuple[int, int] | None
) -> None:
    """SQLite walks an index in a bounded stretch first and may fall back to sorting:
    with tiny walk budgets every path is taken, and each must match brute force."""
    import modelloop.store.search as search_module

    if walk_budget is not None and db.dialect != "sqlite":
        pytest.skip("walk budgets only steer SQLite's plans")
    if walk_budget is not None:
        monkeypatch.setattr(search_module, "_WALK_BUDGET", walk_budget[0])
        monkeypatch.setattr(search_module, "_MIN_WALK_BUDGET", walk_budget[1])
    rnd = random.Random(7)
    everything: dict[str, dict[str, Any]] = {}
    with db.write() as conn:
        other = add_experiment(conn, "other")
        for i in range(120):
            run_id = f"run{i:03d}"
            metrics = {
                k: rnd.choice([None, 0.5, 0.5, round(rnd.random(), 2), rnd.random()])
                for k in ("m", "n")
                if rnd.random() < 0.85
            }
            params_ = {"p": rnd.choice("abc")} if rnd.random() < 0.8 else {}
            stage = "deleted" if i % 9 == 0 else "active"
            experiment = other if i % 5 == 0 else "0"
            start_time = rnd.randrange(40)
            add_run(
                conn,
                run_id,
                start_time=start_time,
                experiment_id=experiment,
                lifecycle_stage=stage,
                metrics=metrics,
                params_=params_,
            )
            everything[run_id] = {"metrics": metrics, "params": params_, "start_time": start_time}
            if stage == "deleted" or experiment != "0":
                everything[run_id]["elsewhere"] = True
    active = {r: data for r, data in everything.items() if "elsewhere" not in data}
    for filter_string, order_by in _PLAN_QUERIES:
        expected = _expected_order(active, filter_string, order_by)
        assert search(db, filter_string, order_by=order_by) == expected, (filter_string, order_by)
        paged, _ = collect_pages(db, 7, filter_string=filter_string, order_by=order_by)
        assert paged == expected, (filter_string, order_by)
        # More experiments and stages: no index yields start-time order any more.
        wider = search(
            db,
            filter_string,
            order_by=order_by,
            experiment_ids=["0", other],
            view_type=ViewType.ALL,
        )
        assert wider == _expected_order(everything, filter_string, order_by)


# --------------------------------------------------------------------------- paging


def collect_pages(db: Database, page_size: int, **kwargs: Any) -> tuple[list[str], list[list[str]]]:
    pages: list[list[str]] = []
    token: str | None = None
    while True:
        with db.read() as conn:
            page, token = search_run_ids(
                conn, ["0"], max_results=page_size, page_token=token, **kwargs
            )
        pages.append(page)
        if token is None:
            break
        assert len(pages) < 1000
    return [run_id for page in pages for run_id in page], pages


@pytest.mark.parametrize("page_size", [1, 4, 5, 7, 23, 100])
def test_paging_without_gaps_or_duplicates(db: Database, page_size: int) -> None:
    with db.write() as conn:
        for i in range(23):
            add_run(
                conn,
                f"run{i:02d}",
                start_time=1000 + i % 5,  # repeated start times exercise the tie-breakers
                metrics={} if i % 4 == 0 else {"m": float(i % 6)},
            )
    for order_by in (None, ["metrics.m DESC"], ["metrics.m"]):
        everything = search(db, order_by=order_by)
        assert len(everything) == 23
        paged, pages = collect_pages(db, page_size, order_by=order_by)
        assert paged == everything
        assert len(pages) == -(-23 // page_size)
        assert all(len(page) == page_size for page in pages[:-1])


def test_page_token_shape(populated: Database) -> None:
    with populated.read() as conn:
        page, token = search_run_ids(conn, ["0"], max_results=3)
    assert page == ["r4", "r3", "r2"]
    assert token is not None
    assert json.loads(base64.urlsafe_b64decode(token)) == {"offset": 3}
    with populated.read() as conn:
        assert search_run_ids(conn, ["0"], max_results=3, page_token=token) == (["r1"], None)
        assert search_run_ids(conn, ["0"], max_results=4) == (["r4", "r3", "r2", "r1"], None)


def _token(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


@pytest.mark.parametrize(
    "token",
    [
        "not a token!",
        "e30",  # bad padding
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        base64.urlsafe_b64encode(b"not json").decode(),
        _token([1, 2]),
        _token({}),
        _token({"offset": -1}),
        _token({"offset": "3"}),
        _token({"offset": 1.5}),
        _token({"offset": True}),
        "ü",
    ],
)
def test_bad_page_token(populated: Database, token: str) -> None:
    with populated.read() as conn, pytest.raises(InvalidArgument, match="invalid page token"):
        search_run_ids(conn, ["0"], page_token=token)


@pytest.mark.parametrize("max_results", [0, -1, 50_001, True])
def test_bad_max_results(populated: Database, max_results: int) -> None:
    with populated.read() as conn, pytest.raises(InvalidArgument, match="max_results"):
        search_run_ids(conn, ["0"], max_results=max_results)


def test_max_results_limit_accepted(populated: Database) -> None:
    with populated.read() as conn:
        assert len(search_run_ids(conn, ["0"], max_results=50_000)[0]) == 4


@pytest.mark.parametrize("experiment_ids", [["abc"], ["0", "1.5"], ["-1"], [""], "0"])
def test_bad_experiment_ids(populated: Database, experiment_ids: Sequence[str]) -> None:
    with populated.read() as conn, pytest.raises(InvalidArgument, match="experiment"):
        search_run_ids(conn, experiment_ids)


# --------------------------------------------------------------------------- invalid filters


@pytest.mark.parametrize(
    ("filter_string", "message"),
    [
        ("metricz.acc > 1", r"unknown entity 'metricz' .*position 0"),
        ("metrics.acc >", r"missing value at position 13"),
        ("metrics.acc", r"missing comparator"),
        ("metrics. > 1", r"missing key after metrics\."),
        ("metrics.acc LIKE 'a%'", r"comparator LIKE is not valid for metric 'acc'"),
        ("metrics.acc IN ('1')", r"comparator IN is not valid for metric"),
        ("params.model > 'a'", r"comparator > is not valid for param 'model'.*LIKE"),
        ("tags.env < 'a'", r"comparator < is not valid for tag 'env'"),
        ("attributes.start_time LIKE '1%'", r"comparator LIKE is not valid for attribute"),
        ("attributes.experiment_id > '1'", r"comparator > is not valid for attribute"),
        ("metrics.acc > 1 OR metrics.acc < 0", r"OR is not supported.*position 16"),
        ("params.model = 'cnn", r"unterminated string .*position 15"),
        ("params.`model = 'cnn'", r"unterminated quoted key"),
        ("metrics.acc > 'high'", r"metric value must be a number, got the string 'high'"),
        ("metrics.acc > abc", r"expected a quoted string or a number, found 'abc'"),
        ("params.lr = 0.1", r"must be a quoted string, got 0.1"),
        ("attributes.foo = 'x'", r"unknown attribute 'foo'"),
        ("acc > 1", r"unknown attribute 'acc'"),
        ("datasets.size = 'x'", r"unknown dataset field 'size'"),
        ("attributes.start_time > 'yesterday'", r"start_time must be compared with a number"),
        ("attributes.start_time > 1.5", r"start_time must be an integer"),
        ("attributes.start_time > 99999999999999999999", r"out of range"),
        ("attributes.experiment_id = 'x'", r"experiment_id must be an integer string"),
        ("attributes.experiment_id IN ('0', 'x')", r"experiment_id must be an integer string"),
        ("metrics.acc > 1 AND", r"expected a condition after AND"),
        ("metrics.acc > 1 metrics.acc < 2", r"expected AND or the end of the filter"),
        ("AND metrics.acc > 1", r"found keyword AND"),
        ("(metrics.acc > 1)", r"parentheses are not supported"),
        ("metrics.acc == 1", r"expected a quoted string or a number, found '= 1'"),
        ("params.model NOT LIKE 'a'", r"expected IN after NOT"),
        ("params.model ~ 'a'", r"expected a comparator"),
        ("params.model IN 'a'", r"expected a parenthesised list"),
        ("params.model IN ()", r"expected a quoted string or a number"),
        ("params.model IN ('a' 'b')", r"expected ',' or '\)'"),
        ("params.model IN ('a', 1)", r"list items must be quoted strings, found 1"),
        ("params.model IN ('a',", r"missing value"),
        ("params.model LIKE 'a\\'", r"ends with an unescaped backslash"),
        ("metrics.acc > 1.2.3", r"expected AND or the end of the filter, found '\.3'"),
        ("12 > metrics.acc", r"expected an identifier"),
    ],
)
def test_invalid_filters(populated: Database, filter_string: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message) as info:
        parse_filter(filter_string)
    assert repr(filter_string) in info.value.message
    assert isinstance(info.value.details["position"], int)
    with populated.read() as conn, pytest.raises(InvalidArgument, match=message):
        search_run_ids(conn, ["0"], filter_string)


@pytest.mark.parametrize(
    ("order_by", "message"),
    [
        (["metrics.acc UP"], r"expected ASC or DESC, found 'UP'"),
        (["metrics.acc DESC ASC"], r"unexpected 'ASC' after DESC"),
        ([""], r"empty clause"),
        (["datasets.name"], r"datasets cannot be ordered on"),
        (["attributes.nope"], r"unknown attribute 'nope'"),
        (["foo.bar"], r"unknown entity 'foo'"),
        (["metrics.`acc"], r"unterminated quoted key"),
        ("metrics.acc", r"must be a list of strings"),
    ],
)
def test_invalid_order_by(populated: Database, order_by: Sequence[str], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_order_by(order_by)
    with populated.read() as conn, pytest.raises(InvalidArgument, match=message):
        search_run_ids(conn, ["0"], order_by=order_by)


# --------------------------------------------------------------------------- injection


@pytest.mark.parametrize(
    "filter_string",
    [
        'params.model = "\'; DROP TABLE runs; --"',
        "params.model = '''; DROP TABLE runs; --'",
        "tags.env LIKE '%''; DROP TABLE runs; --'",
        "attributes.run_name IN ('x''); DROP TABLE runs; --')",
        "params.`x'; DROP TABLE runs; --` = 'a'",
        "datasets.name ILIKE '\"; DROP TABLE runs; --'",
    ],
)
def test_values_are_bound_not_interpolated(populated: Database, filter_string: str) -> None:
    assert search(populated, filter_string) == []
    assert search(populated, order_by=["params.`'; DROP TABLE runs; --` DESC"]) == [
        "r4",
        "r3",
        "r2",
        "r1",
    ]
    with populated.read() as conn:
        assert conn.scalar(select(func.count()).select_from(runs)) == 6


def test_injection_value_round_trips_as_a_string(populated: Database) -> None:
    evil = "'; DROP TABLE runs; --"
    with populated.write() as conn:
        conn.execute(insert(params).values(run_id="r4", key="model", value=evil))
    assert search(populated, 'params.model = "\'; DROP TABLE runs; --"') == ["r4"]
    assert search(populated, "params.model = '''; DROP TABLE runs; --'") == ["r4"]


# --------------------------------------------------------------------------- scale


@pytest.mark.slow
def test_twenty_thousand_runs(db: Database) -> None:
    n = 20_000
    run_rows = [
        {
            "run_id": f"{i:032x}",
            "experiment_id": 0,
            "name": f"run-{i}",
            "user_id": "alice" if i % 3 else "bob",
            "status": "FINISHED",
            "start_time": 1_000_000 + i // 2,
            "end_time": None,
            "lifecycle_stage": "deleted" if i % 50 == 0 else "active",
        }
        for i in range(n)
    ]
    metric_rows = [
        {"run_id": f"{i:032x}", "key": "m", "value": float(i % 100), "step": 0, "timestamp": 0}
        for i in range(n)
        if i % 7
    ]
    param_rows = [
        {"run_id": f"{i:032x}", "key": "parity", "value": "even" if i % 2 == 0 else "odd"}
        for i in range(n)
    ]
    with db.write() as conn:
        conn.execute(insert(runs), run_rows)
        conn.execute(insert(latest_metrics), metric_rows)
        conn.execute(insert(params), param_rows)

    active = [i for i in range(n) if i % 50]
    expected = [
        f"{i:032x}" for i in active if i % 7 and i % 100 >= 90 and i % 2 == 0 and i % 3 == 0
    ]
    found = search(db, "metrics.m >= 90 AND params.parity = 'even' AND attributes.user_id = 'bob'")
    assert sorted(found) == sorted(expected)

    # Order by metric descending; runs without the metric last; ties newest first, then run id.
    def sort_key(i: int) -> tuple[int, float, int, str]:
        has = i % 7 != 0
        return (0 if has else 1, -float(i % 100) if has else 0.0, -(i // 2), f"{i:032x}")

    expected_order = [f"{i:032x}" for i in sorted(active, key=sort_key)]
    paged, pages = collect_pages(db, 5000, order_by=["metrics.m DESC"])
    assert len(pages) == 4
    assert paged == expected_order
    assert len(set(paged)) == len(active)
