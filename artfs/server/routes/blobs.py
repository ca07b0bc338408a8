"""Blob bytes: streamed uploads verified against their digest, ranged downloads.

Uploads: a small body (``SMALL_BODY``) is read whole and then verified,
stored and recorded in one worker-thread call, since for a 4 KiB blob the
thread handoffs and not the bytes are the cost. A larger body is written in
``WRITE_BATCH`` batches by a worker thread while the event loop receives the
next batch, so neither the socket nor the disk waits for the other, and at
most two batches are held per upload.

Downloads that succeed are answered before FastAPI by ``BlobReadMiddleware``
(``artfs.server.blob_reads``); the GET route here answers the rest, and so
defines the errors: a blob the project does not reference, several ranges,
``If-Range``, a malformed or unsatisfiable ``Range``. Its ``BlobResponse`` is a
``FileResponse`` that answers ``Range`` with 206 and ``Content-Range``. The
strong ``ETag`` is the digest itself, and the bytes are immutable, so clients
may cache them forever.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.requests import ClientDisconnect

from artfs.digests import check_digest
from artfs.errors import InvalidInput, NotFound
from artfs.server.blob_reads import absurd_range, blob_headers, single_range
from artfs.server.openapi import DigestPath, answers, bytes_body
from artfs.server.registry import Registry
from artfs.server.routes.deps import Project
from artfs.server.settings import ServerSettings
from artfs.server.upload_slots import upload_slot
from artfs.store.base import BlobInfo, BlobStore, BlobWriter

router = APIRouter(prefix="/api/v1/projects/{project}/blobs")

#: Upload bodies up to this size are read whole before anything touches the disk.
SMALL_BODY = 1 << 20
#: Bytes gathered from the request stream before one write+hash in a worker thread.
WRITE_BATCH = 4 << 20


class BlobResponse(FileResponse):
    """A blob file, answering ``Range`` and ``HEAD`` as ``FileResponse`` does."""

    #: Starlette's 64 KiB means a thread handoff per 64 KiB: 1 MiB pieces make a
    #: large download cost a sixteenth of the handoffs. (uvicorn offers no
    #: zero-copy ``http.response.pathsend``, so the bytes pass through Python.)
    chunk_size = 1 << 20

    def __init__(self, path: Path, digest: str, stat: os.stat_result) -> None:
        super().__init__(
            path,
            media_type="application/octet-stream",
            headers=blob_headers(digest),
            stat_result=stat,
        )
        # A read of chunk_size bytes allocates that much, and a read that fills
        # it asks for one more piece: size a small blob's one read to fit.
        self.chunk_size = min(BlobResponse.chunk_size, stat.st_size + 1)


def _registry(request: Request) -> Registry:
    registry: Registry = request.app.state.registry
    return registry


def _check_visible(registry: Registry, project: str, digest: str) -> None:
    if not registry.blob_visible(project, digest):
        raise NotFound(f"no version in project {project} references blob {digest}")


def _check_uploadable(registry: Registry, project: str, digest: str) -> None:
    if not registry.blob_uploadable(project, digest):
        raise NotFound(f"no upload or version of project {project} names blob {digest}")


def _declared_length(request: Request) -> int | None:
    length = request.headers.get("content-length")
    return int(length) if length is not None and length.isdigit() else None


@router.put(
    "/{digest}",
    status_code=201,
    responses=answers(404, 429, 507),
    openapi_extra=bytes_body("the blob's bytes, which must hash to `digest`"),
)
async def put_blob(request: Request, project: Project, digest: DigestPath) -> JSONResponse:
    """Upload one blob; it is published only if its bytes hash to ``digest``."""
    check_digest(digest)
    registry = _registry(request)
    length = _declared_length(request)
    try:
        with upload_slot(request):
            if length is not None and length <= SMALL_BODY:
                body = await request.body()
                info = await run_in_threadpool(_store_whole, registry, project, digest, body)
            else:
                info = await _store_streamed(registry, project, digest, request.stream())
    except ClientDisconnect as exc:
        raise InvalidInput(f"upload of blob {digest} was cut off") from exc
    return JSONResponse({"digest": info.digest, "size": info.size}, status_code=201)


def _store_whole(registry: Registry, project: str, digest: str, body: bytes) -> BlobInfo:
    """Worker thread: check, write, verify, publish and record a body already in memory."""
    _check_uploadable(registry, project, digest)
    info = write_whole(registry, digest, body)
    registry.record_blob(info, project)
    return info


def write_whole(registry: Registry, digest: str, body: bytes | memoryview) -> BlobInfo:
    """Write, verify and publish a blob already in memory; recording it is the caller's."""
    writer = registry.store.writer(digest)
    try:
        writer.write(body)
        return writer.commit(durable=False)  # durable once recorded: see ``_publish``
    except BaseException:
        writer.abort()
        raise


def _publish(registry: Registry, project: str, writer: BlobWriter) -> BlobInfo:
    # The directory fsync is left to record_blob, which batches it with the
    # concurrent uploads' and inserts the rows only after it.
    info = writer.commit(durable=False)
    registry.record_blob(info, project)
    return info


def _open_writer(registry: Registry, project: str, digest: str) -> BlobWriter:
    _check_uploadable(registry, project, digest)
    return registry.store.writer(digest)


async def _store_streamed(
    registry: Registry, project: str, digest: str, stream: AsyncIterator[bytes]
) -> BlobInfo:
    writer = await run_in_threadpool(_open_writer, registry, project, digest)
    try:
        await _receive_into(writer, stream)
        return await run_in_threadpool(_publish, registry, project, writer)
    except BaseException:
        writer.abort()
        raise


async def _receive_into(writer: BlobWriter, stream: AsyncIterator[bytes]) -> None:
    """Feed the request body to ``writer`` in batches, writing one while receiving the next.

    The pieces are handed over as received, not joined: copying them would
    cost about as much CPU as writing them.
    """
    behind = _WriteBehind(writer)
    try:
        batch: list[bytes] = []
        filled = 0
        async for piece in stream:
            batch.append(piece)
            filled += len(piece)
            if filled >= WRITE_BATCH:
                await behind.start(batch)
                batch, filled = [], 0
        await behind.start(batch)
        await behind.wait()
    finally:
        await behind.settle()


class _WriteBehind:
    """At most one batch being written by a worker thread while the caller goes on."""

    def __init__(self, writer: BlobWriter) -> None:
        self._writer = writer
        self._running: asyncio.Task[None] | None = None

    async def start(self, batch: list[bytes]) -> None:
        """Wait for the previous batch (and raise its error), then start writing ``batch``."""
        await self.wait()
        if batch:
            self._running = asyncio.create_task(run_in_threadpool(self._writer.write_many, batch))

    async def wait(self) -> None:
        if self._running is not None:
            await self._running
            self._running = None

    async def settle(self) -> None:
        """Let a write still in a thread finish, errors ignored: the writer is aborted next."""
        running, self._running = self._running, None
        if running is None:
            return
        with anyio.CancelScope(shield=True):
            await asyncio.wait([running])
        if not running.cancelled():
            running.exception()  # retrieved: the caller is already raising its own error


@router.get("/{digest}", response_model=None, responses=answers(404, 416))
@router.head("/{digest}", response_model=None, responses=answers(404, 416))
def get_blob(request: Request, project: Project, digest: DigestPath) -> Response:
    check_digest(digest)
    registry = _registry(request)
    _check_visible(registry, project, digest)
    if absurd_range(request.headers.get("range", "")):
        raise InvalidInput("malformed Range header: a position past any blob")
    path = registry.store.local_path(digest)
    if path is None:
        return _from_store(request, registry.store, digest)
    return BlobResponse(path, digest, os.stat(path))


def _from_store(request: Request, store: BlobStore, digest: str) -> Response:
    """A blob of an object store, streamed through the registry (direct reads off, or a
    client falling back): the whole blob, or one range; several ranges are refused."""
    size = store.size(digest)
    headers = {**blob_headers(digest), "Accept-Ranges": "bytes"}
    asked = request.headers.get("range")
    start, end, status = 0, size, 200
    if asked is not None:
        wanted = single_range(asked, size)
        if wanted is None:
            return Response(
                status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"}
            )
        (start, end), status = wanted, 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    headers["Content-Length"] = str(end - start)
    if request.method == "HEAD" or start == end:
        return Response(status_code=status, headers=headers)
    return StreamingResponse(
        iterate_in_threadpool(store.read_range(digest, start, end)),
        status_code=status,
        headers=headers,
        media_type="application/octet-stream",
    )


@router.get("/{digest}/url", responses=answers(404))
def get_blob_url(request: Request, project: Project, digest: DigestPath) -> dict[str, Any]:
    """Where to read a blob straight from the object store: a presigned GET URL (send
    ``Range`` as a header), valid ``expires_in`` seconds; ``url`` is null when the store
    has none to give or direct reads are off, and the blob route serves it instead."""
    check_digest(digest)
    registry = _registry(request)
    _check_visible(registry, project, digest)
    settings: ServerSettings = request.app.state.settings
    seconds = settings.direct_url_seconds
    url = registry.store.presign_get(digest, seconds) if settings.direct_reads else None
    return {"url": url, "expires_in": seconds if url is not None else 0}


@router.get("/{digest}/chunks", responses=answers(404))
def get_chunks(request: Request, project: Project, digest: DigestPath) -> dict[str, Any]:
    """The per-chunk digests recorded when the blob was stored, and the hash that made them."""
    check_digest(digest)
    registry = _registry(request)
    _check_visible(registry, project, digest)
    try:
        info = registry.blob_info(digest)
    except NotFound:
        registry.store.size(digest)  # Corrupt, saying why, if it was quarantined (any store)
        raise
    return {
        "digest": info.digest,
        "size": info.size,
        "chunk_size": info.chunk_size,
        "chunk_digests": info.chunk_digests.hex(),
        "chunk_hash": info.chunk_hash,
    }
