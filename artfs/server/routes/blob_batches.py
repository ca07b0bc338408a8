"""Many small blobs in one response or one request: walks and pushes of small files.

A mount reading 10,000 files of 4 KiB would otherwise pay one HTTP round trip
per file; here it asks for up to ``MAX_BLOBS`` digests at once and gets their
bytes back to back, in the order asked, with nothing between them: the client
knows each blob's size from the manifest and verifies each against its digest.
Only blobs that some version of the project references may be asked for, as
for single blob reads.

Uploads the other way (``PUT``): a JSON line ``[[digest, size], ...]``, then the
blobs' bytes back to back. For 4 KiB blobs pushed one by one the request, not
the bytes, is the cost, on the client and on the server alike.
Every blob is checked before any is written (announced by an upload of the
project, bytes hashing to its digest), so a bad batch changes nothing; then
each is written, synced and renamed like a single upload, and all are recorded
together.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from artfs.digests import check_digest
from artfs.errors import DigestMismatch, InvalidInput, NotFound, TooLarge
from artfs.server.models import MAX_BLOBS, BlobBatch
from artfs.server.openapi import answers, bytes_body
from artfs.server.registry import Registry
from artfs.server.routes.blobs import write_whole
from artfs.server.routes.deps import Project, RegistryDep
from artfs.server.upload_slots import upload_slot

router = APIRouter(prefix="/api/v1/projects/{project}")

#: Bytes per response, as ``MAX_BLOBS`` is digests: a batch is held in memory whole.
MAX_BYTES = 32 << 20
#: Bytes per upload batch, its JSON line included: read into memory whole, so
#: ``artfs.server.request_bounds`` holds the body to this as it arrives.
MAX_UPLOAD_BYTES = MAX_BYTES + (1 << 20)


@router.post(
    "/blob-batch",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}, **answers(404, 503)},
)
def get_blob_batch(registry: RegistryDep, project: Project, body: BlobBatch) -> Response:
    """The bytes of each blob in ``digests``, concatenated in that order."""
    if not body.digests:
        raise InvalidInput("a blob batch names no digests")
    if len(body.digests) > MAX_BLOBS:
        raise TooLarge(f"a blob batch names at most {MAX_BLOBS} digests")
    for digest in body.digests:
        check_digest(digest)
    hidden = set(body.digests) - registry.blobs_visible(project, body.digests)
    if hidden:
        raise NotFound(f"no version in project {project} references blob {min(hidden)}")
    return Response(
        registry.store.read_many(body.digests, MAX_BYTES), media_type="application/octet-stream"
    )


@router.put(
    "/blob-batch",
    status_code=201,
    responses=answers(404, 429, 507),
    openapi_extra=bytes_body("a JSON line `[[digest, size], ...]`, then the blobs' bytes in order"),
)
async def put_blob_batch(
    request: Request, registry: RegistryDep, project: Project
) -> dict[str, Any]:
    """Store many small blobs: a JSON line ``[[digest, size], ...]``, then their bytes."""
    length = request.headers.get("content-length")
    if length is None or not length.isdigit():
        raise InvalidInput("a blob batch upload needs a Content-Length")
    with upload_slot(request):
        body = await request.body()
        stored = await run_in_threadpool(_store_batch, registry, project, body)
    return {"stored": stored}


def _store_batch(registry: Registry, project: str, body: bytes) -> list[str]:
    """Worker thread: check every blob of the batch, then write and record them all."""
    blobs = _parse_batch(body)
    digests = [digest for digest, _ in blobs]
    hidden = set(digests) - registry.blobs_uploadable(project, digests)
    if hidden:
        raise NotFound(f"no upload or version of project {project} names blob {min(hidden)}")
    for digest, data in blobs:
        if hashlib.sha256(data).hexdigest() != digest:
            raise DigestMismatch(f"the bytes sent for blob {digest} hash to something else")
    # Stored already (for this project or another): content-addressed, nothing to
    # write, but the project has now sent the bytes, so it holds them. Held under
    # the blobs' locks: one that a gc (on any server) forgot since this first look
    # is not held, and its bytes, which we have, are written as if never stored.
    stored = registry.stored_blobs(digests)
    held = registry.hold_stored(project, stored) if stored else {}
    written = [write_whole(registry, digest, data) for digest, data in blobs if digest not in held]
    if written:
        registry.record_blobs(written, project)
    return digests


def _parse_batch(body: bytes) -> list[tuple[str, memoryview]]:
    header, newline, rest = body.partition(b"\n")
    if not newline:
        raise InvalidInput("a blob batch upload starts with a JSON line [[digest, size], ...]")
    try:
        listed = json.loads(header)
    except ValueError as exc:
        raise InvalidInput(f"the first line of a blob batch upload is not JSON: {exc}") from exc
    if not isinstance(listed, list) or not listed:
        raise InvalidInput("a blob batch upload names its blobs as [[digest, size], ...]")
    if len(listed) > MAX_BLOBS:
        raise TooLarge(f"a blob batch upload holds at most {MAX_BLOBS} blobs")
    blobs: list[tuple[str, memoryview]] = []
    view = memoryview(rest)
    offset = 0
    for item in listed:
        if not (isinstance(item, list) and len(item) == 2 and type(item[1]) is int):
            raise InvalidInput(f"blob batch entry {item!r} is not [digest, size]")
        digest, size = check_digest(item[0]), item[1]
        if size < 0:
            raise InvalidInput(f"blob batch entry {item!r} has a negative size")
        blobs.append((digest, view[offset : offset + size]))
        offset += size
    if offset != len(rest) or len({digest for digest, _ in blobs}) != len(blobs):
        raise InvalidInput(
            f"a blob batch upload must carry each blob once and exactly its bytes: "
            f"{len(rest)} bytes follow the JSON line, the blobs add up to {offset}"
        )
    return blobs
