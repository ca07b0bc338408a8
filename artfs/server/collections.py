"""Collections: ``REGISTRY/COLLECTION`` of a project, holding links to versions.

A collection (W&B's portfolio and model registry, a DVC/GTO registered model)
is created by its first link. Each link is a **member** with a number of its
own (``v1, v2, …`` in link order, never reused) and names one committed
version of an artifact of the same project; nothing is copied. The
collection's **aliases** (``production``, ``staging``: GTO's stages) point at
members and move by compare-and-swap exactly as artifact aliases do;
``latest`` is kept on the newest member. docs/design.md, "Collections".

Every change runs in one write transaction of the registry's (see
``Registry``), so member numbers and alias swaps never race. A version leaves
every collection when it is deleted or expires (``Registry.drop_links``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError

from artfs import names
from artfs.errors import Conflict, InvalidInput, NotFound
from artfs.server.db.schema import (
    artifacts,
    collection_aliases,
    collection_members,
    collections,
    versions,
)
from artfs.server.registry import Registry, _iso, _page_limit

__all__ = ["Collections"]

LATEST = "latest"
COMMITTED = "COMMITTED"


class Collections:
    """The rules of collections, on the registry's database and transactions."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    # -- lookups ------------------------------------------------------------------

    def _collection(
        self, conn: Connection, project: str, path: names.CollectionPath, lock: bool = False
    ) -> RowMapping:
        query = select(collections).where(
            collections.c.project == project,
            collections.c.registry == path.registry,
            collections.c.name == path.collection,
        )
        if lock:
            query = query.with_for_update()
        row = conn.execute(query).mappings().first()
        if row is None:
            raise NotFound(f"collection {path} does not exist")
        return row

    def _member(self, conn: Connection, collection: RowMapping, ref: str) -> RowMapping:
        """The member ``ref`` names: its number (``v2``) or an alias of the collection."""
        parsed = names.parse_version_ref(ref)
        path = f"{collection['registry']}/{collection['name']}"
        if parsed.kind == "semver":
            raise InvalidInput(
                f"{path}:{ref}: members of a collection are named by number (v1) or alias"
            )
        query = self._live_members(collection)
        if parsed.kind == "number":
            query = query.where(collection_members.c.number == parsed.number)
        elif parsed.value == LATEST:
            # The newest visible member: the alias row may name one whose version expired.
            query = query.order_by(collection_members.c.number.desc()).limit(1)
        else:
            query = query.join(
                collection_aliases, collection_aliases.c.member_id == collection_members.c.id
            ).where(
                collection_aliases.c.collection_id == collection["id"],
                collection_aliases.c.name == parsed.value,
            )
        row = conn.execute(query).mappings().first()
        if row is None:
            raise NotFound(f"{path}:{ref} does not exist")
        return row

    def _live_members(self, collection: RowMapping) -> Select[Any]:
        """The members of ``collection`` whose version is visible (not expired)."""
        return (
            select(collection_members)
            .join(versions, versions.c.id == collection_members.c.version_id)
            .where(collection_members.c.collection_id == collection["id"], self._registry.live())
        )

    # -- JSON views ---------------------------------------------------------------

    def _collection_json(self, conn: Connection, row: RowMapping) -> dict[str, Any]:
        live = self._registry.live()
        alias_rows = conn.execute(
            select(collection_aliases.c.name, collection_members.c.number)
            .join(collection_members, collection_members.c.id == collection_aliases.c.member_id)
            .join(versions, versions.c.id == collection_members.c.version_id)
            .where(
                collection_aliases.c.collection_id == row["id"],
                collection_aliases.c.name != LATEST,
                live,
            )
            .order_by(collection_aliases.c.name)
        ).all()
        numbers = self._live_members(row).with_only_columns(collection_members.c.number)
        count = conn.execute(select(func.count()).select_from(numbers.subquery())).scalar_one()
        newest = conn.execute(
            numbers.order_by(collection_members.c.number.desc()).limit(1)
        ).scalar()
        alias_map = {name: f"v{number}" for name, number in alias_rows}
        if newest is not None:
            alias_map = dict(sorted({**alias_map, LATEST: f"v{newest}"}.items()))
        return {
            "project": row["project"],
            "registry": row["registry"],
            "name": row["name"],
            "path": f"{row['registry']}/{row['name']}",
            "type": row["type"],
            "created_at": _iso(row["created_at"]),
            "aliases": alias_map,
            "latest": alias_map.get(LATEST),
            "member_count": count,
        }

    def _members_json(
        self, conn: Connection, collection: RowMapping, members: Sequence[RowMapping]
    ) -> list[dict[str, Any]]:
        """Members as the API answers them: the member, and the whole version it links."""
        registry = self._registry
        ids = [member["id"] for member in members]
        aliases_of: dict[int, list[str]] = {}
        if ids:
            # ``latest`` is the newest visible member, whatever its alias row says.
            newest = conn.execute(
                self._live_members(collection)
                .with_only_columns(collection_members.c.id)
                .order_by(collection_members.c.number.desc())
                .limit(1)
            ).scalar()
            for name, member_id in conn.execute(
                select(collection_aliases.c.name, collection_aliases.c.member_id)
                .where(collection_aliases.c.member_id.in_(ids), collection_aliases.c.name != LATEST)
                .order_by(collection_aliases.c.name)
            ):
                aliases_of.setdefault(member_id, []).append(name)
            if newest is not None and newest in ids:
                aliases_of[newest] = sorted([*aliases_of.get(newest, []), LATEST])
        version_ids = [member["version_id"] for member in members]
        version_rows = (
            conn.execute(select(versions).where(versions.c.id.in_(version_ids))).mappings().all()
            if version_ids
            else []
        )
        artifact_ids = {row["artifact_id"] for row in version_rows}
        artifact_rows = {
            row["id"]: row
            for row in conn.execute(select(artifacts).where(artifacts.c.id.in_(artifact_ids)))
            .mappings()
            .all()
        }
        # One description per artifact's versions, not per member: its aliases and
        # tags are a query each (1,000 members: 165 ms one by one, 18 ms so).
        described: dict[int, dict[str, Any]] = {}
        for artifact_id, artifact in artifact_rows.items():
            rows = [row for row in version_rows if row["artifact_id"] == artifact_id]
            for row, view in zip(rows, registry.versions_json(conn, artifact, rows), strict=True):
                described[row["id"]] = view
        return [
            {
                "project": collection["project"],
                "collection": f"{collection['registry']}/{collection['name']}",
                "member": f"v{member['number']}",
                "number": member["number"],
                "aliases": aliases_of.get(member["id"], []),
                "linked_at": _iso(member["linked_at"]),
                "version": described[member["version_id"]],
            }
            for member in members
        ]

    def _member_json(
        self, conn: Connection, collection: RowMapping, member: RowMapping
    ) -> dict[str, Any]:
        return self._members_json(conn, collection, [member])[0]

    # -- reads --------------------------------------------------------------------

    def list_collections(self, project: str, cursor: str | None, limit: int) -> dict[str, Any]:
        """Collections in (registry, name) order; ``cursor`` is the last path of a page."""
        names.check_name(project)
        limit = _page_limit(limit)
        with self._registry.transaction() as conn:
            query = select(collections).where(collections.c.project == project)
            if cursor is not None:  # empty: refused (400) as the schema says
                after = names.check_collection_path(cursor)
                query = query.where(
                    or_(
                        collections.c.registry > after.registry,
                        (collections.c.registry == after.registry)
                        & (collections.c.name > after.collection),
                    )
                )
            rows = (
                conn.execute(
                    query.order_by(collections.c.registry, collections.c.name).limit(limit + 1)
                )
                .mappings()
                .all()
            )
            page = rows[:limit]
            last = page[-1] if page else None
            return {
                "collections": [self._collection_json(conn, row) for row in page],
                "next_cursor": (
                    f"{last['registry']}/{last['name']}"
                    if last is not None and len(rows) > limit
                    else None
                ),
            }

    def get_collection(self, project: str, path: str) -> dict[str, Any]:
        where = names.check_collection_path(path)
        with self._registry.transaction() as conn:
            return self._collection_json(conn, self._collection(conn, project, where))

    def list_members(
        self, project: str, path: str, cursor: int | None, limit: int
    ) -> dict[str, Any]:
        """Members in link order (their numbers)."""
        where = names.check_collection_path(path)
        limit = _page_limit(limit)
        with self._registry.transaction() as conn:
            collection = self._collection(conn, project, where)
            query = self._live_members(collection)
            if cursor is not None:
                query = query.where(collection_members.c.number > cursor)
            rows = (
                conn.execute(query.order_by(collection_members.c.number).limit(limit + 1))
                .mappings()
                .all()
            )
            page = rows[:limit]
            return {
                "members": self._members_json(conn, collection, page),
                "next_cursor": str(page[-1]["number"]) if len(rows) > limit else None,
            }

    def get_member(self, project: str, path: str, ref: str) -> dict[str, Any]:
        where = names.check_collection_path(path)
        with self._registry.transaction() as conn:
            collection = self._collection(conn, project, where)
            return self._member_json(conn, collection, self._member(conn, collection, ref))

    def version_links(self, project: str, name: str, ref: str) -> dict[str, Any]:
        """Every member that links version ``name:ref``, by collection (W&B's
        ``linked_artifacts``)."""
        registry = self._registry
        with registry.transaction() as conn:
            _, version = registry.find_version(conn, project, name, ref)
            rows = (
                conn.execute(
                    select(collection_members, collections.c.registry, collections.c.name)
                    .join(collections, collections.c.id == collection_members.c.collection_id)
                    .where(collection_members.c.version_id == version["id"])
                    .order_by(collections.c.registry, collections.c.name)
                )
                .mappings()
                .all()
            )
            members: list[dict[str, Any]] = []
            for row in rows:
                collection = self._collection(
                    conn, project, names.CollectionPath(row["registry"], row["name"])
                )
                members += self._members_json(conn, collection, [row])
            return {"members": members}

    # -- changes ------------------------------------------------------------------

    def link(
        self, project: str, path: str, artifact: str, ref: str, aliases: Sequence[str]
    ) -> dict[str, Any]:
        """Link ``artifact:ref`` into ``path`` (creating the collection), then point
        ``aliases`` at its member. Linking a member again only moves the aliases."""
        names.check_name(project)
        where = names.check_collection_path(path)
        names.check_name(artifact)
        for alias in aliases:
            _check_settable(alias)
        registry = self._registry
        clock = registry.clock
        try:
            with registry.transaction(write=True) as conn:
                source = registry.artifact_row(conn, project, artifact)
                version = registry.version_row(conn, source, ref)
                collection = (
                    conn.execute(
                        select(collections)
                        .where(
                            collections.c.project == project,
                            collections.c.registry == where.registry,
                            collections.c.name == where.collection,
                        )
                        .with_for_update()
                    )
                    .mappings()
                    .first()
                )
                if collection is None:
                    conn.execute(
                        insert(collections).values(
                            project=project,
                            registry=where.registry,
                            name=where.collection,
                            type=source["type"],
                            created_at=clock(),
                            next_number=1,
                        )
                    )
                    collection = self._collection(conn, project, where)
                elif collection["type"] != source["type"]:
                    raise Conflict(
                        f"{where} holds versions of type {collection['type']!r}; "
                        f"{artifact} is of type {source['type']!r}"
                    )
                member = (
                    conn.execute(
                        select(collection_members).where(
                            collection_members.c.collection_id == collection["id"],
                            collection_members.c.version_id == version["id"],
                        )
                    )
                    .mappings()
                    .first()
                )
                if member is None:
                    number = collection["next_number"]
                    conn.execute(
                        update(collections)
                        .where(collections.c.id == collection["id"])
                        .values(next_number=number + 1)
                    )
                    conn.execute(
                        insert(collection_members).values(
                            collection_id=collection["id"],
                            number=number,
                            version_id=version["id"],
                            linked_at=clock(),
                        )
                    )
                    member = self._member(conn, collection, f"v{number}")
                    self._point(conn, collection["id"], LATEST, member["id"])
                for alias in dict.fromkeys(aliases):
                    self._point(conn, collection["id"], alias, member["id"])
                return self._member_json(conn, collection, member)
        except IntegrityError as exc:  # two first links of one collection at once
            raise Conflict(f"{where} changed meanwhile; link again") from exc

    def unlink(self, project: str, path: str, ref: str) -> dict[str, Any]:
        """Remove a member (and its aliases); the version itself is untouched."""
        where = names.check_collection_path(path)
        with self._registry.transaction(write=True) as conn:
            collection = self._collection(conn, project, where, lock=True)
            member = self._member(conn, collection, ref)
            answer = self._member_json(conn, collection, member)
            self._drop_members(conn, [member["id"]])
        return answer

    def delete_collection(self, project: str, path: str) -> dict[str, Any]:
        """Remove the collection with every link and alias; no version is touched.
        Linking into the same path later starts a new one, at member v1."""
        where = names.check_collection_path(path)
        with self._registry.transaction(write=True) as conn:
            collection = self._collection(conn, project, where, lock=True)
            answer = self._collection_json(conn, collection)
            conn.execute(
                delete(collection_aliases).where(
                    collection_aliases.c.collection_id == collection["id"]
                )
            )
            conn.execute(
                delete(collection_members).where(
                    collection_members.c.collection_id == collection["id"]
                )
            )
            conn.execute(delete(collections).where(collections.c.id == collection["id"]))
        return answer

    def set_alias(
        self,
        project: str,
        path: str,
        alias: str,
        ref: str,
        expect: str | None,
        check_expect: bool,
    ) -> dict[str, Any]:
        where = names.check_collection_path(path)
        _check_settable(alias)
        with self._registry.transaction(write=True) as conn:
            collection = self._collection(conn, project, where, lock=True)
            member = self._member(conn, collection, ref)
            if check_expect:
                self._check_expectation(conn, collection, alias, expect)
            self._point(conn, collection["id"], alias, member["id"])
            return self._member_json(conn, collection, member)

    def delete_alias(self, project: str, path: str, alias: str) -> None:
        where = names.check_collection_path(path)
        _check_settable(alias, "removed")
        with self._registry.transaction(write=True) as conn:
            collection = self._collection(conn, project, where, lock=True)
            gone = conn.execute(
                delete(collection_aliases).where(
                    collection_aliases.c.collection_id == collection["id"],
                    collection_aliases.c.name == alias,
                )
            ).rowcount
            if not gone:
                raise NotFound(f"{where} has no alias {alias}")

    # -- helpers ------------------------------------------------------------------

    def _check_expectation(
        self, conn: Connection, collection: RowMapping, alias: str, expected: str | None
    ) -> None:
        path = f"{collection['registry']}/{collection['name']}"
        current = conn.execute(
            select(collection_members.c.number)
            .join(collection_aliases, collection_aliases.c.member_id == collection_members.c.id)
            .where(
                collection_aliases.c.collection_id == collection["id"],
                collection_aliases.c.name == alias,
            )
        ).scalar()
        shown = "nothing" if current is None else f"v{current}"
        try:
            wanted = (
                None if expected is None else self._member(conn, collection, expected)["number"]
            )
        except NotFound as exc:  # unlinked since the caller looked: the swap is lost
            raise Conflict(
                f"alias {alias} of {path} points at {shown}, not {expected}, which does not exist"
            ) from exc
        if current != wanted:
            raise Conflict(
                f"alias {alias} of {path} points at {shown}, not {expected or 'nothing'}"
            )

    def _point(self, conn: Connection, collection_id: int, alias: str, member_id: int) -> None:
        now = self._registry.clock()
        moved = conn.execute(
            update(collection_aliases)
            .where(
                collection_aliases.c.collection_id == collection_id,
                collection_aliases.c.name == alias,
            )
            .values(member_id=member_id, updated_at=now)
        ).rowcount
        if not moved:
            conn.execute(
                insert(collection_aliases).values(
                    collection_id=collection_id, name=alias, member_id=member_id, updated_at=now
                )
            )

    def _drop_members(self, conn: Connection, member_ids: Sequence[int]) -> None:
        """Remove members and their aliases; ``latest`` moves to the newest one left."""
        if not member_ids:
            return
        touched = set(
            conn.execute(
                select(collection_members.c.collection_id).where(
                    collection_members.c.id.in_(member_ids)
                )
            ).scalars()
        )
        conn.execute(
            delete(collection_aliases).where(collection_aliases.c.member_id.in_(member_ids))
        )
        conn.execute(delete(collection_members).where(collection_members.c.id.in_(member_ids)))
        for collection_id in touched:
            newest = conn.execute(
                select(collection_members.c.id)
                .where(collection_members.c.collection_id == collection_id)
                .order_by(collection_members.c.number.desc())
                .limit(1)
            ).scalar()
            if newest is not None:
                self._point(conn, collection_id, LATEST, newest)

    def links_of(self, conn: Connection, version_ids: Sequence[int]) -> list[str]:
        """Where these versions are linked, as ``REGISTRY/COLLECTION:vN`` (for refusals)."""
        if not version_ids:
            return []
        rows = conn.execute(
            select(collections.c.registry, collections.c.name, collection_members.c.number)
            .join(collections, collections.c.id == collection_members.c.collection_id)
            .where(collection_members.c.version_id.in_(version_ids))
            .order_by(collections.c.registry, collections.c.name, collection_members.c.number)
        ).all()
        return [f"{registry}/{name}:v{number}" for registry, name, number in rows]

    def drop_links(self, conn: Connection, version_ids: Sequence[int]) -> None:
        """Unlink these versions from every collection (they are being deleted)."""
        if not version_ids:
            return
        members = (
            conn.execute(
                select(collection_members.c.id).where(
                    collection_members.c.version_id.in_(version_ids)
                )
            )
            .scalars()
            .all()
        )
        self._drop_members(conn, members)


def _check_settable(alias: str, verb: str = "set") -> None:
    names.check_alias(alias)
    if alias == LATEST:
        raise InvalidInput(f"latest is maintained automatically and cannot be {verb}")
