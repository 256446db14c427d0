"""Promotion verdicts, evaluations and registered evaluation datasets in the
metadata store (the registry's records; versions and aliases are in
:mod:`modelloop.store.registry`)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, Row, select

from modelloop.entities import EvaluationRecord, PromotionRecord, RegisteredDataset
from modelloop.errors import NotFound
from modelloop.store import registry
from modelloop.store._util import now_ms, upsert
from modelloop.store.schema import evaluations, promotion_verdicts, registered_datasets


def record_promotion(
    conn: Connection,
    name: str,
    version: int,
    alias: str,
    *,
    passed: bool,
    forced: bool,
    reason: str,
    checks: list[dict[str, Any]],
    policy: dict[str, Any] | None,
    actor: str,
) -> PromotionRecord:
    """Store a verdict; move the alias (recording the move) when it passed or was
    forced. The verdict, the move and the caller's audit row share one transaction."""
    registry.require_version(conn, name, version)
    moved = passed or forced
    now = now_ms()
    result = conn.execute(
        promotion_verdicts.insert().values(
            name=name,
            version=version,
            alias=alias,
            passed=passed,
            forced=forced,
            moved=moved,
            reason=reason,
            checks=json.dumps(checks, sort_keys=True),
            policy=json.dumps(policy, sort_keys=True) if policy is not None else None,
            time=now,
            actor=actor,
        )
    )
    assert result.inserted_primary_key is not None
    verdict_id = int(result.inserted_primary_key[0])
    if moved:
        why = reason or ("promotion gates passed" if passed else "forced")
        registry.set_alias(conn, name, alias, version, actor, why, verdict_id)
    return _promotion(
        conn.execute(select(promotion_verdicts).where(promotion_verdicts.c.id == verdict_id)).one()
    )


def _promotion(r: Row[Any]) -> PromotionRecord:
    return PromotionRecord(
        id=r.id,
        name=r.name,
        version=r.version,
        alias=r.alias,
        passed=bool(r.passed),
        forced=bool(r.forced),
        moved=bool(r.moved),
        reason=r.reason,
        checks=json.loads(r.checks),
        time=r.time,
        actor=r.actor,
        policy=json.loads(r.policy) if r.policy else None,
    )


def list_promotions(
    conn: Connection, name: str, version: int | None = None
) -> list[PromotionRecord]:
    """A model's (or one version's) promotion verdicts, oldest first."""
    registry.require_model(conn, name)
    q = select(promotion_verdicts).where(promotion_verdicts.c.name == name)
    if version is not None:
        q = q.where(promotion_verdicts.c.version == version)
    return [_promotion(r) for r in conn.execute(q.order_by(promotion_verdicts.c.id))]


def record_evaluation(
    conn: Connection,
    name: str,
    version: int,
    *,
    run_id: str | None,
    dataset_name: str | None,
    dataset_digest: str | None,
    result: dict[str, Any],
    actor: str,
) -> EvaluationRecord:
    """Link an evaluation (its run and its results) to a version."""
    registry.require_version(conn, name, version)
    now = now_ms()
    inserted = conn.execute(
        evaluations.insert().values(
            name=name,
            version=version,
            run_id=run_id,
            dataset_name=dataset_name,
            dataset_digest=dataset_digest,
            result=json.dumps(result, sort_keys=True),
            time=now,
            actor=actor,
        )
    )
    assert inserted.inserted_primary_key is not None
    return EvaluationRecord(
        id=int(inserted.inserted_primary_key[0]),
        name=name,
        version=version,
        run_id=run_id,
        dataset_name=dataset_name,
        dataset_digest=dataset_digest,
        result=result,
        time=now,
        actor=actor,
    )


def list_evaluations(conn: Connection, name: str, version: int) -> list[EvaluationRecord]:
    """A version's evaluations, oldest first."""
    registry.require_version(conn, name, version)
    rows = conn.execute(
        select(evaluations)
        .where(evaluations.c.name == name, evaluations.c.version == version)
        .order_by(evaluations.c.id)
    )
    return [
        EvaluationRecord(
            id=r.id,
            name=r.name,
            version=r.version,
            run_id=r.run_id,
            dataset_name=r.dataset_name,
            dataset_digest=r.dataset_digest,
            result=json.loads(r.result),
            time=r.time,
            actor=r.actor,
        )
        for r in rows
    ]


def put_dataset(conn: Connection, dataset: RegisteredDataset) -> RegisteredDataset:
    """Register (or replace) a named evaluation dataset."""
    upsert(
        conn,
        registered_datasets,
        [
            {
                "name": dataset.name,
                "digest": dataset.digest,
                "blob_digest": dataset.blob_digest,
                "rows": dataset.rows,
                "columns": json.dumps(dataset.columns),
                "description": dataset.description,
                "created_time": dataset.created_time,
                "actor": dataset.actor,
            }
        ],
        ["digest", "blob_digest", "rows", "columns", "description", "created_time", "actor"],
    )
    return dataset


def _dataset(r: Row[Any]) -> RegisteredDataset:
    return RegisteredDataset(
        name=r.name,
        digest=r.digest,
        blob_digest=r.blob_digest,
        rows=r.rows,
        columns=json.loads(r.columns),
        created_time=r.created_time,
        actor=r.actor,
        description=r.description,
    )


def get_dataset(conn: Connection, name: str) -> RegisteredDataset:
    """A registered evaluation dataset by name."""
    row = conn.execute(
        select(registered_datasets).where(registered_datasets.c.name == name)
    ).first()
    if row is None:
        raise NotFound(f"evaluation dataset {name!r} not found", name=name)
    return _dataset(row)


def list_datasets(conn: Connection) -> list[RegisteredDataset]:
    """Every registered evaluation dataset, by name."""
    rows = conn.execute(select(registered_datasets).order_by(registered_datasets.c.name))
    return [_dataset(r) for r in rows]
