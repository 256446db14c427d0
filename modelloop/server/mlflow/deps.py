"""The store behind the MLflow-compatible API.

MLflow's semantics need a few operations the :class:`~modelloop.backends.Backend`
protocol does not promise (logging to an ended run, deleting artifacts, metric
steps of the latest values), so these routes run over a
:class:`~modelloop.backends.LocalBackend`, which ``modelloop server`` always
serves. An app built over another backend answers them 501 ``NOT_IMPLEMENTED``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from modelloop.backends import LocalBackend
from modelloop.server.mlflow.errors import MlflowError

__all__ = ["StoreDep", "get_store"]


async def get_store(request: Request) -> LocalBackend:
    """The app's backend, which must be local (a coroutine: run on the event loop, not
    in the thread pool)."""
    backend = request.app.state.backend
    if not isinstance(backend, LocalBackend):
        raise MlflowError(
            "the MLflow-compatible API needs a server over a local store", "NOT_IMPLEMENTED", 501
        )
    return backend


StoreDep = Annotated[LocalBackend, Depends(get_store)]
