"""``MODEL.yaml``: the manifest that describes a saved model directory."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from modelloop.errors import DataCorrupted, InvalidArgument
from modelloop.models.signature import Signature

__all__ = ["FORMAT_VERSION", "MANIFEST_FILE", "ModelManifest", "directory_size"]

MANIFEST_FILE = "MODEL.yaml"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ModelManifest:
    """Everything needed to load and call a saved model, as written to ``MODEL.yaml``.

    ``source_format`` is ``"modelloop"`` for directories written by :func:`save_model`
    and ``"mlflow"`` for MLflow model directories read through ``load_model_dir``.
    """

    format_version: int
    flavor: str
    flavor_config: dict[str, Any]
    signature: Signature | None
    input_example_file: str | None
    requirements: list[str]
    python_version: str
    created_at: str
    size_bytes: int
    metadata: dict[str, Any] = field(default_factory=dict)
    source_format: str = "modelloop"

    def to_dict(self) -> dict[str, Any]:
        """A YAML/JSON-able dict (the signature as :meth:`Signature.to_dict`)."""
        return {
            "format_version": self.format_version,
            "flavor": self.flavor,
            "flavor_config": dict(self.flavor_config),
            "signature": None if self.signature is None else self.signature.to_dict(),
            "input_example_file": self.input_example_file,
            "requirements": list(self.requirements),
            "python_version": self.python_version,
            "created_at": self.created_at,
            "size_bytes": self.size_bytes,
            "metadata": dict(self.metadata),
            "source_format": self.source_format,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelManifest:
        """Inverse of :meth:`to_dict`; rejects a newer format version it cannot read."""
        try:
            version = int(data["format_version"])
            if version > FORMAT_VERSION:
                raise InvalidArgument(
                    f"model format version {version} is newer than this modelloop reads "
                    f"({FORMAT_VERSION}); upgrade modelloop"
                )
            signature = data.get("signature")
            return cls(
                format_version=version,
                flavor=str(data["flavor"]),
                flavor_config=dict(data.get("flavor_config") or {}),
                signature=None if signature is None else Signature.from_dict(signature),
                input_example_file=data.get("input_example_file"),
                requirements=[str(r) for r in data.get("requirements") or []],
                python_version=str(data.get("python_version", "")),
                created_at=str(data.get("created_at", "")),
                size_bytes=int(data.get("size_bytes", 0)),
                metadata=dict(data.get("metadata") or {}),
                source_format=str(data.get("source_format", "modelloop")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataCorrupted(f"malformed model manifest: {exc!r}") from exc

    def write(self, directory: Path) -> None:
        """Write ``MODEL.yaml`` into ``directory``."""
        text = yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)
        (directory / MANIFEST_FILE).write_text(text, encoding="utf-8")

    @classmethod
    def read(cls, directory: Path) -> ModelManifest:
        """Read ``MODEL.yaml`` from ``directory`` (safe YAML: no object construction)."""
        try:
            data = yaml.safe_load((directory / MANIFEST_FILE).read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise DataCorrupted(f"{MANIFEST_FILE} is not valid YAML: {exc}") from exc
        if not isinstance(data, Mapping):
            raise DataCorrupted(f"{MANIFEST_FILE} does not hold a mapping")
        return cls.from_dict(data)


def directory_size(directory: Path) -> int:
    """Total bytes of the regular files below ``directory``."""
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())
