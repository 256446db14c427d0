"""``/api/v1/runs/{run_id}/artifacts``: streamed upload, listing, streamed download."""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Annotated, BinaryIO
from urllib.parse import quote

import anyio.from_thread
from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from modelloop.artifacts.base import CHUNK_SIZE
from modelloop.errors import DataCorrupted
from modelloop.server.deps import BackendDep
from modelloop.server.errors import ERROR_RESPONSES
from modelloop.server.schemas import DIGEST_HEADER, ArtifactInfoModel, ArtifactList

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["SMALL_FILE", "DownloadAborted", "download_artifact", "request_body", "router"]

logger = logging.getLogger("modelloop.server")

router = APIRouter(prefix="/runs/{run_id}/artifacts", tags=["artifacts"], responses=ERROR_RESPONSES)

RunId = Annotated[str, Path(description="The run id (32 hex characters).")]
ArtifactPath = Annotated[str, Path(description="A relative path in the run's artifact tree.")]

#: Files up to this size are read (and so verified) whole before the response starts,
#: so a corrupted one is answered with a 500 DATA_CORRUPTED body. Larger files are
#: streamed; corruption found at their end aborts the response.
SMALL_FILE = CHUNK_SIZE

_OCTET_STREAM = "application/octet-stream"
BINARY_BODY = {
    "requestBody": {
        "required": True,
        "content": {_OCTET_STREAM: {"schema": {"type": "string", "format": "binary"}}},
    }
}
_BINARY_RESPONSE: dict[int | str, dict[str, object]] = {
    200: {
        "description": f"The file's bytes; the {DIGEST_HEADER} header holds their sha256.",
        "content": {_OCTET_STREAM: {"schema": {"type": "string", "format": "binary"}}},
    }
}


class _RequestBody(io.RawIOBase):
    """The request body as a blocking file, for a worker thread: each read pulls the
    next chunk from the event loop, so the upload never sits whole in memory."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    async def _next_chunk(self) -> bytes:
        return await anext(self._chunks)

    def readinto(self, buffer: WriteableBuffer) -> int:
        while not self._pending:
            try:
                chunk = anyio.from_thread.run(self._next_chunk)
            except StopAsyncIteration:
                return 0
            self._pending = memoryview(chunk)
        view = memoryview(buffer).cast("B")
        n = min(len(view), len(self._pending))
        view[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def request_body(request: Request) -> io.BufferedReader:
    """The request body as a buffered blocking file for a worker thread, streamed."""
    return io.BufferedReader(_RequestBody(request.stream()), CHUNK_SIZE)


@router.put(
    "/{path:path}",
    operation_id="upload_artifact",
    openapi_extra=BINARY_BODY,
)
async def upload_artifact(
    run_id: RunId, path: ArtifactPath, request: Request, backend: BackendDep
) -> ArtifactInfoModel:
    """Store the request body as one file of the run's artifacts (streamed to the blob
    store; an existing file at ``path`` is replaced)."""
    info = await run_in_threadpool(backend.upload_artifact, run_id, path, request_body(request))
    return ArtifactInfoModel.from_entity(info)


@router.get("", operation_id="list_artifacts")
def list_artifacts(
    run_id: RunId,
    backend: BackendDep,
    path: Annotated[str | None, Query(description="A folder (the root when absent).")] = None,
) -> ArtifactList:
    """Direct children of a folder of the run's artifact tree (a file lists itself)."""
    found = backend.list_artifacts(run_id, path)
    return ArtifactList(files=[ArtifactInfoModel.from_entity(a) for a in found])


@router.get(
    "/{path:path}",
    operation_id="open_artifact",
    response_class=Response,
    responses=_BINARY_RESPONSE,
)
def download_artifact(run_id: RunId, path: ArtifactPath, backend: BackendDep) -> Response:
    """The content of one file, verified against its digest."""
    reader = backend.open_artifact(run_id, path)
    try:
        # The listing gives the digest for the header; the reader verifies against the
        # record it opened (the same one unless the path is rewritten in between).
        listed = backend.list_artifacts(run_id, path)
        head = reader.read(SMALL_FILE + 1)
    except BaseException:
        reader.close()
        raise
    headers = {
        "Content-Disposition": _attachment(path),
        "X-Content-Type-Options": "nosniff",
    }
    if len(listed) == 1 and listed[0].digest:
        headers[DIGEST_HEADER] = listed[0].digest
        headers["ETag"] = f'"{listed[0].digest}"'
    if len(head) <= SMALL_FILE:  # the whole file was read, and verified at its end
        reader.close()
        return Response(head, media_type=_OCTET_STREAM, headers=headers)
    return StreamingResponse(_stream(head, reader, path), media_type=_OCTET_STREAM, headers=headers)


class DownloadAborted(Exception):
    """Raised mid-response to make the server cut the connection: the status line has
    gone out, so an error can only be signalled by an incomplete body. (Not a
    ModelloopError, whose handler would try to send a second response.)"""


def _stream(head: bytes, reader: BinaryIO, path: str) -> Iterator[bytes]:
    try:
        yield head
        while chunk := reader.read(CHUNK_SIZE):
            yield chunk
    except DataCorrupted as exc:
        logger.error("artifact %r: %s; aborting the download", path, exc)
        raise DownloadAborted(f"artifact {path!r} failed its digest check") from exc
    finally:
        reader.close()


def _attachment(path: str) -> str:
    name = path.rstrip("/").rpartition("/")[2] or "artifact"
    return f"attachment; filename*=UTF-8''{quote(name, safe='')}"
