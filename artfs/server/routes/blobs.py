"""Blob bytes: streamed uploads verified against their digest, ranged downloads.

Downloads are served by Starlette's ``FileResponse``, which answers ``Range``
with 206 and ``Content-Range``; the strong ``ETag`` is the digest itself, and
the bytes are immutable, so clients may cache them forever.
"""

from __future__ import annotations

import threading
from typing import Any

from cachetools import TTLCache
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from artfs.digests import check_digest
from artfs.errors import InvalidInput, NotFound
from artfs.server.registry import Registry
from artfs.server.routes.deps import Project

router = APIRouter(prefix="/api/v1/projects/{project}/blobs")

#: Bytes gathered from the request stream before one write+hash in a worker thread.
WRITE_BATCH = 4 << 20

_visible: TTLCache[tuple[str, str], bool] = TTLCache(maxsize=100_000, ttl=60)
_visible_lock = threading.Lock()


def _registry(request: Request) -> Registry:
    registry: Registry = request.app.state.registry
    return registry


def _check_visible(registry: Registry, project: str, digest: str) -> None:
    key = (project, digest)
    with _visible_lock:
        if key in _visible:
            return
    if not registry.blob_visible(project, digest):
        raise NotFound(f"no version in project {project} references blob {digest}")
    with _visible_lock:
        _visible[key] = True


@router.put("/{digest}", status_code=201)
async def put_blob(request: Request, project: Project, digest: str) -> JSONResponse:
    """Upload one blob; it is published only if its bytes hash to ``digest``."""
    check_digest(digest)
    registry = _registry(request)
    await run_in_threadpool(_check_visible, registry, project, digest)
    writer = registry.store.writer(digest)
    pending = bytearray()
    try:
        async for piece in request.stream():
            pending += piece
            if len(pending) >= WRITE_BATCH:
                await run_in_threadpool(writer.write, bytes(pending))
                pending.clear()
        if pending:
            await run_in_threadpool(writer.write, bytes(pending))
        info = await run_in_threadpool(writer.commit)
    except ClientDisconnect as exc:
        writer.abort()
        raise InvalidInput(f"upload of blob {digest} was cut off") from exc
    except BaseException:
        writer.abort()
        raise
    await run_in_threadpool(registry.record_blob, info)
    return JSONResponse({"digest": info.digest, "size": info.size}, status_code=201)


@router.api_route("/{digest}", methods=["GET", "HEAD"], response_model=None)
def get_blob(request: Request, project: Project, digest: str) -> FileResponse:
    check_digest(digest)
    registry = _registry(request)
    _check_visible(registry, project, digest)
    path = registry.store.local_path(digest)
    if path is None:
        raise NotFound(f"blob {digest} is not on local disk")
    return FileResponse(
        path,
        media_type="application/octet-stream",
        headers={"ETag": f'"{digest}"', "Cache-Control": "public, max-age=31536000, immutable"},
    )


@router.get("/{digest}/chunks")
def get_chunks(request: Request, project: Project, digest: str) -> dict[str, Any]:
    """The per-chunk sha256 digests recorded when the blob was stored."""
    check_digest(digest)
    registry = _registry(request)
    _check_visible(registry, project, digest)
    info = registry.blob_info(digest)
    return {
        "digest": info.digest,
        "size": info.size,
        "chunk_size": info.chunk_size,
        "chunk_digests": info.chunk_digests.hex(),
    }
