"""Artifacts, their versions, files, aliases and tags (everything but uploads and blobs)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from artfs import names
from artfs.server.models import (
    ArtifactTags,
    CreateArtifact,
    SetAlias,
    UpdateArtifact,
    UpdateVersion,
)
from artfs.server.openapi import (
    AliasPath,
    NamePath,
    PageLimit,
    RefPath,
    TagPath,
    VersionCursor,
    answers,
)
from artfs.server.routes.deps import Project, RegistryDep

router = APIRouter(prefix="/api/v1/projects/{project}")

JSON = dict[str, Any]


@router.get("/artifacts", responses=answers())
def list_artifacts(
    registry: RegistryDep, project: Project, cursor: str | None = None, limit: PageLimit = 1000
) -> JSON:
    return registry.list_artifacts(project, cursor, limit)


@router.post("/artifacts", status_code=201, responses=answers(409))
def create_artifact(registry: RegistryDep, project: Project, body: CreateArtifact) -> JSON:
    return registry.create_artifact(project, body.name, body.type, body.description, body.metadata)


@router.get("/artifacts/{name}", responses=answers(404))
def get_artifact(registry: RegistryDep, project: Project, name: NamePath) -> JSON:
    return registry.get_artifact(project, name)


@router.patch("/artifacts/{name}", responses=answers(404))
def update_artifact(
    registry: RegistryDep, project: Project, name: NamePath, body: UpdateArtifact
) -> JSON:
    return registry.update_artifact(project, name, body.description, body.metadata)


@router.delete("/artifacts/{name}", responses=answers(404, 409))
def delete_artifact(
    registry: RegistryDep, project: Project, name: NamePath, force: bool = False
) -> JSON:
    """Delete the artifact with all its versions; refused while one is linked, unless forced."""
    return registry.artifact_level.delete(project, name, force)


@router.get("/artifacts/{name}/tags", responses=answers(404))
def get_artifact_tags(registry: RegistryDep, project: Project, name: NamePath) -> JSON:
    return registry.artifact_level.tags(project, name)


@router.put("/artifacts/{name}/tags", responses=answers(404))
def set_artifact_tags(
    registry: RegistryDep, project: Project, name: NamePath, body: ArtifactTags
) -> JSON:
    return registry.artifact_level.set_tags(project, name, body.tags)


@router.get("/artifacts/{name}/versions", responses=answers(404))
def list_versions(
    registry: RegistryDep,
    project: Project,
    name: NamePath,
    cursor: VersionCursor = None,
    limit: PageLimit = 1000,
    include_deleted: bool = False,
) -> JSON:
    after = names.parse_version_cursor(cursor) if cursor is not None else None
    return registry.list_versions(project, name, after, limit, include_deleted)


@router.get("/artifacts/{name}/versions/{ref}", responses=answers(404))
def get_version(registry: RegistryDep, project: Project, name: NamePath, ref: RefPath) -> JSON:
    return registry.get_version(project, name, ref)


@router.patch("/artifacts/{name}/versions/{ref}", responses=answers(404))
def update_version(
    registry: RegistryDep, project: Project, name: NamePath, ref: RefPath, body: UpdateVersion
) -> JSON:
    return registry.update_version(
        project,
        name,
        ref,
        body.description,
        body.metadata,
        set_ttl="ttl_seconds" in body.model_fields_set,
        ttl_seconds=body.ttl_seconds,
    )


@router.delete("/artifacts/{name}/versions/{ref}", responses=answers(404, 409))
def delete_version(
    registry: RegistryDep,
    project: Project,
    name: NamePath,
    ref: RefPath,
    delete_aliases: bool = False,
) -> JSON:
    return registry.delete_version(project, name, ref, delete_aliases)


@router.get("/artifacts/{name}/versions/{ref}/files", responses=answers(404))
def list_files(
    registry: RegistryDep,
    project: Project,
    name: NamePath,
    ref: RefPath,
    cursor: str | None = None,
    limit: PageLimit = 1000,
    prefix: str | None = None,
) -> JSON:
    return registry.list_files(project, name, ref, cursor, limit, prefix)


@router.get(
    "/artifacts/{name}/versions/{ref}/manifest",
    response_class=Response,
    responses={200: {"content": {"application/json": {}}}, **answers(404)},
)
def get_manifest(registry: RegistryDep, project: Project, name: NamePath, ref: RefPath) -> Response:
    """The version's whole file list as parallel arrays: paths, sizes, digests, uris."""
    return Response(registry.manifest(project, name, ref), media_type="application/json")


@router.get("/artifacts/{name}/versions/{ref}/links", responses=answers(404))
def version_links(registry: RegistryDep, project: Project, name: NamePath, ref: RefPath) -> JSON:
    """The collections' members that link this version (docs/design.md, "Collections")."""
    return registry.collections.version_links(project, name, ref)


@router.put("/artifacts/{name}/versions/{ref}/tags/{tag}", responses=answers(404))
def add_tag(
    registry: RegistryDep, project: Project, name: NamePath, ref: RefPath, tag: TagPath
) -> JSON:
    return registry.add_tag(project, name, ref, tag)


@router.delete("/artifacts/{name}/versions/{ref}/tags/{tag}", responses=answers(404))
def remove_tag(
    registry: RegistryDep, project: Project, name: NamePath, ref: RefPath, tag: TagPath
) -> JSON:
    return registry.remove_tag(project, name, ref, tag)


@router.put("/artifacts/{name}/aliases/{alias}", responses=answers(404, 409))
def set_alias(
    registry: RegistryDep, project: Project, name: NamePath, alias: AliasPath, body: SetAlias
) -> JSON:
    return registry.set_alias(project, name, alias, body.version, body.expect, body.check_expect)


@router.delete("/artifacts/{name}/aliases/{alias}", status_code=204, responses=answers(404))
def delete_alias(
    registry: RegistryDep, project: Project, name: NamePath, alias: AliasPath
) -> Response:
    registry.delete_alias(project, name, alias)
    return Response(status_code=204)
