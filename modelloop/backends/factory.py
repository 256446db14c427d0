"""Choosing a backend from a tracking URI."""

from __future__ import annotations

import os
from pathlib import Path

from modelloop.artifacts import open_blob_store
from modelloop.backends.base import Backend
from modelloop.backends.local import LocalBackend
from modelloop.errors import InvalidArgument
from modelloop.settings import Settings
from modelloop.store import Database
from modelloop.store.engine import sqlite_path

DB_FILE_NAME = "modelloop.db"
ARTIFACTS_DIR_NAME = "artifacts"


def resolve_stores(tracking_uri: str, artifacts_uri: str = "") -> tuple[str, str]:
    """The (database URL, artifact store URI) a local tracking URI stands for.

    A folder holds ``modelloop.db`` and ``artifacts/``; a ``sqlite:///`` URL keeps its
    artifacts beside the database file; a PostgreSQL URL needs ``artifacts_uri`` or
    uses ``./.modelloop/artifacts``.
    """
    uri = tracking_uri.strip()
    if not uri:
        raise InvalidArgument("the tracking URI is empty")
    if uri.startswith("file://"):
        uri = uri[len("file://") :]
    if uri.startswith(("sqlite:", "postgresql", "postgres:")):
        db_url = uri
        path = sqlite_path(uri) if uri.startswith("sqlite:") else None
        default_art = (
            os.path.join(os.path.dirname(path), ARTIFACTS_DIR_NAME)
            if path
            else os.path.join(".modelloop", ARTIFACTS_DIR_NAME)
        )
    elif "://" in uri:
        raise InvalidArgument(
            f"unsupported tracking URI {tracking_uri!r}: use a folder, sqlite:///PATH, "
            "postgresql://..., or http(s)://HOST:PORT"
        )
    else:
        folder = Path(uri).expanduser().absolute()
        db_url = f"sqlite:///{folder / DB_FILE_NAME}"
        default_art = str(folder / ARTIFACTS_DIR_NAME)
    return db_url, artifacts_uri or os.path.abspath(default_art)


def open_backend(settings: Settings) -> Backend:
    """The backend for ``settings.tracking_uri``: an :class:`HttpBackend` for an
    ``http(s)://`` server (sending ``settings.http_token``), else a LocalBackend."""
    uri = settings.tracking_uri
    if uri.startswith(("http://", "https://")):
        # Imported here: httpx and pydantic are not needed by a local store.
        from modelloop.backends.http import HttpBackend

        return HttpBackend(uri, token=settings.http_token or None)
    db_url, art_uri = resolve_stores(uri, settings.artifacts_uri)
    db = Database(db_url, busy_timeout=settings.sqlite_busy_timeout)
    return LocalBackend(db, open_blob_store(art_uri))
