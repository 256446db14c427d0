"""MLflow 3's ``logged-models``: only ``search`` for now, which the stock client calls
whenever it lists or downloads a run's artifacts under a sub-path (to merge in a
logged model's files). No logged model can exist yet (``logged-models`` create is
not served), so the answer is an empty page. Creating, updating and serving
logged models, and their ``<experiment_id>/models/<model_id>/artifacts`` proxy
paths, belong in this module when the registry work lands.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import Field, StrictStr

from modelloop.server.mlflow.deps import StoreDep
from modelloop.server.mlflow.errors import MlflowRoute
from modelloop.server.mlflow.wire import Int64, Message, message, ok

__all__ = ["router"]

router = APIRouter(prefix="/logged-models", route_class=MlflowRoute)


class SearchLoggedModels(Message):
    experiment_ids: list[StrictStr] = Field(default_factory=list)
    filter: StrictStr | None = None
    max_results: Int64 | None = None
    page_token: StrictStr | None = None


@router.post("/search")
def search(
    body: Annotated[SearchLoggedModels, message(SearchLoggedModels)], store: StoreDep
) -> JSONResponse:
    """No logged models exist yet: an empty page (the experiments must exist)."""
    for experiment_id in body.experiment_ids:
        store.get_experiment(experiment_id)
    return ok()
