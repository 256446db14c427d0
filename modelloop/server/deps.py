"""Dependencies shared by the routes: the backend of the app serving the request.

Routes take the backend through ``BackendDep`` rather than a global, so each app
from :func:`~modelloop.server.app.create_app` serves its own store. Authentication and
roles are checked before any route runs, by :class:`~modelloop.server.auth.AuthMiddleware`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from modelloop.backends.base import Backend

__all__ = ["BackendDep", "get_backend"]


async def get_backend(request: Request) -> Backend:
    """The backend stored on the app by ``create_app``. A coroutine, so FastAPI runs it
    on the event loop: a plain function dependency is run in the thread pool, one
    more thread hop per request for a dictionary lookup."""
    backend: Backend = request.app.state.backend
    return backend


BackendDep = Annotated[Backend, Depends(get_backend)]
