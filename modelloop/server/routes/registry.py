"""``/api/v1/registered-models``, ``/api/v1/model-versions`` and ``/api/v1/datasets``:
the model registry over HTTP."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from modelloop.errors import InvalidArgument
from modelloop.server.deps import BackendDep
from modelloop.server.errors import ERROR_RESPONSES
from modelloop.server.registry_schemas import (
    AliasEventList,
    AliasEventModel,
    CreateModelVersionRequest,
    CreateRegisteredModelRequest,
    DatasetList,
    DatasetModel,
    EvaluationList,
    EvaluationModel,
    ModelVersionModel,
    ModelVersionPage,
    PromotionList,
    PromotionModel,
    RecordEvaluationRequest,
    RecordPromotionRequest,
    RegisteredModelModel,
    RegisteredModelPage,
    RenameRegisteredModelRequest,
    SetAliasRequest,
    UpdateModelVersionRequest,
    UpdateRegisteredModelRequest,
)
from modelloop.server.routes.artifacts import BINARY_BODY, request_body
from modelloop.server.schemas import DIGEST_HEADER, SetTagRequest

__all__ = ["datasets_router", "router", "versions_router"]

router = APIRouter(prefix="/registered-models", tags=["registry"], responses=ERROR_RESPONSES)
versions_router = APIRouter(prefix="/model-versions", tags=["registry"], responses=ERROR_RESPONSES)
datasets_router = APIRouter(prefix="/datasets", tags=["registry"], responses=ERROR_RESPONSES)

Name = Annotated[str, Path(description="The registered model's name.")]
Version = Annotated[str, Path(description="The version number.")]
Alias = Annotated[str, Path(description="The alias (e.g. champion).")]
MaxResults = Annotated[int, Query(ge=1, le=10_000)]


@router.post("", status_code=201, operation_id="create_registered_model")
def create_registered_model(
    body: CreateRegisteredModelRequest, backend: BackendDep
) -> RegisteredModelModel:
    """Create a registered model."""
    found = backend.create_registered_model(body.name, body.description, body.tags)
    return RegisteredModelModel.from_entity(found)


@router.get("", operation_id="search_registered_models")
def search_registered_models(
    backend: BackendDep,
    name_like: Annotated[str | None, Query(description="SQL LIKE pattern.")] = None,
    max_results: MaxResults = 100,
    page_token: str | None = None,
) -> RegisteredModelPage:
    """Registered models by name pattern, one page at a time."""
    page = backend.search_registered_models(
        name_like, max_results=max_results, page_token=page_token
    )
    return RegisteredModelPage(
        registered_models=[RegisteredModelModel.from_entity(m) for m in page],
        next_page_token=page.next_page_token,
    )


@router.get("/{name}", operation_id="get_registered_model")
def get_registered_model(name: Name, backend: BackendDep) -> RegisteredModelModel:
    """A registered model with its tags, aliases and policy."""
    return RegisteredModelModel.from_entity(backend.get_registered_model(name))


@router.patch("/{name}", operation_id="update_registered_model")
def update_registered_model(
    name: Name, body: UpdateRegisteredModelRequest, backend: BackendDep
) -> RegisteredModelModel:
    """Change card fields or the promotion policy."""
    found = backend.update_registered_model(
        name, body.description, body.intended_use, body.limitations, body.policy
    )
    return RegisteredModelModel.from_entity(found)


@router.post("/{name}/rename", operation_id="rename_registered_model")
def rename_registered_model(
    name: Name, body: RenameRegisteredModelRequest, backend: BackendDep
) -> RegisteredModelModel:
    """Rename a registered model."""
    return RegisteredModelModel.from_entity(backend.rename_registered_model(name, body.new_name))


@router.delete("/{name}", status_code=204, operation_id="delete_registered_model")
def delete_registered_model(name: Name, backend: BackendDep) -> None:
    """Delete a registered model and all its versions."""
    backend.delete_registered_model(name)


@router.put("/{name}/tags/{key:path}", status_code=204, operation_id="set_registered_model_tag")
def set_registered_model_tag(
    name: Name, key: str, body: SetTagRequest, backend: BackendDep
) -> None:
    """Set a registered model tag."""
    backend.set_registered_model_tag(name, key, body.value)


@router.delete(
    "/{name}/tags/{key:path}", status_code=204, operation_id="delete_registered_model_tag"
)
def delete_registered_model_tag(name: Name, key: str, backend: BackendDep) -> None:
    """Remove a registered model tag."""
    backend.delete_registered_model_tag(name, key)


@router.post("/{name}/versions", status_code=201, operation_id="create_model_version")
def create_model_version(
    name: Name, body: CreateModelVersionRequest, backend: BackendDep
) -> ModelVersionModel:
    """Register the next version of the model."""
    found = backend.create_model_version(
        name,
        body.source,
        run_id=body.run_id,
        artifact_path=body.artifact_path,
        description=body.description,
        tags=body.tags,
        flavor=body.flavor,
        signature=body.signature,
        size_bytes=body.size_bytes,
        model_id=body.model_id,
        create_model=body.create_model,
    )
    return ModelVersionModel.from_entity(found)


@router.get("/{name}/latest", operation_id="get_latest_model_version")
def get_latest_model_version(name: Name, backend: BackendDep) -> ModelVersionModel:
    """The highest unarchived version."""
    return ModelVersionModel.from_entity(backend.get_latest_model_version(name))


@router.get("/{name}/versions/{version}", operation_id="get_model_version")
def get_model_version(name: Name, version: Version, backend: BackendDep) -> ModelVersionModel:
    """One version."""
    return ModelVersionModel.from_entity(backend.get_model_version(name, version))


@router.patch("/{name}/versions/{version}", operation_id="update_model_version")
def update_model_version(
    name: Name, version: Version, body: UpdateModelVersionRequest, backend: BackendDep
) -> ModelVersionModel:
    """Change a version's description or stage (``Archived`` retires it)."""
    found = backend.update_model_version(name, version, body.description, body.stage)
    return ModelVersionModel.from_entity(found)


@router.delete("/{name}/versions/{version}", status_code=204, operation_id="delete_model_version")
def delete_model_version(name: Name, version: Version, backend: BackendDep) -> None:
    """Delete a version (its aliases go with it, recorded)."""
    backend.delete_model_version(name, version)


@router.put(
    "/{name}/versions/{version}/tags/{key:path}",
    status_code=204,
    operation_id="set_model_version_tag",
)
def set_model_version_tag(
    name: Name, version: Version, key: str, body: SetTagRequest, backend: BackendDep
) -> None:
    """Set a version tag."""
    backend.set_model_version_tag(name, version, key, body.value)


@router.delete(
    "/{name}/versions/{version}/tags/{key:path}",
    status_code=204,
    operation_id="delete_model_version_tag",
)
def delete_model_version_tag(name: Name, version: Version, key: str, backend: BackendDep) -> None:
    """Remove a version tag."""
    backend.delete_model_version_tag(name, version, key)


@router.get("/{name}/aliases/{alias}", operation_id="get_model_version_by_alias")
def get_model_version_by_alias(name: Name, alias: Alias, backend: BackendDep) -> ModelVersionModel:
    """The version an alias points at."""
    return ModelVersionModel.from_entity(backend.get_model_version_by_alias(name, alias))


@router.put("/{name}/aliases/{alias}", operation_id="set_model_alias")
def set_model_alias(
    name: Name, alias: Alias, body: SetAliasRequest, backend: BackendDep
) -> AliasEventModel:
    """Point an alias at a version (ungated; ``promotions`` is the gated way)."""
    event = backend.set_model_alias(name, alias, body.version, body.reason)
    return AliasEventModel.from_entity(event)


@router.delete("/{name}/aliases/{alias}", status_code=204, operation_id="delete_model_alias")
def delete_model_alias(
    name: Name, alias: Alias, backend: BackendDep, reason: Annotated[str, Query()] = ""
) -> None:
    """Remove an alias."""
    backend.delete_model_alias(name, alias, reason)


@router.get("/{name}/alias-history", operation_id="get_alias_history")
def get_alias_history(
    name: Name, backend: BackendDep, alias: Annotated[str | None, Query()] = None
) -> AliasEventList:
    """Every recorded move of the model's aliases (or of one), oldest first."""
    events = backend.get_alias_history(name, alias)
    return AliasEventList(events=[AliasEventModel.from_entity(e) for e in events])


@router.post(
    "/{name}/versions/{version}/promotions", status_code=201, operation_id="record_promotion"
)
def record_promotion(
    name: Name, version: Version, body: RecordPromotionRequest, backend: BackendDep
) -> PromotionModel:
    """Store a gate verdict; the alias moves when it passed (or is forced, with a reason)."""
    found = backend.record_promotion(
        name,
        version,
        body.alias,
        passed=body.passed,
        checks=body.checks,
        forced=body.forced,
        reason=body.reason,
        policy=body.policy,
    )
    return PromotionModel.from_entity(found)


@router.get("/{name}/promotions", operation_id="list_promotions")
def list_promotions(
    name: Name, backend: BackendDep, version: Annotated[str | None, Query()] = None
) -> PromotionList:
    """The model's (or one version's) promotion verdicts."""
    found = backend.list_promotions(name, version)
    return PromotionList(promotions=[PromotionModel.from_entity(p) for p in found])


@router.post(
    "/{name}/versions/{version}/evaluations", status_code=201, operation_id="record_evaluation"
)
def record_evaluation(
    name: Name, version: Version, body: RecordEvaluationRequest, backend: BackendDep
) -> EvaluationModel:
    """Link an evaluation to a version."""
    found = backend.record_evaluation(
        name, version, body.result, body.run_id, body.dataset_name, body.dataset_digest
    )
    return EvaluationModel.from_entity(found)


@router.get("/{name}/versions/{version}/evaluations", operation_id="list_evaluations")
def list_evaluations(name: Name, version: Version, backend: BackendDep) -> EvaluationList:
    """A version's evaluations."""
    found = backend.list_evaluations(name, version)
    return EvaluationList(evaluations=[EvaluationModel.from_entity(e) for e in found])


@versions_router.get("", operation_id="search_model_versions")
def search_model_versions(
    backend: BackendDep,
    name: Annotated[str | None, Query()] = None,
    name_like: Annotated[str | None, Query()] = None,
    run_id: Annotated[str | None, Query()] = None,
    max_results: MaxResults = 100,
    page_token: str | None = None,
) -> ModelVersionPage:
    """Versions matching every given condition."""
    page = backend.search_model_versions(
        name, name_like, run_id, max_results=max_results, page_token=page_token
    )
    return ModelVersionPage(
        model_versions=[ModelVersionModel.from_entity(m) for m in page],
        next_page_token=page.next_page_token,
    )


@datasets_router.get("", operation_id="list_datasets")
def list_datasets(backend: BackendDep) -> DatasetList:
    """Registered evaluation datasets."""
    return DatasetList(datasets=[DatasetModel.from_entity(d) for d in backend.list_datasets()])


@datasets_router.get("/{name}", operation_id="get_dataset")
def get_dataset(name: str, backend: BackendDep) -> DatasetModel:
    """A registered evaluation dataset's record."""
    return DatasetModel.from_entity(backend.get_dataset(name))


@datasets_router.get("/{name}/content", operation_id="open_dataset", response_class=Response)
def open_dataset(name: str, backend: BackendDep) -> Response:
    """The dataset's Parquet bytes (verified against their digest before sending)."""
    record = backend.get_dataset(name)
    with backend.open_dataset(name) as reader:
        content = reader.read()
    headers = {DIGEST_HEADER: record.blob_digest}
    return Response(content, media_type="application/octet-stream", headers=headers)


@datasets_router.put("/{name}", operation_id="register_dataset", openapi_extra=BINARY_BODY)
async def register_dataset(
    name: str,
    request: Request,
    backend: BackendDep,
    digest: Annotated[str, Query(min_length=1, max_length=64)],
    rows: Annotated[int, Query(ge=0, lt=2**62)],
    columns: Annotated[str, Query(description="JSON list of column names.")],
    description: Annotated[str, Query()] = "",
) -> DatasetModel:
    """Store a named evaluation dataset (Parquet bytes in the body, streamed)."""
    try:
        names = json.loads(columns)
    except ValueError:
        raise InvalidArgument("columns must be a JSON list of strings") from None
    if not isinstance(names, list) or not all(isinstance(c, str) for c in names):
        raise InvalidArgument("columns must be a JSON list of strings")
    found = await run_in_threadpool(
        backend.register_dataset, name, request_body(request), digest, rows, names, description
    )
    return DatasetModel.from_entity(found)
