"""Collections (``REGISTRY/COLLECTION``): their members (links to versions) and aliases.

The rules are ``artfs.server.collections``; docs/design.md, "Collections".
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from artfs import names
from artfs.server.models import LinkVersion, SetAlias
from artfs.server.openapi import (
    AliasPath,
    CollectionCursor,
    CollectionPath,
    PageLimit,
    RefPath,
    RegistryPath,
    VersionCursor,
    answers,
)
from artfs.server.routes.deps import Project, RegistryDep

router = APIRouter(prefix="/api/v1/projects/{project}/collections")

JSON = dict[str, Any]
#: One collection: ``registry_name`` is the REGISTRY of ``REGISTRY/COLLECTION``.
ONE = "/{registry_name}/{collection}"


@router.get("", responses=answers())
def list_collections(
    registry: RegistryDep,
    project: Project,
    cursor: CollectionCursor = None,
    limit: PageLimit = 1000,
) -> JSON:
    return registry.collections.list_collections(project, cursor, limit)


@router.get(ONE, responses=answers(404))
def get_collection(
    registry: RegistryDep, project: Project, registry_name: RegistryPath, collection: CollectionPath
) -> JSON:
    return registry.collections.get_collection(project, f"{registry_name}/{collection}")


@router.delete(ONE, responses=answers(404))
def delete_collection(
    registry: RegistryDep, project: Project, registry_name: RegistryPath, collection: CollectionPath
) -> JSON:
    """Remove the collection, its links and aliases; the versions stay. Answers what it was."""
    return registry.collections.delete_collection(project, f"{registry_name}/{collection}")


@router.get(ONE + "/members", responses=answers(404))
def list_members(
    registry: RegistryDep,
    project: Project,
    registry_name: RegistryPath,
    collection: CollectionPath,
    cursor: VersionCursor = None,
    limit: PageLimit = 1000,
) -> JSON:
    after = names.parse_version_cursor(cursor) if cursor is not None else None
    return registry.collections.list_members(project, f"{registry_name}/{collection}", after, limit)


@router.post(ONE + "/members", responses=answers(404, 409))
def link(
    registry: RegistryDep,
    project: Project,
    registry_name: RegistryPath,
    collection: CollectionPath,
    body: LinkVersion,
) -> JSON:
    """Link a version (creating the collection); linking it again only moves the aliases."""
    return registry.collections.link(
        project, f"{registry_name}/{collection}", body.artifact, body.version, body.aliases
    )


@router.get(ONE + "/members/{ref}", responses=answers(404))
def get_member(
    registry: RegistryDep,
    project: Project,
    registry_name: RegistryPath,
    collection: CollectionPath,
    ref: RefPath,
) -> JSON:
    return registry.collections.get_member(project, f"{registry_name}/{collection}", ref)


@router.delete(ONE + "/members/{ref}", responses=answers(404))
def unlink(
    registry: RegistryDep,
    project: Project,
    registry_name: RegistryPath,
    collection: CollectionPath,
    ref: RefPath,
) -> JSON:
    """Remove a member and its aliases; the version is untouched. Answers what was removed."""
    return registry.collections.unlink(project, f"{registry_name}/{collection}", ref)


@router.put(ONE + "/aliases/{alias}", responses=answers(404, 409))
def set_alias(
    registry: RegistryDep,
    project: Project,
    registry_name: RegistryPath,
    collection: CollectionPath,
    alias: AliasPath,
    body: SetAlias,
) -> JSON:
    return registry.collections.set_alias(
        project,
        f"{registry_name}/{collection}",
        alias,
        body.version,
        body.expect,
        body.check_expect,
    )


@router.delete(ONE + "/aliases/{alias}", status_code=204, responses=answers(404))
def delete_alias(
    registry: RegistryDep,
    project: Project,
    registry_name: RegistryPath,
    collection: CollectionPath,
    alias: AliasPath,
) -> Response:
    registry.collections.delete_alias(project, f"{registry_name}/{collection}", alias)
    return Response(status_code=204)
