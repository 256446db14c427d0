"""MLflow's artifact APIs: ``artifacts/list`` of the tracking service, and the artifact
proxy under ``/api/2.0/mlflow-artifacts`` that the stock client uses with
``mlflow-artifacts:`` URIs.

Proxy paths map onto modelloop's per-run artifact trees:

- ``<experiment_id>/<run_id>/artifacts/<path>`` is the file ``<path>`` of that run
  (the run must be in that experiment);
- ``<experiment_id>/models/<model_id>/artifacts/<path>`` (an MLflow 3 logged model's
  files) is the file ``_logged_models/<model_id>/<path>`` of the model's source run.

Any other path is refused: an upload or delete with 400 ``INVALID_PARAMETER_VALUE``,
a download with 404, and a listing answers ``{}`` as MLflow does for a missing
folder. A path that is absolute or climbs with ``..`` (encoded or not) is a 400.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import StrictStr
from starlette.concurrency import run_in_threadpool

from modelloop import validation as v
from modelloop.backends import LocalBackend
from modelloop.entities import ArtifactInfo
from modelloop.errors import NotFound
from modelloop.server.mlflow.convert import run_artifact_uri
from modelloop.server.mlflow.deps import StoreDep
from modelloop.server.mlflow.errors import RESOURCE_DOES_NOT_EXIST, MlflowError, MlflowRoute
from modelloop.server.mlflow.wire import RunMessage, message, ok
from modelloop.server.routes.artifacts import download_artifact, request_body

__all__ = ["ModelPath", "RunPath", "parse_proxy_path", "proxy_router", "router"]

#: ``/api/2.0/mlflow/artifacts/list`` (the tracking service).
router = APIRouter(prefix="/artifacts", route_class=MlflowRoute)
#: ``/api/2.0/mlflow-artifacts/artifacts...`` (the artifact proxy).
proxy_router = APIRouter(prefix="/artifacts", route_class=MlflowRoute)

_RUN_ID = re.compile(r"[0-9a-f]{32}")
_MODEL_ID = re.compile(r"m-[0-9a-f]{32}")


@dataclasses.dataclass(frozen=True, slots=True)
class RunPath:
    """A proxy path inside a run's artifact tree (``path`` None: the tree's root).
    ``base`` is the folder the proxy path is rooted at (None: the run's root; a
    logged model's folder for its paths), so ``path == base`` names that root."""

    experiment_id: str
    run_id: str
    path: str | None
    base: str | None = None

    @property
    def is_root(self) -> bool:
        """Whether the path names the root folder rather than something inside it."""
        return self.path == self.base


@dataclasses.dataclass(frozen=True, slots=True)
class ModelPath:
    """A proxy path inside a logged model's files (``path`` None: their root)."""

    experiment_id: str
    model_id: str
    path: str | None


def parse_proxy_path(raw: str) -> RunPath | ModelPath | None:
    """The run (or logged model) and the path inside its artifacts named by a proxy
    path; None when the path is under neither. A path that is absolute or escapes is
    a 400."""
    parts = v.check_artifact_path(raw).split("/", 4)
    if len(parts) < 3 or not parts[0].isdigit():
        return None
    if _RUN_ID.fullmatch(parts[1]) and parts[2] == "artifacts":
        rest = "/".join(parts[3:])
        return RunPath(parts[0], parts[1], rest or None)
    models = parts[1] == "models" and len(parts) >= 4 and parts[3] == "artifacts"
    if models and _MODEL_ID.fullmatch(parts[2]):
        return ModelPath(parts[0], parts[2], parts[4] if len(parts) == 5 else None)
    return None


def _run_path(store: LocalBackend, raw: str, writing: bool) -> RunPath:
    """The run path named by ``raw``, after checking the run (or logged model) is in
    that experiment; a logged model's path becomes its source run's."""
    target = parse_proxy_path(raw)
    if target is None:
        if writing:
            raise MlflowError(
                f"Artifact path '{raw:.200}' is not under a run: this server stores artifacts "
                "at <experiment_id>/<run_id>/artifacts/<path> and "
                "<experiment_id>/models/<model_id>/artifacts/<path>"
            )
        raise MlflowError(f"No artifact at '{raw:.200}'", RESOURCE_DOES_NOT_EXIST, 404)
    if isinstance(target, ModelPath):
        model = store.get_logged_model(target.model_id)
        if model.experiment_id != target.experiment_id:
            raise MlflowError(
                f"Logged model '{target.model_id}' is not in experiment '{target.experiment_id}'",
                RESOURCE_DOES_NOT_EXIST,
                404,
            )
        base = model.artifact_path
        inside = f"{base}/{target.path}" if target.path else base
        return RunPath(target.experiment_id, model.source_run_id, inside, base)
    run = store.get_run(target.run_id)
    if run.experiment_id != target.experiment_id:
        raise MlflowError(
            f"Run '{target.run_id}' is not in experiment '{target.experiment_id}'",
            RESOURCE_DOES_NOT_EXIST,
            404,
        )
    return target


def _file_json(info: ArtifactInfo, path: str) -> dict[str, Any]:
    out: dict[str, Any] = {"path": path, "is_dir": info.is_dir}
    if not info.is_dir and info.size is not None:
        out["file_size"] = info.size
    return out


def _listing(store: LocalBackend, run_id: str, path: str | None) -> list[ArtifactInfo]:
    """Children of a folder; a file lists nothing (as MLflow's repositories answer)."""
    found = store.list_artifacts(run_id, path)
    if len(found) == 1 and not found[0].is_dir and path and found[0].path == path.strip("/"):
        return []
    return found


class ListArtifacts(RunMessage):
    path: StrictStr | None = None
    page_token: StrictStr | None = None


@router.get("/list")
def list_run_artifacts(
    body: Annotated[ListArtifacts, message(ListArtifacts)], store: StoreDep
) -> JSONResponse:
    """A folder of a run's artifacts, paths relative to the run's ``root_uri``."""
    run = store.get_run(body.required_run_id())
    found = _listing(store, run.run_id, body.path or None)
    payload: dict[str, Any] = {"root_uri": run_artifact_uri(run.experiment_id, run.run_id)}
    if found:
        payload["files"] = [_file_json(a, a.path) for a in found]
    return ok(payload)


@proxy_router.get("")
def list_proxy(
    store: StoreDep,
    path: Annotated[str | None, Query(description="A folder under the proxy root.")] = None,
) -> JSONResponse:
    """Direct children of a folder, by base name; ``{}`` for a missing folder."""
    if not path or not path.strip("/"):
        return ok()
    try:
        target = _run_path(store, path, writing=False)
        found = _listing(store, target.run_id, target.path)
    except (NotFound, MlflowError) as exc:
        if isinstance(exc, MlflowError) and exc.status != 404:
            raise
        return ok()
    if not found:
        return ok()
    return ok({"files": [_file_json(a, a.path.rpartition("/")[2]) for a in found]})


@proxy_router.put("/{path:path}")
async def upload(path: str, request: Request, store: StoreDep) -> JSONResponse:
    """Store the request body, streamed, as one file of a run's artifacts."""
    target = await run_in_threadpool(_run_path, store, path, True)
    if target.is_root or target.path is None:
        raise MlflowError(f"Artifact path '{path:.200}' must name a file inside the run")
    await run_in_threadpool(
        lambda: store.upload_artifact(
            target.run_id, str(target.path), request_body(request), allow_ended=True
        )
    )
    return ok()


@proxy_router.get("/{path:path}")
def download(path: str, store: StoreDep) -> Response:
    """The bytes of one artifact file, streamed and verified against their digest."""
    target = _run_path(store, path, writing=False)
    if target.is_root or target.path is None:
        raise MlflowError(f"'{path:.200}' is a folder, not a file", RESOURCE_DOES_NOT_EXIST, 404)
    return download_artifact(target.run_id, target.path, store)


@proxy_router.delete("/{path:path}")
def delete(path: str, store: StoreDep) -> JSONResponse:
    """Forget a file, or a folder with everything under it, of a run's artifacts."""
    target = _run_path(store, path, writing=True)
    store.delete_artifacts(target.run_id, target.path)
    return ok()
