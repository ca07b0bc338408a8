"""The two-step version create: start an upload with its manifest, add files, commit."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from artfs.server.models import AddFiles, CommitUpload, Digests, ManifestEntry, StartUpload
from artfs.server.openapi import NamePath, UploadIdPath, answers
from artfs.server.registry import FileEntry
from artfs.server.routes.deps import Project, RegistryDep

router = APIRouter(prefix="/api/v1/projects/{project}")

JSON = dict[str, Any]


def _entries(raw: list[ManifestEntry]) -> list[FileEntry]:
    return [FileEntry.parse(entry.model_dump(exclude_none=True)) for entry in raw]


@router.post("/artifacts/{name}/uploads", status_code=201, responses=answers(409))
def start_upload(
    registry: RegistryDep, project: Project, name: NamePath, body: StartUpload
) -> JSON:
    """Create a PENDING version; the answer lists the blobs the server lacks."""
    return registry.start_upload(
        project,
        name,
        type_=body.type,
        description=body.description,
        metadata=body.metadata,
        semver=body.semver,
        source=body.source,
        ttl_seconds=body.ttl_seconds,
        entries=_entries(body.files),
    )


@router.post("/uploads/{upload_id}/files", responses=answers(404, 409))
def add_files(
    registry: RegistryDep, project: Project, upload_id: UploadIdPath, body: AddFiles
) -> JSON:
    return registry.add_files(project, upload_id, _entries(body.files))


@router.post("/uploads/{upload_id}/commit", responses=answers(404, 409))
def commit_upload(
    registry: RegistryDep, project: Project, upload_id: UploadIdPath, body: CommitUpload
) -> JSON:
    return registry.commit_upload(
        project,
        upload_id,
        aliases_=body.aliases,
        tags=body.tags,
        alias_expect=body.alias_expect,
        force=body.force,
    )


@router.delete("/uploads/{upload_id}", status_code=204, responses=answers(404, 409))
def abort_upload(registry: RegistryDep, project: Project, upload_id: UploadIdPath) -> Response:
    registry.abort_upload(project, upload_id)
    return Response(status_code=204)


@router.post("/blobs/missing", responses=answers())
def missing_blobs(registry: RegistryDep, project: Project, body: Digests) -> JSON:
    return {"missing": registry.missing_blobs(project, body.digests)}
