"""The tracking server: a FastAPI app over a Backend (``modelloop server`` runs it).

``create_app`` is imported on first use, so that ``modelloop.server.schemas`` (the
wire models the HTTP client shares) can be imported without FastAPI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelloop.server.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from modelloop.server.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
