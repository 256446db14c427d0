"""The registry half of :class:`~modelloop.backends.LocalBackend`: registered
models, versions, tags, aliases, promotion verdicts, evaluations and registered
evaluation datasets. Each method is one transaction that carries its audit row."""

from __future__ import annotations

import io
from typing import Any, BinaryIO

from modelloop import validation as v
from modelloop.backends.local_artifacts import LocalStoreBase
from modelloop.entities import (
    AliasEvent,
    EvaluationRecord,
    ModelVersion,
    Page,
    PromotionRecord,
    RegisteredDataset,
    RegisteredModel,
)
from modelloop.errors import InvalidArgument
from modelloop.store import audit, registry, registry_records
from modelloop.store._util import now_ms

__all__ = ["LocalRegistry", "decode_offset", "encode_offset"]

_MAX_PAGE = 10_000


def encode_offset(offset: int) -> str:
    """The page token of a registry search (an offset)."""
    return str(offset)


def decode_offset(token: str | None) -> int:
    """The offset a registry search page token stands for."""
    if not token:
        return 0
    try:
        value = int(token)
    except ValueError:
        raise InvalidArgument(f"invalid page token {token!r}") from None
    if value < 0:
        raise InvalidArgument(f"invalid page token {token!r}")
    return value


def _page_size(max_results: Any) -> int:
    value = v.check_int("max_results", max_results)
    if not 1 <= value <= _MAX_PAGE:
        raise InvalidArgument(f"max_results must be between 1 and {_MAX_PAGE}, got {value}")
    return value


def _text(value: str | None, what: str) -> str | None:
    return None if value is None else v.check_text(value, what)


class LocalRegistry(LocalStoreBase):
    """Registry operations over the metadata store (and the blob store for datasets)."""

    # registered models ------------------------------------------------------------

    def create_registered_model(
        self, name: str, description: str = "", tags: dict[str, str] | None = None
    ) -> RegisteredModel:
        """Create a registered model; AlreadyExists when the name is taken."""
        registry.check_model_name(name)
        desc = _text(description, "description") or ""
        clean = v.check_tags(tags)
        return self._write(
            lambda c: registry.create_model(c, name, desc, clean, audit.current_actor()),
            "model.create",
            "model",
            name,
        )

    def get_registered_model(self, name: str) -> RegisteredModel:
        """A registered model with its tags and aliases."""
        return self._read(lambda c: registry.get_model(c, name))

    def search_registered_models(
        self,
        name_like: str | None = None,
        tags: dict[str, str] | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> Page[RegisteredModel]:
        """Registered models whose name matches a SQL LIKE pattern and carry the tags."""
        size, offset = _page_size(max_results), decode_offset(page_token)
        found, more = self._read(lambda c: registry.search_models(c, name_like, tags, size, offset))
        return Page(found, encode_offset(offset + size) if more else None)

    def update_registered_model(
        self,
        name: str,
        description: str | None = None,
        intended_use: str | None = None,
        limitations: str | None = None,
        policy: dict[str, Any] | None = None,
    ) -> RegisteredModel:
        """Change the model's card fields or its promotion policy."""
        fields = {
            "description": _text(description, "description"),
            "intended_use": _text(intended_use, "intended_use"),
            "limitations": _text(limitations, "limitations"),
            "policy": policy,
        }
        if policy is not None:
            from modelloop.registry.gates import Policy

            fields["policy"] = Policy.from_dict(policy).to_dict()
        changed = sorted(k for k, val in fields.items() if val is not None)
        return self._write(
            lambda c: registry.update_model(c, name, **fields),
            "model.update",
            "model",
            name,
            {"fields": changed},
        )

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        """Rename a registered model (versions, aliases and history follow)."""
        registry.check_model_name(new_name)
        return self._write(
            lambda c: registry.rename_model(c, name, new_name),
            "model.rename",
            "model",
            name,
            {"new_name": new_name},
        )

    def delete_registered_model(self, name: str) -> None:
        """Delete a registered model and all its versions."""
        self._write(lambda c: registry.delete_model(c, name), "model.delete", "model", name)

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        """Set a registered model tag."""
        clean = v.check_tags({key: value})
        self._write(
            lambda c: registry.set_model_tags(c, name, clean),
            "model.set_tag",
            "model",
            name,
            {"key": key},
        )

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        """Remove a registered model tag."""
        self._write(
            lambda c: registry.delete_model_tag(c, name, key),
            "model.delete_tag",
            "model",
            name,
            {"key": key},
        )

    # versions ------------------------------------------------------------------------

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
        """Register a new version (numbered without races); with ``create_model`` the
        registered model is created first when it does not exist."""
        registry.check_model_name(name)
        src = _text(source, "source")
        if not src:
            raise InvalidArgument("model version source must be a non-empty string")
        desc = _text(description, "description") or ""
        clean = v.check_tags(tags)
        if size_bytes is not None:
            size_bytes = v.check_int("size_bytes", size_bytes)

        def register(c: Any) -> ModelVersion:
            actor = audit.current_actor()
            if create_model and not registry.model_exists(c, name):
                registry.create_model(c, name, user=actor)
                audit.record(c, "model.create", "model", name)
            return registry.create_version(
                c,
                name,
                src,
                run_id=run_id,
                artifact_path=artifact_path,
                model_id=model_id,
                description=desc,
                tags=clean,
                user=actor,
                flavor=flavor,
                signature=signature,
                size_bytes=size_bytes,
            )

        return self._write(
            register,
            "model_version.create",
            "model_version",
            lambda mv: f"{mv.name}/{mv.version}",
            {"source": src, "run_id": run_id},
        )

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        """One version."""
        number = registry.parse_version(version)
        return self._read(lambda c: registry.get_version(c, name, number))

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version an alias points at."""
        return self._read(lambda c: registry.version_by_alias(c, name, alias))

    def get_latest_model_version(self, name: str) -> ModelVersion:
        """The highest version that is not archived."""
        return self._read(lambda c: registry.latest_version(c, name))

    def search_model_versions(
        self,
        name: str | None = None,
        name_like: str | None = None,
        run_id: str | None = None,
        tags: dict[str, str] | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> Page[ModelVersion]:
        """Versions matching every given condition (by model name, newest first)."""
        size, offset = _page_size(max_results), decode_offset(page_token)
        found, more = self._read(
            lambda c: registry.search_versions(
                c,
                name=name,
                name_like=name_like,
                run_id=run_id,
                tags=tags,
                max_results=size,
                offset=offset,
            )
        )
        return Page(found, encode_offset(offset + size) if more else None)

    def update_model_version(
        self,
        name: str,
        version: int | str,
        description: str | None = None,
        stage: str | None = None,
    ) -> ModelVersion:
        """Change a version's description, or archive it (stage ``Archived``)."""
        number = registry.parse_version(version)
        desc = _text(description, "description")
        clean_stage = registry.check_stage(stage) if stage is not None else None
        return self._write(
            lambda c: registry.update_version(c, name, number, description=desc, stage=clean_stage),
            "model_version.update",
            "model_version",
            f"{name}/{number}",
            {"stage": clean_stage} if clean_stage else None,
        )

    def delete_model_version(self, name: str, version: int | str) -> None:
        """Delete a version (aliases pointing at it go with it, recorded)."""
        number = registry.parse_version(version)
        self._write(
            lambda c: registry.delete_version(c, name, number, audit.current_actor()),
            "model_version.delete",
            "model_version",
            f"{name}/{number}",
        )

    def set_model_version_tag(self, name: str, version: int | str, key: str, value: str) -> None:
        """Set a version tag."""
        number = registry.parse_version(version)
        clean = v.check_tags({key: value})
        self._write(
            lambda c: registry.set_version_tags(c, name, number, clean),
            "model_version.set_tag",
            "model_version",
            f"{name}/{number}",
            {"key": key},
        )

    def delete_model_version_tag(self, name: str, version: int | str, key: str) -> None:
        """Remove a version tag."""
        number = registry.parse_version(version)
        self._write(
            lambda c: registry.delete_version_tag(c, name, number, key),
            "model_version.delete_tag",
            "model_version",
            f"{name}/{number}",
            {"key": key},
        )

    # aliases ---------------------------------------------------------------------------

    def set_model_alias(
        self, name: str, alias: str, version: int | str, reason: str = ""
    ) -> AliasEvent:
        """Point an alias at a version (create or move it), recorded with the reason."""
        registry.check_alias(alias)
        number = registry.parse_version(version)
        why = _text(reason, "reason") or ""
        return self._write(
            lambda c: registry.set_alias(c, name, alias, number, audit.current_actor(), why),
            "model.set_alias",
            "model",
            name,
            {"alias": alias, "version": number, "reason": why},
        )

    def delete_model_alias(self, name: str, alias: str, reason: str = "") -> None:
        """Remove an alias, recorded with the reason."""
        why = _text(reason, "reason") or ""
        self._write(
            lambda c: registry.delete_alias(c, name, alias, audit.current_actor(), why),
            "model.delete_alias",
            "model",
            name,
            {"alias": alias, "reason": why},
        )

    def get_alias_history(self, name: str, alias: str | None = None) -> list[AliasEvent]:
        """Every recorded move of the model's aliases (or one alias), oldest first."""
        return self._read(lambda c: registry.alias_history(c, name, alias))

    # promotions and evaluations --------------------------------------------------------

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
        """Store a gate verdict and, when it passed (or ``forced`` with a reason), move
        the alias: verdict, move and audit row commit together."""
        registry.check_alias(alias)
        number = registry.parse_version(version)
        why = _text(reason, "reason") or ""
        if forced and not why.strip():
            raise InvalidArgument("a forced promotion needs a reason")
        if not isinstance(passed, bool) or not isinstance(forced, bool):
            raise InvalidArgument("passed and forced must be booleans")
        if not isinstance(checks, list) or not all(isinstance(c, dict) for c in checks):
            raise InvalidArgument("checks must be a list of objects")
        return self._write(
            lambda c: registry_records.record_promotion(
                c,
                name,
                number,
                alias,
                passed=passed,
                forced=forced,
                reason=why,
                checks=checks,
                policy=policy,
                actor=audit.current_actor(),
            ),
            "model.promote",
            "model_version",
            f"{name}/{number}",
            {"alias": alias, "passed": passed, "forced": forced, "reason": why},
        )

    def list_promotions(self, name: str, version: int | str | None = None) -> list[PromotionRecord]:
        """A model's (or one version's) promotion verdicts, oldest first."""
        number = None if version is None else registry.parse_version(version)
        return self._read(lambda c: registry_records.list_promotions(c, name, number))

    def record_evaluation(
        self,
        name: str,
        version: int | str,
        result: dict[str, Any],
        run_id: str | None = None,
        dataset_name: str | None = None,
        dataset_digest: str | None = None,
    ) -> EvaluationRecord:
        """Link an evaluation's results (and its run) to a version."""
        number = registry.parse_version(version)
        if not isinstance(result, dict):
            raise InvalidArgument("evaluation result must be an object")
        return self._write(
            lambda c: registry_records.record_evaluation(
                c,
                name,
                number,
                run_id=run_id,
                dataset_name=dataset_name,
                dataset_digest=dataset_digest,
                result=result,
                actor=audit.current_actor(),
            ),
            "model_version.evaluate",
            "model_version",
            f"{name}/{number}",
            {"run_id": run_id, "dataset": dataset_name},
        )

    def list_evaluations(self, name: str, version: int | str) -> list[EvaluationRecord]:
        """A version's evaluations, oldest first."""
        number = registry.parse_version(version)
        return self._read(lambda c: registry_records.list_evaluations(c, name, number))

    # evaluation datasets ---------------------------------------------------------------

    def register_dataset(
        self,
        name: str,
        stream: BinaryIO,
        digest: str,
        rows: int,
        columns: list[str],
        description: str = "",
    ) -> RegisteredDataset:
        """Store a named evaluation dataset (Parquet bytes) in the blob store."""
        v.check_name(name, "dataset name", 256)
        if isinstance(stream, io.BytesIO):
            info = self.blobs.put_bytes(stream.getvalue())
        else:
            info = self.blobs.put_stream(stream)
        record = RegisteredDataset(
            name=name,
            digest=digest,
            blob_digest=info.digest,
            rows=v.check_int("rows", rows),
            columns=[str(c) for c in columns],
            created_time=now_ms(),
            actor=audit.current_actor(),
            description=_text(description, "description") or "",
        )
        return self._write(
            lambda c: registry_records.put_dataset(c, record),
            "dataset.register",
            "dataset",
            name,
            {"digest": digest, "rows": record.rows},
        )

    def get_dataset(self, name: str) -> RegisteredDataset:
        """A registered evaluation dataset's record."""
        return self._read(lambda c: registry_records.get_dataset(c, name))

    def list_datasets(self) -> list[RegisteredDataset]:
        """Every registered evaluation dataset."""
        return self._read(registry_records.list_datasets)

    def open_dataset(self, name: str) -> BinaryIO:
        """A verified reader of a registered dataset's Parquet bytes."""
        record = self.get_dataset(name)
        return self.blobs.open(record.blob_digest)
