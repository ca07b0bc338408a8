"""What belongs to an artifact as a whole: its tags (Comet's ``artifact_tags``) and its
deletion with every version.

Deleting an artifact tombstones it, as deleting a version does: its versions
become DELETED (gc reclaims the blobs no other version names), its aliases
and tags go, and the row stays, under a name no artifact can have (``#ID``,
the old one kept in ``deleted_name``), so runs that made or read its versions
keep their history and the name is free for a new artifact at once. It is
refused while a version is linked into a collection, unless forced, which
unlinks them (docs/design.md, "Artifact tags and deletion").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, insert, select, update

from artfs import names
from artfs.errors import Conflict
from artfs.server.db.schema import aliases, artifact_tags, artifacts, versions
from artfs.server.registry import COMMITTED, DELETED, Registry

__all__ = ["ArtifactLevel"]


class ArtifactLevel:
    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def tags(self, project: str, name: str) -> dict[str, Any]:
        registry = self._registry
        with registry.transaction() as conn:
            artifact = registry.artifact_row(conn, project, name)
            return {"tags": registry.artifact_tags_of(conn, artifact["id"])}

    def set_tags(self, project: str, name: str, tags: Sequence[str]) -> dict[str, Any]:
        """Replace the artifact's tags with ``tags`` (in any order, duplicates once)."""
        wanted = sorted({names.check_tag(tag) for tag in tags})
        registry = self._registry
        with registry.transaction(write=True) as conn:
            artifact = registry.artifact_row(conn, project, name, lock=True)
            conn.execute(delete(artifact_tags).where(artifact_tags.c.artifact_id == artifact["id"]))
            if wanted:
                conn.execute(
                    insert(artifact_tags),
                    [{"artifact_id": artifact["id"], "tag": tag} for tag in wanted],
                )
        return {"tags": wanted}

    def delete(self, project: str, name: str, force: bool) -> dict[str, Any]:
        registry = self._registry
        with registry.transaction(write=True) as conn:
            artifact = registry.artifact_row(conn, project, name, lock=True)
            ids = list(
                conn.execute(
                    select(versions.c.id).where(
                        versions.c.artifact_id == artifact["id"], versions.c.state == COMMITTED
                    )
                ).scalars()
            )
            links = registry.collections.links_of(conn, ids)
            if links and not force:
                raise Conflict(
                    f"{name} has versions linked as {', '.join(links)}; unlink them first "
                    "or delete it with force"
                )
            registry.collections.drop_links(conn, ids)
            now = registry.clock()
            conn.execute(delete(aliases).where(aliases.c.artifact_id == artifact["id"]))
            conn.execute(delete(artifact_tags).where(artifact_tags.c.artifact_id == artifact["id"]))
            if ids:
                conn.execute(
                    update(versions)
                    .where(versions.c.id.in_(ids))
                    .values(state=DELETED, deleted_at=now)
                )
            conn.execute(
                update(artifacts)
                .where(artifacts.c.id == artifact["id"])
                .values(name=f"#{artifact['id']}", deleted_name=name, deleted_at=now)
            )
        registry.forget_uploadable()
        return {"project": project, "name": name, "versions_deleted": len(ids)}
