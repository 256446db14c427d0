"""HttpBackend: the Backend protocol over a ``modelloop server``'s REST API.

Requests and responses are the models of :mod:`modelloop.server.schemas`, the
same ones the server validates with. An error response carries a stable error
code and becomes the typed exception the local backend would have raised.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO, TypeVar, cast

import httpx
from pydantic import BaseModel, ValidationError

from modelloop import validation as v
from modelloop.artifacts._io import verifying_reader, write_verified_file
from modelloop.backends._http_io import (
    ResponseReader,
    body_chunks,
    error_from_response,
    invalid_arguments,
    safe_target,
    unreachable,
    url_path,
    url_segment,
    wire_metric,
    wire_request,
    wire_string,
    wire_strings,
)
from modelloop.backends.base import GcReport
from modelloop.backends.http_deployments import HttpDeployments
from modelloop.backends.local import current_user
from modelloop.entities import (
    ArtifactInfo,
    DatasetInput,
    Experiment,
    Metric,
    Page,
    Param,
    Run,
    RunStatus,
    ViewType,
)
from modelloop.errors import (
    InvalidArgument,
    ModelloopError,
    NotFound,
)
from modelloop.server.schemas import (
    DIGEST_HEADER,
    ArtifactInfoModel,
    ArtifactList,
    CreateExperimentRequest,
    CreateRunRequest,
    DatasetInputModel,
    ExperimentCreated,
    ExperimentList,
    ExperimentModel,
    GcReportModel,
    GcRequest,
    LogBatchRequest,
    LogInputsRequest,
    MetricHistory,
    ParamModel,
    RenameExperimentRequest,
    RunModel,
    RunPage,
    SearchRunsRequest,
    SetTagRequest,
    UpdateRunRequest,
)

__all__ = ["HttpBackend"]

M = TypeVar("M", bound=BaseModel)

_JSON = {"Content-Type": "application/json"}
_OCTET_STREAM = {"Content-Type": "application/octet-stream"}


class HttpBackend(HttpDeployments):
    """Implements :class:`~modelloop.backends.Backend` by calling a tracking server.

    One ``httpx.Client`` (keep-alive, pooled connections; thread-safe) serves every
    call. ``token`` is sent as ``Authorization: Bearer <token>``. Artifacts are
    streamed both ways and verified against their sha256 on arrival. ``transport``
    replaces the network (e.g. ``httpx.MockTransport`` in tests).
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        timeout: float = 60.0,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        url = base_url.strip().rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise InvalidArgument(f"not an http(s) URL: {base_url!r}")
        self.base_url = url
        from modelloop import __version__

        headers = {"User-Agent": f"modelloop/{__version__}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=f"{url}/api/v1",
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"HttpBackend({self.base_url!r})"

    # plumbing ----------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        body: BaseModel | None = None,
        params: dict[str, str] | None = None,
        content: Iterator[bytes] | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        headers = None
        if body is not None:
            content_bytes: bytes | Iterator[bytes] | None = body.model_dump_json(
                by_alias=True
            ).encode()
            headers = _JSON
        else:
            content_bytes = content
            headers = _OCTET_STREAM if content is not None else None
        request = self._http.build_request(
            method, path, content=content_bytes, headers=headers, params=params
        )
        try:
            response = self._http.send(request, stream=stream)
        except httpx.TransportError as exc:
            raise unreachable(self.base_url, exc) from exc
        if response.is_error:
            try:
                response.read()
            except httpx.TransportError as exc:
                raise unreachable(self.base_url, exc) from exc
            finally:
                response.close()
            raise error_from_response(response)
        return response

    def _call(self, method: str, path: str, reply: type[M], **kwargs: Any) -> M:
        response = self._send(method, path, **kwargs)
        try:
            return reply.model_validate_json(response.content)
        except ValidationError as exc:
            raise ModelloopError(
                f"{method} {response.url}: unexpected response from the server: {exc}"
            ) from None

    # experiments -------------------------------------------------------------

    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: dict[str, str] | None = None
    ) -> str:
        """Create an experiment and return its id."""
        body = wire_request(
            CreateExperimentRequest,
            name=name,
            artifact_location=artifact_location,
            tags=wire_strings(tags),
        )
        return self._call("POST", "/experiments", ExperimentCreated, body=body).experiment_id

    def get_experiment(self, experiment_id: str) -> Experiment:
        """An experiment by id."""
        path = f"/experiments/{url_segment(str(experiment_id))}"
        return self._call("GET", path, ExperimentModel).to_entity()

    def get_experiment_by_name(self, name: str) -> Experiment:
        """An experiment by name."""
        params = {"name": name}
        return self._call("GET", "/experiments/by-name", ExperimentModel, params=params).to_entity()

    def list_experiments(self, view_type: ViewType = ViewType.ACTIVE_ONLY) -> list[Experiment]:
        """All experiments in a view, newest first."""
        params = {"view_type": ViewType(view_type).value}
        found = self._call("GET", "/experiments", ExperimentList, params=params)
        return [e.to_entity() for e in found.experiments]

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        """Rename an experiment."""
        body = wire_request(RenameExperimentRequest, name=new_name)
        self._send("PATCH", f"/experiments/{url_segment(str(experiment_id))}", body=body)

    def delete_experiment(self, experiment_id: str) -> None:
        """Soft-delete an experiment and its runs."""
        self._send("POST", f"/experiments/{url_segment(str(experiment_id))}/delete")

    def restore_experiment(self, experiment_id: str) -> None:
        """Undo a soft delete."""
        self._send("POST", f"/experiments/{url_segment(str(experiment_id))}/restore")

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        """Set an experiment tag."""
        body = wire_request(SetTagRequest, value=wire_string(value))
        path = f"/experiments/{url_segment(str(experiment_id))}/tags/{url_path(key)}"
        self._send("PUT", path, body=body)

    # runs --------------------------------------------------------------------

    def create_run(
        self,
        experiment_id: str,
        name: str | None = None,
        start_time: int | None = None,
        tags: dict[str, str] | None = None,
        parent_run_id: str | None = None,
        user: str | None = None,
    ) -> Run:
        """Start a RUNNING run; its user is this process's unless ``user`` is given."""
        body = wire_request(
            CreateRunRequest,
            experiment_id=str(experiment_id),
            name=name,
            start_time=start_time,
            tags=wire_strings(tags),
            parent_run_id=parent_run_id,
            user=user or current_user(),
        )
        return self._call("POST", "/runs", RunModel, body=body).to_entity()

    def get_run(self, run_id: str) -> Run:
        """A run with its params, latest metrics, tags and inputs."""
        return self._call("GET", f"/runs/{url_segment(run_id)}", RunModel).to_entity()

    def update_run(
        self,
        run_id: str,
        status: RunStatus | None = None,
        end_time: int | None = None,
        name: str | None = None,
        status_message: str | None = None,
    ) -> None:
        """Change a run's status (ending it), end time or name."""
        body = wire_request(
            UpdateRunRequest,
            status=status,
            end_time=end_time,
            name=name,
            status_message=status_message,
        )
        self._send("PATCH", f"/runs/{url_segment(run_id)}", body=body)

    def delete_run(self, run_id: str) -> None:
        """Soft-delete a run."""
        self._send("POST", f"/runs/{url_segment(run_id)}/delete")

    def restore_run(self, run_id: str) -> None:
        """Undo a soft delete."""
        self._send("POST", f"/runs/{url_segment(run_id)}/restore")

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: dict[str, str] | None = None,
    ) -> None:
        """Record metrics, params and tags in one request and one transaction."""
        body = wire_request(
            LogBatchRequest,
            metrics=[wire_metric(m) for m in metrics],
            params=[
                wire_request(ParamModel, key=p.key, value=wire_string(p.value, "param", p.key))
                for p in params
            ],
            tags=wire_strings(tags),
        )
        self._send("POST", f"/runs/{url_segment(run_id)}/batch", body=body)

    def delete_tag(self, run_id: str, key: str) -> None:
        """Remove a run tag."""
        self._send("DELETE", f"/runs/{url_segment(run_id)}/tags/{url_path(key)}")

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every point of one metric, by step."""
        path = f"/runs/{url_segment(run_id)}/metrics/{url_path(key)}/history"
        return [m.to_entity() for m in self._call("GET", path, MetricHistory).metrics]

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> Page[Run]:
        """One page of runs matching a filter, in order."""
        body = wire_request(
            SearchRunsRequest,
            experiment_ids=[str(e) for e in experiment_ids],
            filter_string=filter_string,
            view_type=view_type,
            max_results=max_results,
            order_by=None if order_by is None else list(order_by),
            page_token=page_token,
        )
        page = self._call("POST", "/runs/search", RunPage, body=body)
        return Page([r.to_entity() for r in page.runs], page.next_page_token)

    def log_inputs(self, run_id: str, inputs: Sequence[DatasetInput]) -> None:
        """Record datasets a run used."""
        with invalid_arguments():
            body = LogInputsRequest(inputs=[DatasetInputModel.from_entity(i) for i in inputs])
        self._send("POST", f"/runs/{url_segment(run_id)}/inputs", body=body)

    # artifacts ---------------------------------------------------------------

    def upload_artifact(self, run_id: str, path: str, stream: BinaryIO) -> ArtifactInfo:
        """Store one file of a run's artifact tree, streamed in chunks."""
        url = f"/runs/{url_segment(run_id)}/artifacts/{url_path(path)}"
        return self._call("PUT", url, ArtifactInfoModel, content=body_chunks(stream)).to_entity()

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[ArtifactInfo]:
        """Direct children of a folder in a run's artifact tree."""
        params = {} if path is None else {"path": path}
        url = f"/runs/{url_segment(run_id)}/artifacts"
        return [a.to_entity() for a in self._call("GET", url, ArtifactList, params=params).files]

    def open_artifact(self, run_id: str, path: str) -> BinaryIO:
        """A reader of one artifact file, streamed and verified against its sha256
        at end of stream (DataCorrupted if the bytes that arrived do not match)."""
        return self._open(run_id, path, None)

    def _open(self, run_id: str, path: str, digest: str | None) -> BinaryIO:
        url = f"/runs/{url_segment(run_id)}/artifacts/{url_path(path)}"
        response = self._send("GET", url, stream=True)
        expected = digest or response.headers.get(DIGEST_HEADER)
        raw = ResponseReader(response, f"artifact {path!r} of run {run_id}")
        try:
            if expected is None:  # an older or foreign server: the stream is all there is
                return io.BufferedReader(raw)
            return verifying_reader(cast(BinaryIO, raw), expected, "received from the server")
        except BaseException:
            raw.close()
            raise

    def download_artifacts(self, run_id: str, path: str | None, dest: Path) -> Path:
        """Copy a file or folder of a run's artifacts under ``dest``: each file is
        streamed to a temp file, checked against the digest the listing gave, then
        renamed into place (so no partial file ever appears)."""
        prefix = None if path in (None, "", "/") else v.check_artifact_path(path)
        dest = Path(dest)
        files = self._files_under(run_id, prefix)
        if not files:
            raise NotFound(f"run {run_id} has no artifact {prefix or '(root)'!r}")
        for f in files:
            target = safe_target(dest, f.path, prefix)
            if f.digest is None:
                raise ModelloopError(f"the server listed artifact {f.path!r} without a digest")
            with self._open(run_id, f.path, f.digest) as reader:
                write_verified_file(reader, target)
        return dest / prefix if prefix else dest

    def _files_under(self, run_id: str, prefix: str | None) -> list[ArtifactInfo]:
        files: list[ArtifactInfo] = []
        folders: list[str | None] = [prefix]
        seen: set[str] = set()
        while folders:
            folder = folders.pop()
            for entry in self.list_artifacts(run_id, folder):
                if not entry.is_dir:
                    files.append(entry)
                    continue
                below = folder is None or entry.path.startswith(folder + "/")
                if not below or entry.path in seen:
                    raise InvalidArgument(
                        f"the server listed folder {entry.path!r} inside {folder or '(root)'!r}"
                    )
                seen.add(entry.path)
                folders.append(entry.path)
        return sorted(files, key=lambda f: f.path)

    # maintenance -------------------------------------------------------------

    def gc(self, dry_run: bool = True, grace_seconds: int | None = None) -> GcReport:
        """Find (and unless ``dry_run`` remove) blobs no live record refers to."""
        body = wire_request(GcRequest, dry_run=dry_run, grace_seconds=grace_seconds)
        return self._call("POST", "/gc", GcReportModel, body=body).to_entity()

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.close()
