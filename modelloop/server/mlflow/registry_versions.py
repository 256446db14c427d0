"""MLflow ``model-versions/*``: create, get, search, update, transition-stage, delete,
tags and get-download-uri, over modelloop's registry.

A version's ``source`` is resolved to the run and folder holding its files (see
:mod:`.registry`), and the version is READY at once. Search filters take ``name``,
``run_id``, ``source_path``, ``version_number`` and ``tags.<key>``; order by
``name``, ``version_number``, ``creation_timestamp`` or ``last_updated_timestamp``
(default: name ascending, newest version first).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import Field, StrictBool, StrictStr

from modelloop.entities import ModelVersion, VersionStage
from modelloop.server.mlflow import search_filter as sf
from modelloop.server.mlflow.deps import StoreDep
from modelloop.server.mlflow.errors import MlflowError, MlflowRoute
from modelloop.server.mlflow.registry import (
    ModelName,
    SearchMessage,
    VersionRef,
    all_versions,
    download_uri,
    model_version_json,
    resolve_source,
    version_number,
)
from modelloop.server.mlflow.wire import Required, TagMessage, message, ok
from modelloop.store.registry import check_stage

__all__ = ["router"]

router = APIRouter(prefix="/model-versions", route_class=MlflowRoute)

MAX_RESULTS = 200_000
_STRING_ATTRS = ("name", "run_id", "source_path", "source")
_NUMBER_ATTRS = ("version_number",)
_ORDER_KEYS = {
    "name": lambda mv: mv.name,
    "version_number": lambda mv: mv.version,
    "creation_timestamp": lambda mv: mv.creation_time,
    "last_updated_timestamp": lambda mv: mv.last_updated_time,
}


class CreateModelVersion(ModelName):
    source: Required
    run_id: StrictStr | None = None
    tags: list[TagMessage] = Field(default_factory=list)
    run_link: StrictStr | None = None
    description: StrictStr | None = None
    model_id: StrictStr | None = None


class UpdateModelVersion(VersionRef):
    description: StrictStr | None = None


class TransitionStage(VersionRef):
    stage: Required
    archive_existing_versions: StrictBool | StrictStr = False


class SetVersionTag(VersionRef):
    key: Required
    value: StrictStr


class DeleteVersionTag(VersionRef):
    key: Required


def _version(mv: ModelVersion) -> JSONResponse:
    return ok({"model_version": model_version_json(mv)})


@router.post("/create")
def create(
    body: Annotated[CreateModelVersion, message(CreateModelVersion)], store: StoreDep
) -> JSONResponse:
    """Register a new version of an existing model from a run's or a logged model's
    files; READY at once."""
    store.get_registered_model(body.name)  # 404 before anything else, as MLflow
    where = resolve_source(store, body.source, body.run_id or None, body.model_id or None)
    mv = store.create_model_version(
        body.name,
        body.source,
        run_id=where.run_id,
        artifact_path=where.artifact_path,
        description=body.description or "",
        tags={t.key: t.value for t in body.tags},
        model_id=where.model_id,
    )
    return _version(mv)


@router.get("/get")
def get(body: Annotated[VersionRef, message(VersionRef)], store: StoreDep) -> JSONResponse:
    """One version."""
    return _version(store.get_model_version(body.name, version_number(body.version)))


@router.patch("/update")
def update(
    body: Annotated[UpdateModelVersion, message(UpdateModelVersion)], store: StoreDep
) -> JSONResponse:
    """Change a version's description."""
    number = version_number(body.version)
    return _version(store.update_model_version(body.name, number, description=body.description))


def _flag(value: bool | str) -> bool:
    if isinstance(value, bool):
        return value
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise MlflowError(f"'archive_existing_versions' must be a boolean, got {value[:20]!r}")


@router.post("/transition-stage")
def transition_stage(
    body: Annotated[TransitionStage, message(TransitionStage)], store: StoreDep
) -> JSONResponse:
    """Move a version to a stage (MLflow deprecated stages for aliases). With
    ``archive_existing_versions``, the model's other versions in that stage (Staging
    or Production) are archived after the move."""
    number = version_number(body.version)
    stage = check_stage(body.stage)
    archive = _flag(body.archive_existing_versions)
    mv = store.update_model_version(body.name, number, stage=stage)
    if archive and stage in (VersionStage.STAGING.value, VersionStage.PRODUCTION.value):
        for other in all_versions(store, body.name):
            if other.version != number and other.stage == stage:
                store.update_model_version(body.name, other.version, stage="Archived")
    return _version(mv)


@router.delete("/delete")
def delete(body: Annotated[VersionRef, message(VersionRef)], store: StoreDep) -> JSONResponse:
    """Delete a version (aliases pointing at it go with it)."""
    store.delete_model_version(body.name, version_number(body.version))
    return ok()


def _attribute(mv: ModelVersion, key: str) -> str | int | None:
    if key == "version_number":
        return mv.version
    if key in ("source_path", "source"):
        return mv.source
    return mv.name if key == "name" else mv.run_id


def _matches(mv: ModelVersion, c: sf.Comparison) -> bool:
    if c.kind == "tag":
        return sf.matches(c, mv.tags.get(c.key))
    return sf.matches(c, _attribute(mv, c.key))


@router.get("/search")
def search(body: Annotated[SearchMessage, message(SearchMessage)], store: StoreDep) -> JSONResponse:
    """One page of the versions matching a filter, in order."""
    comparisons = sf.parse_filter(body.filter, _STRING_ATTRS, _NUMBER_ATTRS)
    terms = sf.parse_order_by(body.order_by, _ORDER_KEYS)
    exact = {c.key: str(c.value) for c in comparisons if c.kind == "attr" and c.op == "="}
    candidates = all_versions(store, exact.get("name"), exact.get("run_id"))
    found = [mv for mv in candidates if all(_matches(mv, c) for c in comparisons)]
    ordered = sf.sort(found, terms, lambda mv, key: _ORDER_KEYS[key](mv))
    max_results = 10_000 if body.max_results is None else body.max_results
    versions, token = sf.page(ordered, max_results, body.page_token, MAX_RESULTS)
    payload: dict[str, Any] = {"model_versions": [model_version_json(mv) for mv in versions]}
    if token:
        payload["next_page_token"] = token
    return ok(payload)


@router.get("/get-download-uri")
def get_download_uri(
    body: Annotated[VersionRef, message(VersionRef)], store: StoreDep
) -> JSONResponse:
    """Where the client downloads a version's files (this server's artifact proxy)."""
    mv = store.get_model_version(body.name, version_number(body.version))
    return ok({"artifact_uri": download_uri(store, mv)})


@router.post("/set-tag")
def set_tag(
    body: Annotated[SetVersionTag, message(SetVersionTag)], store: StoreDep
) -> JSONResponse:
    """Set (overwrite) a tag of a version."""
    store.set_model_version_tag(body.name, version_number(body.version), body.key, body.value)
    return ok()


@router.delete("/delete-tag")
def delete_tag(
    body: Annotated[DeleteVersionTag, message(DeleteVersionTag)], store: StoreDep
) -> JSONResponse:
    """Remove a tag of a version."""
    store.delete_model_version_tag(body.name, version_number(body.version), body.key)
    return ok()
