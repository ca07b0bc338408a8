"""Many small blobs in one response, for readers walking a directory of small files.

A mount reading 10,000 files of 4 KiB would otherwise pay one HTTP round trip
per file; here it asks for up to ``MAX_BLOBS`` digests at once and gets their
bytes back to back, in the order asked, with nothing between them: the client
knows each blob's size from the manifest and verifies each against its digest.
Only blobs that some version of the project references may be asked for, as
for single blob reads.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from artfs.digests import check_digest
from artfs.errors import InvalidInput, NotFound, TooLarge
from artfs.server.models import BlobBatch
from artfs.server.routes.deps import Project, RegistryDep, bounded_body

router = APIRouter(prefix="/api/v1/projects/{project}")

#: Digests per request, and bytes per response: a batch is held in memory whole.
MAX_BLOBS = 1024
MAX_BYTES = 32 << 20


@router.post(
    "/blob-batch",
    dependencies=[Depends(bounded_body)],
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
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
