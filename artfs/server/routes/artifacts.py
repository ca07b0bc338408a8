"""Artifacts, their versions, files, aliases and tags (everything but uploads and blobs)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from artfs import names
from artfs.server.models import CreateArtifact, SetAlias, UpdateArtifact, UpdateVersion
from artfs.server.routes.deps import Project, RegistryDep

router = APIRouter(prefix="/api/v1/projects/{project}")

JSON = dict[str, Any]


@router.get("/artifacts")
def list_artifacts(
    registry: RegistryDep, project: Project, cursor: str | None = None, limit: int = 1000
) -> JSON:
    return registry.list_artifacts(project, cursor, limit)


@router.post("/artifacts", status_code=201)
def create_artifact(registry: RegistryDep, project: Project, body: CreateArtifact) -> JSON:
    return registry.create_artifact(project, body.name, body.type, body.description, body.metadata)


@router.get("/artifacts/{name}")
def get_artifact(registry: RegistryDep, project: Project, name: str) -> JSON:
    return registry.get_artifact(project, name)


@router.patch("/artifacts/{name}")
def update_artifact(
    registry: RegistryDep, project: Project, name: str, body: UpdateArtifact
) -> JSON:
    return registry.update_artifact(project, name, body.description, body.metadata)


@router.get("/artifacts/{name}/versions")
def list_versions(
    registry: RegistryDep,
    project: Project,
    name: str,
    cursor: str | None = None,
    limit: int = 1000,
    include_deleted: bool = False,
) -> JSON:
    after = names.parse_version_cursor(cursor) if cursor is not None else None
    return registry.list_versions(project, name, after, limit, include_deleted)


@router.get("/artifacts/{name}/versions/{ref}")
def get_version(registry: RegistryDep, project: Project, name: str, ref: str) -> JSON:
    return registry.get_version(project, name, ref)


@router.patch("/artifacts/{name}/versions/{ref}")
def update_version(
    registry: RegistryDep, project: Project, name: str, ref: str, body: UpdateVersion
) -> JSON:
    return registry.update_version(project, name, ref, body.description, body.metadata)


@router.delete("/artifacts/{name}/versions/{ref}")
def delete_version(
    registry: RegistryDep, project: Project, name: str, ref: str, delete_aliases: bool = False
) -> JSON:
    return registry.delete_version(project, name, ref, delete_aliases)


@router.get("/artifacts/{name}/versions/{ref}/files")
def list_files(
    registry: RegistryDep,
    project: Project,
    name: str,
    ref: str,
    cursor: str | None = None,
    limit: int = 1000,
    prefix: str | None = None,
) -> JSON:
    return registry.list_files(project, name, ref, cursor, limit, prefix)


@router.get(
    "/artifacts/{name}/versions/{ref}/manifest",
    response_class=Response,
    responses={200: {"content": {"application/json": {}}}},
)
def get_manifest(registry: RegistryDep, project: Project, name: str, ref: str) -> Response:
    """The version's whole file list as parallel arrays: paths, sizes, digests, uris."""
    return Response(registry.manifest(project, name, ref), media_type="application/json")


@router.put("/artifacts/{name}/versions/{ref}/tags/{tag}")
def add_tag(registry: RegistryDep, project: Project, name: str, ref: str, tag: str) -> JSON:
    return registry.add_tag(project, name, ref, tag)


@router.delete("/artifacts/{name}/versions/{ref}/tags/{tag}")
def remove_tag(registry: RegistryDep, project: Project, name: str, ref: str, tag: str) -> JSON:
    return registry.remove_tag(project, name, ref, tag)


@router.put("/artifacts/{name}/aliases/{alias}")
def set_alias(
    registry: RegistryDep, project: Project, name: str, alias: str, body: SetAlias
) -> JSON:
    return registry.set_alias(project, name, alias, body.version, body.expect, body.check_expect)


@router.delete("/artifacts/{name}/aliases/{alias}", status_code=204)
def delete_alias(registry: RegistryDep, project: Project, name: str, alias: str) -> Response:
    registry.delete_alias(project, name, alias)
    return Response(status_code=204)
