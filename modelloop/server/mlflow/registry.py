"""The MLflow model registry over modelloop's registry: what its two routers
(:mod:`.registry_models` for ``registered-models/*``, :mod:`.registry_versions` for
``model-versions/*``) share: the JSON shapes, the request fields, and how a version's
``source`` becomes a run and a path.

MLflow numbers versions with strings on the wire; modelloop with integers. A version
``source`` is resolved to the run and artifact folder holding the model:

==============================================  ==========================================
``source``                                      run, artifact path
==============================================  ==========================================
``models:/m-<id>`` (MLflow 3, with model_id)    the logged model's source run,
                                                ``_logged_models/<id>``
``runs:/<run_id>/<path>``                       that run, ``<path>``
``mlflow-artifacts:/<exp>/<run>/artifacts/<p>`` that run, ``<p>``
``mlflow-artifacts:/<exp>/models/<id>/...``     as ``models:/m-<id>``
anything else                                   the request's ``run_id``, no path
==============================================  ==========================================

so modelloop's own client, gates and ``runs:/`` URIs find the files of a version the
MLflow client registered. Versions are READY as soon as they are created (the files
are already stored), so the client never polls.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pydantic import Field, StrictStr

from modelloop.backends import LocalBackend
from modelloop.entities import ModelVersion, RegisteredModel, VersionStage
from modelloop.errors import NotFound
from modelloop.server.mlflow.artifacts import ModelPath, RunPath, parse_proxy_path
from modelloop.server.mlflow.convert import run_artifact_uri, tags_json
from modelloop.server.mlflow.errors import RESOURCE_DOES_NOT_EXIST, MlflowError
from modelloop.server.mlflow.logged_models import model_artifact_uri
from modelloop.server.mlflow.wire import Int64, Message, Required

__all__ = [
    "ModelName",
    "Resolved",
    "SearchMessage",
    "VersionRef",
    "all_versions",
    "download_uri",
    "latest_per_stage",
    "model_version_json",
    "registered_model_json",
    "resolve_source",
    "version_number",
]


class ModelName(Message):
    """A request naming a registered model."""

    name: Required


class VersionRef(ModelName):
    """A request naming one version (a string on MLflow's wire)."""

    version: StrictStr | Int64


class SearchMessage(Message):
    """The fields of the registry's searches (GET query strings)."""

    filter: StrictStr | None = None
    max_results: Int64 | None = None
    order_by: list[StrictStr] = Field(default_factory=list)
    page_token: StrictStr | None = None


def version_number(value: str | int) -> int:
    """A version number from the wire; a malformed one is 400 INVALID_PARAMETER_VALUE."""
    text = str(value).strip()
    if not text.isdigit() or not 1 <= int(text) < 2**31:
        raise MlflowError(f"Parameter 'version' must be an integer, got '{str(value)[:60]}'.")
    return int(text)


def model_version_json(mv: ModelVersion) -> dict[str, Any]:
    """An MLflow ``ModelVersion``."""
    out: dict[str, Any] = {
        "name": mv.name,
        "version": str(mv.version),
        "creation_timestamp": mv.creation_time,
        "last_updated_timestamp": mv.last_updated_time,
        "current_stage": mv.stage,
        "description": mv.description,
        "source": mv.source,
        "status": mv.status,
    }
    if mv.user_id:
        out["user_id"] = mv.user_id
    if mv.run_id:
        out["run_id"] = mv.run_id
    if mv.model_id:
        out["model_id"] = mv.model_id
    if mv.tags:
        out["tags"] = tags_json(mv.tags)
    if mv.aliases:
        out["aliases"] = sorted(mv.aliases)
    return out


def latest_per_stage(versions: list[ModelVersion]) -> list[ModelVersion]:
    """The newest version in each stage (MLflow's ``latest_versions``), by stage order."""
    latest: dict[str, ModelVersion] = {}
    for mv in versions:
        if mv.stage not in latest or mv.version > latest[mv.stage].version:
            latest[mv.stage] = mv
    order = [s.value for s in VersionStage]
    return sorted(latest.values(), key=lambda mv: order.index(mv.stage))


def all_versions(
    store: LocalBackend, name: str | None = None, run_id: str | None = None
) -> list[ModelVersion]:
    """Every version of a model (or of all models), optionally of one run, fetched
    page by page from the store."""
    found: list[ModelVersion] = []
    token: str | None = None
    while True:
        page = store.search_model_versions(
            name=name, run_id=run_id, max_results=10_000, page_token=token
        )
        found.extend(page.items)
        token = page.next_page_token
        if not token:
            return found


def registered_model_json(store: LocalBackend, model: RegisteredModel) -> dict[str, Any]:
    """An MLflow ``RegisteredModel`` with its latest version per stage."""
    out: dict[str, Any] = {
        "name": model.name,
        "creation_timestamp": model.creation_time,
        "last_updated_timestamp": model.last_updated_time,
        "description": model.description,
    }
    if model.user_id:
        out["user_id"] = model.user_id
    if model.latest_version is not None:
        latest = latest_per_stage(all_versions(store, model.name))
        out["latest_versions"] = [model_version_json(mv) for mv in latest]
    if model.tags:
        out["tags"] = tags_json(model.tags)
    if model.aliases:
        out["aliases"] = [{"alias": a, "version": str(n)} for a, n in model.aliases.items()]
    return out


@dataclasses.dataclass(frozen=True, slots=True)
class Resolved:
    """Where a version's files are: a run and a folder of its artifacts (or neither,
    for a source outside this server), and the logged model they belong to."""

    run_id: str | None
    artifact_path: str | None
    model_id: str | None = None


def _logged_model(store: LocalBackend, model_id: str) -> Resolved:
    try:
        model = store.get_logged_model(model_id)
    except NotFound:
        raise MlflowError(
            f"Logged model '{model_id[:80]}' not found", RESOURCE_DOES_NOT_EXIST, 404
        ) from None
    return Resolved(model.source_run_id, model.artifact_path, model.model_id)


def resolve_source(
    store: LocalBackend, source: str, run_id: str | None, model_id: str | None
) -> Resolved:
    """The run, folder and logged model of a version ``source`` (see the table above).
    A source naming a run or logged model of this server must exist."""
    if model_id:
        return _logged_model(store, model_id)
    if source.startswith("models:/m-") and "/" not in source[len("models:/") :]:
        return _logged_model(store, source[len("models:/") :])
    if source.startswith("runs:/"):
        rest = source[len("runs:/") :].strip("/")
        source_run, _, path = rest.partition("/")
        if run_id and run_id != source_run:
            raise MlflowError(f"'run_id' {run_id!r} differs from the run of source {source!r}")
        store.get_run(source_run)
        return Resolved(source_run, path.strip("/") or None)
    if source.startswith("mlflow-artifacts:"):
        target = parse_proxy_path(source[len("mlflow-artifacts:") :].lstrip("/"))
        if isinstance(target, ModelPath):
            return _logged_model(store, target.model_id)
        if isinstance(target, RunPath):
            store.get_run(target.run_id)
            return Resolved(target.run_id, target.path)
    if run_id:
        store.get_run(run_id)
    return Resolved(run_id or None, None)


def download_uri(store: LocalBackend, mv: ModelVersion) -> str:
    """Where the client downloads a version's files: through this server's proxy for a
    logged model or a run's folder, else the version's own ``source``."""
    if mv.model_id:
        try:
            model = store.get_logged_model(mv.model_id)
        except NotFound:
            pass
        else:
            return model_artifact_uri(model.experiment_id, model.model_id)
    if mv.run_id and mv.artifact_path:
        try:
            run = store.get_run(mv.run_id)
        except NotFound:
            return mv.source
        return f"{run_artifact_uri(run.experiment_id, run.run_id)}/{mv.artifact_path}"
    return mv.source
