"""Backends: one interface, a local and an HTTP implementation.

``modelloop.backends.http.HttpBackend`` is not imported here, so that local use does
not load httpx and pydantic; :func:`open_backend` imports it for ``http(s)://`` URIs.
"""

from modelloop.backends.base import Backend, GcReport
from modelloop.backends.factory import open_backend
from modelloop.backends.local import LocalBackend

__all__ = ["Backend", "GcReport", "LocalBackend", "open_backend"]
