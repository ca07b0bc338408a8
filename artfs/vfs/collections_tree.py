"""``CollectionsTree``: the read-only ``/.collections`` part of the mounted tree.

What a user sees (docs/design.md, "The mounted tree")::

    /.collections/                       COLLECTIONS  the registries of the project's collections
      <registry>/                        REGISTRY     its collections
        <collection>/                    COLLECTION   members and aliases
          v1/  v2/  latest/  production/ VERSION      the linked version's files

The name starts with ``.``, which no artifact name may, so it never clashes
with an artifact; the root lists it only while the project has a collection.
A member directory is a VERSION node of the linked version (its ``artifact``
and ``number`` are the source's), so everything below it is the version's own
tree: the same manifest, and the same file inodes and page cache as
``<artifact>/vN/``. An alias directory is looked up afresh on every walk and
a member number trusted for a listing's timeout (an unlink is routine), both
refreshed with the listings (``Catalog``). Nothing here is writable.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from artfs.errors import NotFound
from artfs.vfs.catalog import COLLECTIONS, Catalog, CollectionInfo, MemberInfo, members_key
from artfs.vfs.nodes import Kind, Node, TreeSettings, ns

__all__ = ["COLLECTIONS_DIR", "CollectionsTree"]

#: The top-level directory of collections; a name no artifact can have.
COLLECTIONS_DIR = ".collections"

_MEMBER_ID = re.compile(r"v([1-9][0-9]{0,17})")


class CollectionsTree:
    def __init__(
        self, catalog: Catalog, intern: Callable[[Node], Node], settings: TreeSettings
    ) -> None:
        self.catalog = catalog
        self._intern = intern
        self.settings = settings

    # -- nodes --------------------------------------------------------------------

    def top_node(self, mtime_ns: int) -> Node:
        return self._intern(
            Node(
                0,
                Kind.COLLECTIONS,
                COLLECTIONS_DIR,
                ("collections",),
                mtime_ns=mtime_ns,
                entry_timeout=self.settings.listing_timeout,
            )
        )

    def _registry_node(self, registry: str, mtime_ns: int) -> Node:
        return self._intern(
            Node(
                0,
                Kind.REGISTRY,
                registry,
                ("registry", registry),
                collection=registry,
                mtime_ns=mtime_ns,
                entry_timeout=self.settings.listing_timeout,
            )
        )

    def _collection_node(self, info: CollectionInfo) -> Node:
        return self._intern(
            Node(
                0,
                Kind.COLLECTION,
                info.name,
                ("collection", info.path),
                collection=info.path,
                mtime_ns=ns(info.created_at.timestamp()),
                entry_timeout=self.settings.listing_timeout,
            )
        )

    def _member_node(self, member: MemberInfo, label: str) -> Node:
        moving = label != member.label
        version = member.version
        node = self._intern(
            Node(
                0,
                Kind.VERSION,
                label,
                ("member", member.collection, label, str(member.number)),
                artifact=version.artifact,
                number=version.number,
                label=label,
                collection=member.collection,
                mtime_ns=ns(version.committed_at.timestamp()),
                # As for an artifact's aliases: looked up on every walk, so a move shows
                # as soon as the listing does. A member number names one link until it is
                # unlinked, which is routine (unlike deleting a version): a listing's timeout.
                entry_timeout=0 if moving else self.settings.listing_timeout,
            )
        )
        node.root = node.inode
        return node

    # -- names --------------------------------------------------------------------

    async def present(self) -> bool:
        """Whether the root lists ``.collections``: only once the project has one."""
        return bool(await self.catalog.collections())

    async def lookup(self, parent: Node, name: str) -> Node:
        collections = await self.catalog.collections()
        if parent.kind is Kind.COLLECTIONS:
            mine = [info for info in collections.values() if info.registry == name]
            if not mine:
                raise NotFound(f"no registry {name} among the collections")
            return self._registry_node(name, _newest(mine))
        if parent.kind is Kind.REGISTRY:
            info = collections.get(f"{parent.collection}/{name}")
            if info is None:
                raise NotFound(f"no collection {parent.collection}/{name}")
            return self._collection_node(info)
        if parent.kind is Kind.COLLECTION:
            return self._member_node(await self._member(parent.collection, name), name)
        raise NotFound(f"{parent.name} is not a directory of collections")

    async def _member(self, path: str, label: str) -> MemberInfo:
        members = await self.catalog.members(path)
        number: int | None = None
        if match := _MEMBER_ID.fullmatch(label):
            number = int(match.group(1))
        else:
            number = (await self.catalog.collection(path)).aliases.get(label)
        member = members.get(number) if number is not None else None
        if member is None and number is not None and label != f"v{number}":
            # The alias may point at a member newer than the cached member list.
            self.catalog.invalidate_members(path)
            member = (await self.catalog.members(path)).get(number)
        if member is None:
            raise NotFound(f"{path} has no member {label}")
        return member

    async def children(self, parent: Node) -> list[Node]:
        collections = await self.catalog.collections()
        if parent.kind is Kind.COLLECTIONS:
            registries: dict[str, list[CollectionInfo]] = {}
            for info in collections.values():
                registries.setdefault(info.registry, []).append(info)
            return [
                self._registry_node(registry, _newest(infos))
                for registry, infos in sorted(registries.items())
            ]
        if parent.kind is Kind.REGISTRY:
            return [
                self._collection_node(info)
                for _, info in sorted(collections.items())
                if info.registry == parent.collection
            ]
        if parent.kind is Kind.COLLECTION:
            members = await self.catalog.members(parent.collection)
            info = await self.catalog.collection(parent.collection)
            nodes = [self._member_node(members[n], f"v{n}") for n in sorted(members)]
            nodes += [
                self._member_node(members[number], alias)
                for alias, number in sorted(info.aliases.items())
                if number in members
            ]
            return nodes
        raise NotFound(f"{parent.name} is not a directory of collections")

    # -- extended attributes --------------------------------------------------------

    async def xattrs(self, node: Node) -> dict[str, bytes]:
        """A member directory: the linked version's attributes, and how it is linked."""
        if node.kind is Kind.COLLECTION:
            info = await self.catalog.collection(node.collection)
            return {"user.artfs.type": info.type.encode(), **self._stale(node.collection)}
        if node.kind is not Kind.VERSION:
            return {}
        members = await self.catalog.members(node.collection)
        linked = (node.artifact, node.number)
        member = next(
            (m for m in members.values() if (m.version.artifact, m.version.number) == linked), None
        )
        if member is None:
            raise NotFound(f"{node.collection} no longer links {node.artifact}:v{node.number}")
        version = member.version.record
        found = {
            "user.artfs.collection": node.collection.encode(),
            "user.artfs.member": member.label.encode(),
            "user.artfs.artifact": version.artifact.encode(),
            "user.artfs.version": version.version.encode(),
            "user.artfs.digest": version.digest.encode(),
            "user.artfs.aliases": ",".join(member.record.aliases).encode(),
            "user.artfs.tags": ",".join(version.tags).encode(),
            "user.artfs.type": version.type.encode(),
            "user.artfs.metadata": json.dumps(version.metadata, sort_keys=True).encode(),
            "user.artfs.created": version.committed_at.isoformat().encode(),
            "user.artfs.linked": member.linked_at.isoformat().encode(),
        }
        if version.semver is not None:
            found["user.artfs.semver"] = version.semver.encode()
        if node.label != member.label:
            found.update(self._stale(node.collection))
        return found

    def _stale(self, path: str) -> dict[str, bytes]:
        since = self.catalog.stale_since(COLLECTIONS, members_key(path))
        return {} if since is None else {"user.artfs.stale": since.isoformat().encode()}


def _newest(infos: list[CollectionInfo]) -> int:
    return ns(max(info.created_at for info in infos).timestamp())
