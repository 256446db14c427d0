"""Model URIs: ``models:/NAME/VERSION``, ``models:/NAME@ALIAS``, ``models:/NAME/latest``,
``runs:/RUN_ID/PATH`` and local folders, parsed and resolved to where the model's
files are."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import TYPE_CHECKING

from modelloop import validation as v
from modelloop.errors import InvalidArgument, NotFound

if TYPE_CHECKING:
    from modelloop.backends import Backend
    from modelloop.entities import ModelVersion

__all__ = ["ModelLocation", "ModelRef", "parse_model_uri", "resolve_model_uri", "runs_uri"]

_MODELS_RE = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>[^/@]+)|@(?P<alias>[^/@]+))/?$")
_RUNS_RE = re.compile(r"^runs:/(?P<run_id>[^/]+)(?:/(?P<path>.*))?$")


@dataclasses.dataclass(frozen=True, slots=True)
class ModelRef:
    """A parsed model URI: exactly one of the three forms is filled."""

    uri: str
    name: str | None = None
    version: int | None = None
    alias: str | None = None
    latest: bool = False
    run_id: str | None = None
    path: str | None = None
    local_path: Path | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ModelLocation:
    """Where a model's folder is: a run's artifact path, or a local folder; plus the
    registered version when the URI named one."""

    uri: str
    run_id: str | None = None
    artifact_path: str | None = None
    local_path: Path | None = None
    version: ModelVersion | None = None


def runs_uri(run_id: str, path: str) -> str:
    """``runs:/RUN_ID/PATH``."""
    return f"runs:/{run_id}/{path.strip('/')}"


def parse_model_uri(uri: str) -> ModelRef:
    """Parse a model URI; InvalidArgument naming the accepted forms otherwise."""
    if not isinstance(uri, str) or not uri.strip():
        raise InvalidArgument(f"model URI must be a non-empty string, got {uri!r:.60}")
    uri = uri.strip()
    if uri.startswith("models:"):
        m = _MODELS_RE.match(uri)
        if m is None:
            raise InvalidArgument(
                f"invalid model URI {uri!r}: expected models:/NAME/VERSION, "
                "models:/NAME@ALIAS or models:/NAME/latest"
            )
        version = m.group("version")
        if version is not None and version.lower() == "latest":
            return ModelRef(uri, name=m.group("name"), latest=True)
        if version is not None:
            from modelloop.store.registry import parse_version

            return ModelRef(uri, name=m.group("name"), version=parse_version(version))
        return ModelRef(uri, name=m.group("name"), alias=m.group("alias"))
    if uri.startswith("runs:"):
        m = _RUNS_RE.match(uri)
        if m is None or not m.group("path"):
            raise InvalidArgument(f"invalid model URI {uri!r}: expected runs:/RUN_ID/PATH")
        return ModelRef(uri, run_id=m.group("run_id"), path=v.check_artifact_path(m.group("path")))
    if uri.startswith("file://"):
        return ModelRef(uri, local_path=Path(uri.removeprefix("file://")))
    if "://" in uri or re.match(r"^[a-z][a-z0-9+.-]*:/", uri):
        raise InvalidArgument(
            f"unsupported model URI {uri!r}: use models:/NAME/VERSION, models:/NAME@ALIAS, "
            "runs:/RUN_ID/PATH or a local folder"
        )
    return ModelRef(uri, local_path=Path(uri).expanduser())


def resolve_model_uri(backend: Backend, uri: str) -> ModelLocation:
    """Resolve a URI to a run's artifact folder (looking the version up in the
    registry for ``models:/``) or a local folder."""
    ref = parse_model_uri(uri)
    if ref.local_path is not None:
        if not ref.local_path.is_dir():
            raise NotFound(f"model folder {str(ref.local_path)!r} does not exist")
        return ModelLocation(uri, local_path=ref.local_path)
    if ref.run_id is not None:
        return ModelLocation(uri, run_id=ref.run_id, artifact_path=ref.path)
    assert ref.name is not None
    if ref.alias is not None:
        mv = backend.get_model_version_by_alias(ref.name, ref.alias)
    elif ref.latest:
        mv = backend.get_latest_model_version(ref.name)
    else:
        assert ref.version is not None
        mv = backend.get_model_version(ref.name, ref.version)
    return version_location(mv, uri)


def version_location(mv: ModelVersion, uri: str | None = None) -> ModelLocation:
    """Where a registered version's files are."""
    uri = uri or mv.uri
    if mv.run_id is not None and mv.artifact_path is not None:
        return ModelLocation(uri, run_id=mv.run_id, artifact_path=mv.artifact_path, version=mv)
    source = parse_model_uri(mv.source) if not mv.source.startswith("models:") else None
    if source is not None and source.run_id is not None:
        return ModelLocation(uri, run_id=source.run_id, artifact_path=source.path, version=mv)
    if source is not None and source.local_path is not None:
        return ModelLocation(uri, local_path=source.local_path, version=mv)
    raise NotFound(
        f"model version {mv.name!r} version {mv.version} has source {mv.source!r}, "
        "whose files this store cannot locate"
    )
