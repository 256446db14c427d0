"""The model half of :class:`~modelloop.Client`: log, register, load and look up
models, aliases and evaluation datasets. Promotion and evaluation are in
:mod:`modelloop.registry.promotion`."""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from modelloop.entities import AliasEvent, ModelVersion, Page, RegisteredDataset, RegisteredModel
from modelloop.errors import InvalidArgument, NotFound
from modelloop.registry.uris import ModelLocation, resolve_model_uri, runs_uri

if TYPE_CHECKING:
    import pandas as pd

    from modelloop.backends import Backend
    from modelloop.models import LoadedModel, ModelManifest
    from modelloop.settings import Settings

__all__ = ["LOGGED_MODELS_TAG", "ModelInfo", "RegistryMixin"]

#: Run tag listing the models logged in the run (JSON list of {path, flavor}).
LOGGED_MODELS_TAG = "modelloop.logged_models"
MANIFEST_FILE = "MODEL.yaml"
MLFLOW_MANIFEST_FILE = "MLmodel"


@dataclasses.dataclass(frozen=True, slots=True)
class ModelInfo:
    """What :meth:`RegistryMixin.log_model` stored: the model's URI, its run and
    folder, its manifest, and the registered version when one was created."""

    model_uri: str
    run_id: str
    artifact_path: str
    manifest: ModelManifest
    version: ModelVersion | None = None


class RegistryMixin:
    """Model and registry operations of :class:`~modelloop.Client`."""

    settings: Settings
    _backend: Backend

    # packaging ----------------------------------------------------------------------

    def log_model(
        self,
        run_id: str,
        model: Any,
        name: str,
        *,
        input_example: Any = None,
        signature: Any = None,
        flavor: str | None = None,
        requirements: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        registered_model_name: str | None = None,
    ) -> ModelInfo:
        """Package ``model`` (manifest, serialised model, signature, input example,
        requirements) into the run's artifacts under ``name``; optionally register it."""
        from modelloop import validation as v
        from modelloop.models import save_model

        path = v.check_artifact_path(name)
        run = self._backend.get_run(run_id)
        with tempfile.TemporaryDirectory(prefix="modelloop-model-") as tmp:
            folder = Path(tmp) / "model"
            manifest = save_model(
                model,
                folder,
                input_example=input_example,
                signature=signature,
                flavor=flavor,
                requirements=requirements,
                metadata=metadata,
            )
            for file in sorted(p for p in folder.rglob("*") if p.is_file()):
                with open(file, "rb") as fh:
                    dest = f"{path}/{file.relative_to(folder).as_posix()}"
                    self._backend.upload_artifact(run_id, dest, fh)
        logged = json.loads(run.tags.get(LOGGED_MODELS_TAG, "[]"))
        logged = [m for m in logged if m.get("path") != path]
        logged.append({"path": path, "flavor": manifest.flavor})
        self._backend.log_batch(run_id, tags={LOGGED_MODELS_TAG: json.dumps(logged)})
        version = None
        if registered_model_name is not None:
            version = self.register_model(runs_uri(run_id, path), registered_model_name)
        return ModelInfo(runs_uri(run_id, path), run_id, path, manifest, version)

    @contextmanager
    def _model_folder(self, location: ModelLocation) -> Iterator[Path]:
        if location.local_path is not None:
            yield location.local_path
            return
        assert location.run_id is not None
        tmp = Path(tempfile.mkdtemp(prefix="modelloop-load-"))
        try:
            yield self._backend.download_artifacts(location.run_id, location.artifact_path, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def download_model(self, model_uri: str, dst_path: str | Path) -> Path:
        """Copy a model's folder to ``dst_path``; returns the local folder."""
        location = resolve_model_uri(self._backend, model_uri)
        dest = Path(dst_path)
        if location.local_path is not None:
            shutil.copytree(location.local_path, dest, dirs_exist_ok=True)
            return dest
        assert location.run_id is not None
        return self._backend.download_artifacts(location.run_id, location.artifact_path, dest)

    def load_model(self, model_uri: str, *, trusted: bool | None = None) -> LoadedModel:
        """Load a model from any model URI; its ``predict`` enforces the signature.

        Formats that unpickle (plain Python models, MLflow's cloudpickle models) load
        only with ``trusted=True`` or the ``trust_pickled_models`` setting."""
        from modelloop.models import load_model_dir

        trust = self.settings.trust_pickled_models if trusted is None else trusted
        location = resolve_model_uri(self._backend, model_uri)
        with self._model_folder(location) as folder:
            return load_model_dir(folder, trusted=trust)

    def read_model_manifest(self, model_uri: str) -> ModelManifest:
        """A model's manifest (modelloop's ``MODEL.yaml`` or MLflow's ``MLmodel``)
        without loading the model."""
        location = resolve_model_uri(self._backend, model_uri)
        return self._manifest_at(location)

    def _manifest_at(self, location: ModelLocation) -> ModelManifest:
        from modelloop.models import ModelManifest
        from modelloop.models.mlflow_format import manifest_from_mlmodel

        if location.local_path is not None:
            own = location.local_path / MANIFEST_FILE
            if own.is_file():
                return ModelManifest.from_dict(yaml.safe_load(own.read_text()))
            mlflow_file = location.local_path / MLFLOW_MANIFEST_FILE
            if mlflow_file.is_file():
                return manifest_from_mlmodel(location.local_path)
            raise NotFound(f"no model in folder {str(location.local_path)!r}")
        assert location.run_id is not None
        assert location.artifact_path is not None
        for file, parse in (
            (MANIFEST_FILE, None),
            (MLFLOW_MANIFEST_FILE, "mlflow"),
        ):
            try:
                with self._backend.open_artifact(
                    location.run_id, f"{location.artifact_path}/{file}"
                ) as fh:
                    text = fh.read().decode()
            except NotFound:
                continue
            if parse is None:
                return ModelManifest.from_dict(yaml.safe_load(text))
            with self._model_folder(location) as folder:
                return manifest_from_mlmodel(folder)
        raise NotFound(
            f"no model at {runs_uri(location.run_id, location.artifact_path)} "
            f"(neither {MANIFEST_FILE} nor {MLFLOW_MANIFEST_FILE} is there)"
        )

    # registry -------------------------------------------------------------------------

    def register_model(
        self,
        model_uri: str,
        name: str,
        *,
        description: str = "",
        tags: dict[str, str] | None = None,
    ) -> ModelVersion:
        """Register the model at ``model_uri`` (``runs:/RUN_ID/PATH``, or another
        version's ``models:/`` URI) as the next version of ``name``, creating the
        registered model if needed. Flavor, signature and size come from its manifest."""
        location = resolve_model_uri(self._backend, model_uri)
        if location.run_id is None:
            raise InvalidArgument(
                f"cannot register {model_uri!r}: log the model to a run first "
                "(modelloop.log_model) and register runs:/RUN_ID/PATH"
            )
        manifest = self._manifest_at(location)
        return self._backend.create_model_version(
            name,
            runs_uri(location.run_id, location.artifact_path or ""),
            run_id=location.run_id,
            artifact_path=location.artifact_path,
            description=description,
            tags=tags,
            flavor=manifest.flavor,
            signature=manifest.signature.to_dict() if manifest.signature is not None else None,
            size_bytes=manifest.size_bytes,
            create_model=True,
        )

    def create_registered_model(
        self, name: str, description: str = "", tags: dict[str, str] | None = None
    ) -> RegisteredModel:
        """Create a registered model (``register_model`` does it implicitly)."""
        return self._backend.create_registered_model(name, description, tags)

    def get_registered_model(self, name: str) -> RegisteredModel:
        """A registered model with its tags and aliases."""
        return self._backend.get_registered_model(name)

    def search_registered_models(
        self, name_like: str | None = None, max_results: int = 100, page_token: str | None = None
    ) -> Page[RegisteredModel]:
        """Registered models whose name matches a SQL LIKE pattern (``%`` wildcard)."""
        return self._backend.search_registered_models(
            name_like, max_results=max_results, page_token=page_token
        )

    def update_registered_model(
        self,
        name: str,
        *,
        description: str | None = None,
        intended_use: str | None = None,
        limitations: str | None = None,
    ) -> RegisteredModel:
        """Edit the model card's free-text fields."""
        return self._backend.update_registered_model(
            name, description=description, intended_use=intended_use, limitations=limitations
        )

    def delete_registered_model(self, name: str) -> None:
        """Delete a registered model with all its versions."""
        self._backend.delete_registered_model(name)

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        """One version of a registered model."""
        return self._backend.get_model_version(name, version)

    def search_model_versions(
        self,
        name: str | None = None,
        run_id: str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> Page[ModelVersion]:
        """Versions of a model (or made by a run), newest first."""
        return self._backend.search_model_versions(
            name, run_id=run_id, max_results=max_results, page_token=page_token
        )

    def set_model_version_tag(self, name: str, version: int | str, key: str, value: Any) -> None:
        """Set a version tag."""
        self._backend.set_model_version_tag(name, version, key, str(value))

    def archive_model_version(self, name: str, version: int | str) -> ModelVersion:
        """Retire a version without deleting it (``models:/NAME/latest`` skips it)."""
        return self._backend.update_model_version(name, version, stage="Archived")

    def delete_model_version(self, name: str, version: int | str) -> None:
        """Delete a version (its aliases are removed, recorded)."""
        self._backend.delete_model_version(name, version)

    def set_model_alias(
        self, name: str, alias: str, version: int | str, reason: str = ""
    ) -> AliasEvent:
        """Point an alias at a version without gates (recorded with ``reason``);
        :meth:`promote` is the gated way."""
        return self._backend.set_model_alias(name, alias, version, reason)

    def delete_model_alias(self, name: str, alias: str, reason: str = "") -> None:
        """Remove an alias."""
        self._backend.delete_model_alias(name, alias, reason)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version an alias points at."""
        return self._backend.get_model_version_by_alias(name, alias)

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasEvent]:
        """Every move of the model's aliases (or one alias), oldest first."""
        return self._backend.get_alias_history(name, alias)

    def alias_at(self, name: str, alias: str, when: datetime | int) -> int | None:
        """Which version held ``alias`` at ``when`` (a datetime or epoch milliseconds);
        None when the alias was unset then."""
        ms = int(when.timestamp() * 1000) if isinstance(when, datetime) else int(when)
        holder: int | None = None
        for event in self._backend.get_alias_history(name, alias):
            if event.time > ms:
                break
            holder = event.version
        return holder

    # evaluation datasets ----------------------------------------------------------------

    def register_dataset(
        self, name: str, data: pd.DataFrame, description: str = ""
    ) -> RegisteredDataset:
        """Keep a DataFrame as a named evaluation dataset (Parquet in the artifact
        store), so promotion gates re-score every model on exactly these rows."""
        import pandas as pd

        from modelloop.tracking.datasets import fingerprint

        if not isinstance(data, pd.DataFrame):
            raise InvalidArgument("an evaluation dataset must be a pandas DataFrame")
        buffer = io.BytesIO()
        data.to_parquet(buffer, index=False)
        buffer.seek(0)
        digest = fingerprint(data, name=name).digest
        return self._backend.register_dataset(
            name, buffer, digest, len(data), [str(c) for c in data.columns], description
        )

    def load_dataset(self, name: str) -> pd.DataFrame:
        """A registered evaluation dataset as a DataFrame."""
        import pandas as pd

        with self._backend.open_dataset(name) as fh:
            return pd.read_parquet(io.BytesIO(fh.read()))
