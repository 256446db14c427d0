"""The settings table.

Every setting has a name, a type, a default and a help text. Values come from,
highest precedence first: ``MODELLOOP_<NAME>`` environment variables, a TOML
config file (``MODELLOOP_CONFIG``, else ``./modelloop.toml`` when present), and
the defaults below. Objects receive a :class:`Settings`; nothing deep inside the
package reads ``os.environ``.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelloop.errors import InvalidArgument

__all__ = ["Settings", "load_settings", "settings_table"]

DEFAULT_HOME = ".modelloop"
ENV_PREFIX = "MODELLOOP_"
CONFIG_FILE_NAME = "modelloop.toml"


def _setting(default: Any, help: str, *, secret: bool = False) -> Any:
    return dataclasses.field(default=default, metadata={"help": help, "secret": secret})


@dataclasses.dataclass(frozen=True)
class Settings:
    """Typed, immutable settings. Build one with :func:`load_settings`."""

    tracking_uri: str = _setting(
        DEFAULT_HOME,
        "Where runs are stored: a folder (SQLite file and artifacts inside), an "
        "sqlite:/// or postgresql:// URL, or an http(s):// server.",
    )
    artifacts_uri: str = _setting(
        "",
        "Artifact store root: a folder or an fsspec URI (s3://, gs://, memory://). "
        "Empty: 'artifacts' beside the SQLite file, or ./.modelloop/artifacts.",
    )
    sqlite_busy_timeout: float = _setting(
        60.0, "Seconds a SQLite writer waits for the lock before giving up."
    )
    metric_buffer_size: int = _setting(
        10_000, "Buffered metric points that trigger a write to the store."
    )
    metric_flush_interval: float = _setting(
        5.0, "Seconds after which buffered metric points are written on the next log call."
    )
    capture_git: bool = _setting(True, "Record git commit, branch and dirty diff on each run.")
    capture_environment: bool = _setting(
        True, "Record Python version, installed packages, command line, host and user."
    )
    gc_grace_seconds: int = _setting(
        3600, "Blobs younger than this are never removed by gc (they may be mid-write)."
    )
    trust_pickled_models: bool = _setting(
        False,
        "Load models whose format needs pickle (plain Python models, some estimators). "
        "Unpickling runs arbitrary code: enable only for models from a source you trust.",
    )
    http_token: str = _setting("", "Bearer token sent to an http(s) tracking server.", secret=True)

    def __repr__(self) -> str:
        parts = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            shown = "'***'" if f.metadata["secret"] and value else repr(value)
            parts.append(f"{f.name}={shown}")
        return f"Settings({', '.join(parts)})"

    def replace(self, **changes: Any) -> Settings:
        """A copy with some settings changed (values are converted and checked)."""
        return _build({**dataclasses.asdict(self), **changes}, source="argument")


def settings_table() -> list[tuple[str, str, Any, str]]:
    """Rows of (name, type, default, help) for every setting, for docs and ``--help``."""
    rows = []
    for f in dataclasses.fields(Settings):
        rows.append((f.name, _type_name(f), f.default, f.metadata["help"]))
    return rows


def _type_name(f: dataclasses.Field[Any]) -> str:
    return f.type if isinstance(f.type, str) else f.type.__name__


def _convert(name: str, type_name: str, raw: Any, source: str) -> Any:
    try:
        if type_name == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if type_name == "int":
            if isinstance(raw, bool):
                raise ValueError(raw)
            return int(raw)
        if type_name == "float":
            if isinstance(raw, bool):
                raise ValueError(raw)
            return float(raw)
        if not isinstance(raw, str | int | float):
            raise ValueError(raw)
        return str(raw)
    except ValueError:
        raise InvalidArgument(
            f"setting {name!r} from {source} must be of type {type_name}, got {raw!r}",
            setting=name,
        ) from None


def _build(values: Mapping[str, Any], source: str) -> Settings:
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    converted: dict[str, Any] = {}
    for key, raw in values.items():
        f = fields.get(key)
        if f is None:
            raise InvalidArgument(f"unknown setting {key!r} from {source}", setting=key)
        converted[key] = _convert(key, _type_name(f), raw, source)
    return Settings(**converted)


def load_settings(
    environ: Mapping[str, str] | None = None,
    config_file: str | Path | None = None,
    **overrides: Any,
) -> Settings:
    """Resolve settings: keyword overrides > environment > config file > defaults.

    ``environ`` defaults to ``os.environ``; the config file is ``config_file``, else
    ``$MODELLOOP_CONFIG``, else ``./modelloop.toml`` when it exists.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    path = config_file or env.get(ENV_PREFIX + "CONFIG")
    if path is None and Path(CONFIG_FILE_NAME).is_file():
        path = CONFIG_FILE_NAME
    if path:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise InvalidArgument(f"config file {str(path)!r} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise InvalidArgument(f"config file {str(path)!r} is not valid TOML: {exc}") from None
        section = data.get("modelloop", data)
        values.update(_build(section, f"config file {path}").__dict__)
        values = {k: v for k, v in values.items() if k in section}
    known = {f.name for f in dataclasses.fields(Settings)}
    for key, raw in env.items():
        if key.startswith(ENV_PREFIX) and key != ENV_PREFIX + "CONFIG":
            name = key[len(ENV_PREFIX) :].lower()
            if name in known:
                values[name] = _convert(
                    name,
                    _type_name(next(f for f in dataclasses.fields(Settings) if f.name == name)),
                    raw,
                    f"environment variable {key}",
                )
    values.update({k: v for k, v in overrides.items() if v is not None})
    return _build(values, "argument")
