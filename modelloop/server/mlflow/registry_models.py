"""MLflow ``registered-models/*``: create, get, search, update, rename, delete, tags,
aliases and the deprecated get-latest-versions, over modelloop's registry.

Search filters take ``name`` and ``tags.<key>`` (``=``, ``!=``, ``LIKE``, ``ILIKE``,
``IN``); order by ``name`` or ``last_updated_timestamp`` (MLflow's default: name
ascending). Missing models are 404 ``RESOURCE_DOES_NOT_EXIST``, a taken name 400
``RESOURCE_ALREADY_EXISTS`` (both from modelloop's typed errors).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import Field, StrictStr

from modelloop.backends import LocalBackend
from modelloop.entities import RegisteredModel
from modelloop.server.mlflow import search_filter as sf
from modelloop.server.mlflow.deps import StoreDep
from modelloop.server.mlflow.errors import MlflowRoute
from modelloop.server.mlflow.registry import (
    ModelName,
    SearchMessage,
    all_versions,
    latest_per_stage,
    model_version_json,
    registered_model_json,
    version_number,
)
from modelloop.server.mlflow.wire import Int64, Required, TagMessage, message, ok
from modelloop.store.registry import check_stage

__all__ = ["router"]

router = APIRouter(prefix="/registered-models", route_class=MlflowRoute)

MAX_RESULTS = 1000
_ORDER_KEYS = {
    "name": lambda m: m.name,
    "last_updated_timestamp": lambda m: m.last_updated_time,
    "timestamp": lambda m: m.last_updated_time,
    "creation_timestamp": lambda m: m.creation_time,
}


class CreateRegisteredModel(ModelName):
    tags: list[TagMessage] = Field(default_factory=list)
    description: StrictStr | None = None


class RenameRegisteredModel(ModelName):
    new_name: Required


class UpdateRegisteredModel(ModelName):
    description: StrictStr | None = None


class GetLatestVersions(ModelName):
    stages: list[StrictStr] = Field(default_factory=list)


class SetModelTag(ModelName):
    key: Required
    value: StrictStr


class DeleteModelTag(ModelName):
    key: Required


class AliasRef(ModelName):
    alias: Required


class SetAlias(AliasRef):
    version: StrictStr | Int64


def _model(store: LocalBackend, model: RegisteredModel) -> JSONResponse:
    return ok({"registered_model": registered_model_json(store, model)})


@router.post("/create")
def create(
    body: Annotated[CreateRegisteredModel, message(CreateRegisteredModel)], store: StoreDep
) -> JSONResponse:
    """Create a registered model; 400 RESOURCE_ALREADY_EXISTS when the name is taken."""
    model = store.create_registered_model(
        body.name, body.description or "", {t.key: t.value for t in body.tags}
    )
    return _model(store, model)


@router.get("/get")
def get(body: Annotated[ModelName, message(ModelName)], store: StoreDep) -> JSONResponse:
    """A registered model with its latest versions, tags and aliases."""
    return _model(store, store.get_registered_model(body.name))


@router.post("/rename")
def rename(
    body: Annotated[RenameRegisteredModel, message(RenameRegisteredModel)], store: StoreDep
) -> JSONResponse:
    """Rename a model (its versions and aliases follow)."""
    return _model(store, store.rename_registered_model(body.name, body.new_name))


@router.patch("/update")
def update(
    body: Annotated[UpdateRegisteredModel, message(UpdateRegisteredModel)], store: StoreDep
) -> JSONResponse:
    """Change a model's description."""
    model = store.update_registered_model(body.name, description=body.description or "")
    return _model(store, model)


@router.delete("/delete")
def delete(body: Annotated[ModelName, message(ModelName)], store: StoreDep) -> JSONResponse:
    """Delete a model with all its versions."""
    store.delete_registered_model(body.name)
    return ok()


def _matches(model: RegisteredModel, c: sf.Comparison) -> bool:
    if c.kind == "tag":
        return sf.matches(c, model.tags.get(c.key))
    return sf.matches(c, model.name)


@router.get("/search")
def search(body: Annotated[SearchMessage, message(SearchMessage)], store: StoreDep) -> JSONResponse:
    """One page of the models matching a filter, in order (name ascending by default)."""
    comparisons = sf.parse_filter(body.filter, ("name",))
    terms = sf.parse_order_by(body.order_by, _ORDER_KEYS)
    # An exact name narrows the store's query; the rest is matched here, where LIKE
    # is case-sensitive on every database (SQLite's LIKE is not).
    exact = [c for c in comparisons if c.kind == "attr" and c.op == "="]
    tags = {c.key: str(c.value) for c in comparisons if c.kind == "tag" and c.op == "="}
    candidates: list[RegisteredModel] = []
    token: str | None = None
    while True:
        page = store.search_registered_models(
            name_like=_like_exact(str(exact[0].value)) if exact else None,
            tags=tags or None,
            max_results=10_000,
            page_token=token,
        )
        candidates.extend(page.items)
        token = page.next_page_token
        if not token:
            break
    found = [m for m in candidates if all(_matches(m, c) for c in comparisons)]
    ordered = sf.sort(found, terms, lambda m, key: _ORDER_KEYS[key](m))
    max_results = 100 if body.max_results is None else body.max_results
    models, next_token = sf.page(ordered, max_results, body.page_token, MAX_RESULTS)
    payload: dict[str, Any] = {
        "registered_models": [registered_model_json(store, m) for m in models]
    }
    if next_token:
        payload["next_page_token"] = next_token
    return ok(payload)


def _like_exact(name: str) -> str | None:
    """A LIKE pattern matching ``name`` (a superset, re-checked exactly in memory); None
    when the name has LIKE wildcards, which the store query cannot escape."""
    return None if "%" in name or "_" in name else name


@router.api_route("/get-latest-versions", methods=["GET", "POST"])
def get_latest_versions(
    body: Annotated[GetLatestVersions, message(GetLatestVersions)], store: StoreDep
) -> JSONResponse:
    """The newest version in each of the given stages (all stages by default); MLflow
    deprecated stages, this stays for old clients."""
    stages = {check_stage(s) for s in body.stages}
    store.get_registered_model(body.name)
    latest = latest_per_stage(all_versions(store, body.name))
    chosen = [mv for mv in latest if not stages or mv.stage in stages]
    return ok({"model_versions": [model_version_json(mv) for mv in chosen]})


@router.post("/set-tag")
def set_tag(body: Annotated[SetModelTag, message(SetModelTag)], store: StoreDep) -> JSONResponse:
    """Set (overwrite) a tag of a model."""
    store.set_registered_model_tag(body.name, body.key, body.value)
    return ok()


@router.delete("/delete-tag")
def delete_tag(
    body: Annotated[DeleteModelTag, message(DeleteModelTag)], store: StoreDep
) -> JSONResponse:
    """Remove a tag of a model."""
    store.delete_registered_model_tag(body.name, body.key)
    return ok()


@router.post("/alias")
def set_alias(body: Annotated[SetAlias, message(SetAlias)], store: StoreDep) -> JSONResponse:
    """Point an alias at a version (moving it if it exists); the move is recorded."""
    store.set_model_alias(body.name, body.alias, version_number(body.version))
    return ok()


@router.delete("/alias")
def delete_alias(body: Annotated[AliasRef, message(AliasRef)], store: StoreDep) -> JSONResponse:
    """Remove an alias."""
    store.delete_model_alias(body.name, body.alias)
    return ok()


@router.get("/alias")
def get_by_alias(body: Annotated[AliasRef, message(AliasRef)], store: StoreDep) -> JSONResponse:
    """The version an alias points at."""
    mv = store.get_model_version_by_alias(body.name, body.alias)
    return ok({"model_version": model_version_json(mv)})
