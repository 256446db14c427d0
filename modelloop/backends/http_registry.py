"""The registry half of :class:`~modelloop.backends.http.HttpBackend`: the
registry operations of the Backend protocol over ``/api/v1``."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any, BinaryIO, TypeVar

import httpx
from pydantic import BaseModel

from modelloop.artifacts._io import verifying_reader
from modelloop.backends._http_io import url_path, url_segment, wire_request, wire_string
from modelloop.entities import (
    AliasEvent,
    EvaluationRecord,
    ModelVersion,
    Page,
    PromotionRecord,
    RegisteredDataset,
    RegisteredModel,
)
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
from modelloop.server.schemas import DIGEST_HEADER, SetTagRequest

__all__ = ["HttpRegistry"]

M = TypeVar("M", bound=BaseModel)


def _model(name: str) -> str:
    return f"/registered-models/{url_segment(name)}"


def _version(name: str, version: int | str) -> str:
    return f"{_model(name)}/versions/{url_segment(str(version))}"


def _params(**values: Any) -> dict[str, str]:
    return {k: str(val) for k, val in values.items() if val is not None}


class HttpRegistry:
    """Registry calls; :class:`HttpBackend` supplies ``_send`` and ``_call``."""

    def _send(
        self,
        method: str,
        path: str,
        *,
        body: BaseModel | None = None,
        params: dict[str, str] | None = None,
        content: Iterator[bytes] | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        raise NotImplementedError

    def _call(self, method: str, path: str, reply: type[M], **kwargs: Any) -> M:
        raise NotImplementedError

    # registered models --------------------------------------------------------

    def create_registered_model(
        self, name: str, description: str = "", tags: dict[str, str] | None = None
    ) -> RegisteredModel:
        """Create a registered model."""
        body = wire_request(
            CreateRegisteredModelRequest, name=name, description=description, tags=tags
        )
        return self._call("POST", "/registered-models", RegisteredModelModel, body=body).to_entity()

    def get_registered_model(self, name: str) -> RegisteredModel:
        """A registered model with its tags and aliases."""
        return self._call("GET", _model(name), RegisteredModelModel).to_entity()

    def search_registered_models(
        self,
        name_like: str | None = None,
        tags: dict[str, str] | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> Page[RegisteredModel]:
        """Registered models by name pattern (tags are filtered client-side)."""
        params = _params(name_like=name_like, max_results=max_results, page_token=page_token)
        page = self._call("GET", "/registered-models", RegisteredModelPage, params=params)
        found = [m.to_entity() for m in page.registered_models]
        if tags:
            found = [m for m in found if all(m.tags.get(k) == val for k, val in tags.items())]
        return Page(found, page.next_page_token)

    def update_registered_model(
        self,
        name: str,
        description: str | None = None,
        intended_use: str | None = None,
        limitations: str | None = None,
        policy: dict[str, Any] | None = None,
    ) -> RegisteredModel:
        """Change card fields or the promotion policy."""
        body = wire_request(
            UpdateRegisteredModelRequest,
            description=description,
            intended_use=intended_use,
            limitations=limitations,
            policy=policy,
        )
        return self._call("PATCH", _model(name), RegisteredModelModel, body=body).to_entity()

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        """Rename a registered model."""
        body = wire_request(RenameRegisteredModelRequest, new_name=new_name)
        path = f"{_model(name)}/rename"
        return self._call("POST", path, RegisteredModelModel, body=body).to_entity()

    def delete_registered_model(self, name: str) -> None:
        """Delete a registered model and its versions."""
        self._send("DELETE", _model(name))

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        """Set a registered model tag."""
        body = wire_request(SetTagRequest, value=wire_string(value))
        self._send("PUT", f"{_model(name)}/tags/{url_path(key)}", body=body)

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        """Remove a registered model tag."""
        self._send("DELETE", f"{_model(name)}/tags/{url_path(key)}")

    # versions and aliases ---------------------------------------------------------

    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        artifact_path: str | None = None,
        description: str = "",
        tags: dict[str, str] | None = None,
        flavor: str | None = None,
        signature: dict[str, Any] | None = None,
        size_bytes: int | None = None,
        model_id: str | None = None,
        create_model: bool = False,
    ) -> ModelVersion:
        """Register the next version of a model."""
        body = wire_request(
            CreateModelVersionRequest,
            source=source,
            run_id=run_id,
            artifact_path=artifact_path,
            description=description,
            tags=tags,
            flavor=flavor,
            signature=signature,
            size_bytes=size_bytes,
            model_id=model_id,
            create_model=create_model,
        )
        path = f"{_model(name)}/versions"
        return self._call("POST", path, ModelVersionModel, body=body).to_entity()

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        """One version."""
        return self._call("GET", _version(name, version), ModelVersionModel).to_entity()

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version an alias points at."""
        path = f"{_model(name)}/aliases/{url_segment(alias)}"
        return self._call("GET", path, ModelVersionModel).to_entity()

    def get_latest_model_version(self, name: str) -> ModelVersion:
        """The highest unarchived version."""
        return self._call("GET", f"{_model(name)}/latest", ModelVersionModel).to_entity()

    def search_model_versions(
        self,
        name: str | None = None,
        name_like: str | None = None,
        run_id: str | None = None,
        tags: dict[str, str] | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> Page[ModelVersion]:
        """Versions matching every given condition (tags filtered client-side)."""
        params = _params(
            name=name,
            name_like=name_like,
            run_id=run_id,
            max_results=max_results,
            page_token=page_token,
        )
        page = self._call("GET", "/model-versions", ModelVersionPage, params=params)
        found = [m.to_entity() for m in page.model_versions]
        if tags:
            found = [m for m in found if all(m.tags.get(k) == val for k, val in tags.items())]
        return Page(found, page.next_page_token)

    def update_model_version(
        self,
        name: str,
        version: int | str,
        description: str | None = None,
        stage: str | None = None,
    ) -> ModelVersion:
        """Change a version's description or stage."""
        body = wire_request(UpdateModelVersionRequest, description=description, stage=stage)
        return self._call(
            "PATCH", _version(name, version), ModelVersionModel, body=body
        ).to_entity()

    def delete_model_version(self, name: str, version: int | str) -> None:
        """Delete a version."""
        self._send("DELETE", _version(name, version))

    def set_model_version_tag(self, name: str, version: int | str, key: str, value: str) -> None:
        """Set a version tag."""
        body = wire_request(SetTagRequest, value=wire_string(value))
        self._send("PUT", f"{_version(name, version)}/tags/{url_path(key)}", body=body)

    def delete_model_version_tag(self, name: str, version: int | str, key: str) -> None:
        """Remove a version tag."""
        self._send("DELETE", f"{_version(name, version)}/tags/{url_path(key)}")

    def set_model_alias(
        self, name: str, alias: str, version: int | str, reason: str = ""
    ) -> AliasEvent:
        """Point an alias at a version; the move is recorded."""
        from modelloop.store.registry import check_alias, parse_version

        check_alias(alias)
        body = wire_request(SetAliasRequest, version=parse_version(version), reason=reason)
        path = f"{_model(name)}/aliases/{url_segment(alias)}"
        return self._call("PUT", path, AliasEventModel, body=body).to_entity()

    def delete_model_alias(self, name: str, alias: str, reason: str = "") -> None:
        """Remove an alias; recorded."""
        path = f"{_model(name)}/aliases/{url_segment(alias)}"
        self._send("DELETE", path, params=_params(reason=reason or None))

    def get_alias_history(self, name: str, alias: str | None = None) -> list[AliasEvent]:
        """Every recorded alias move, oldest first."""
        path = f"{_model(name)}/alias-history"
        found = self._call("GET", path, AliasEventList, params=_params(alias=alias))
        return [e.to_entity() for e in found.events]

    # promotions, evaluations, datasets ----------------------------------------------

    def record_promotion(
        self,
        name: str,
        version: int | str,
        alias: str,
        passed: bool,
        checks: list[dict[str, Any]],
        forced: bool = False,
        reason: str = "",
        policy: dict[str, Any] | None = None,
    ) -> PromotionRecord:
        """Store a gate verdict; the alias moves when it passed or was forced."""
        body = wire_request(
            RecordPromotionRequest,
            alias=alias,
            passed=passed,
            checks=checks,
            forced=forced,
            reason=reason,
            policy=policy,
        )
        path = f"{_version(name, version)}/promotions"
        return self._call("POST", path, PromotionModel, body=body).to_entity()

    def list_promotions(self, name: str, version: int | str | None = None) -> list[PromotionRecord]:
        """Promotion verdicts, oldest first."""
        params = _params(version=version)
        found = self._call("GET", f"{_model(name)}/promotions", PromotionList, params=params)
        return [p.to_entity() for p in found.promotions]

    def record_evaluation(
        self,
        name: str,
        version: int | str,
        result: dict[str, Any],
        run_id: str | None = None,
        dataset_name: str | None = None,
        dataset_digest: str | None = None,
    ) -> EvaluationRecord:
        """Link an evaluation to a version."""
        body = wire_request(
            RecordEvaluationRequest,
            result=result,
            run_id=run_id,
            dataset_name=dataset_name,
            dataset_digest=dataset_digest,
        )
        path = f"{_version(name, version)}/evaluations"
        return self._call("POST", path, EvaluationModel, body=body).to_entity()

    def list_evaluations(self, name: str, version: int | str) -> list[EvaluationRecord]:
        """A version's evaluations."""
        path = f"{_version(name, version)}/evaluations"
        return [e.to_entity() for e in self._call("GET", path, EvaluationList).evaluations]

    def register_dataset(
        self,
        name: str,
        stream: BinaryIO,
        digest: str,
        rows: int,
        columns: list[str],
        description: str = "",
    ) -> RegisteredDataset:
        """Upload a named evaluation dataset (Parquet bytes, streamed)."""

        def chunks() -> Iterator[bytes]:
            while block := stream.read(1 << 20):
                yield block

        params = _params(
            digest=digest, rows=rows, columns=json.dumps(columns), description=description
        )
        path = f"/datasets/{url_segment(name)}"
        return self._call("PUT", path, DatasetModel, params=params, content=chunks()).to_entity()

    def get_dataset(self, name: str) -> RegisteredDataset:
        """A registered evaluation dataset's record."""
        return self._call("GET", f"/datasets/{url_segment(name)}", DatasetModel).to_entity()

    def list_datasets(self) -> list[RegisteredDataset]:
        """Every registered evaluation dataset."""
        return [d.to_entity() for d in self._call("GET", "/datasets", DatasetList).datasets]

    def open_dataset(self, name: str) -> BinaryIO:
        """A verified reader of a registered dataset's Parquet bytes."""
        response = self._send("GET", f"/datasets/{url_segment(name)}/content")
        digest = response.headers.get(DIGEST_HEADER, "")
        return verifying_reader(io.BytesIO(response.content), digest, "from the server")
