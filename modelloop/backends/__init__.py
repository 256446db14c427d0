"""Backends: one interface, a local and (later) an HTTP implementation."""

from modelloop.backends.base import Backend, GcReport
from modelloop.backends.factory import open_backend
from modelloop.backends.local import LocalBackend

__all__ = ["Backend", "GcReport", "LocalBackend", "open_backend"]
