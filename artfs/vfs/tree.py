"""``Tree``: the mounted namespace (SPEC §3), its inode numbers, and reads of its files.

Node kinds, one per level::

    ROOT        /                              the project's artifacts
    ARTIFACT    /<artifact>                    versions, semver labels, aliases
    VERSION     /<artifact>/<v3|1.2.0|alias>   a version's root directory
    DIR         …/<dir>                        a directory inside a version
    FILE        …/<file>                       a file inside a version

Inode numbers are a hash of what a node *is*, so they are stable for as long
as it exists and across remounts:

* a VERSION directory is keyed by (artifact, label, version number): when an
  alias moves, its directory gets a new inode, and the kernel, whose entry for
  the alias expires within ``listing_timeout``, finds the new version under the
  same name, while handles open on the old inode keep reading the old version;
* a DIR is keyed by its VERSION directory and path (a directory has one parent);
* a FILE is keyed by (artifact, version number, path) and so is shared by
  ``v3/x`` and ``production/x``, like a hard link: one page cache for both.

Nodes are kept while the kernel holds a lookup on them or a handle is open,
and dropped on ``forget``. Everything is read-only here; writes raise
``ReadOnly``. Runs on the trio thread; registry calls are made by ``Catalog``
and ``ChunkFetcher`` in worker threads.
"""

from __future__ import annotations

import enum
import hashlib
import itertools
import json
import logging
import re
import stat
import time
from dataclasses import dataclass, field

import trio

from artfs.cache.chunks import ChunkCache, ChunkLayout
from artfs.errors import ArtfsError, NotFound, Transient
from artfs.fetch.fetcher import ChunkFetcher
from artfs.fetch.readahead import ReadAhead
from artfs.names import is_semver
from artfs.vfs.catalog import Catalog, VersionInfo
from artfs.vfs.manifest import FileEntry

__all__ = ["ROOT_INODE", "Kind", "Node", "OpenFile", "Tree", "TreeSettings"]

log = logging.getLogger("artfs.vfs")

ROOT_INODE = 1
_VERSION_ID = re.compile(r"v([1-9][0-9]*)")


class Kind(enum.Enum):
    ROOT = "root"
    ARTIFACT = "artifact"
    VERSION = "version"
    DIR = "dir"
    FILE = "file"


@dataclass(frozen=True)
class TreeSettings:
    #: Entry and attribute timeout for listings that can change (artifacts, aliases).
    listing_timeout: float = 1.0
    #: The same for a version id or semver label: fixed unless the version is deleted.
    version_timeout: float = 30.0
    #: The same for everything inside a committed version: it never changes.
    immutable_timeout: float = 86400.0
    #: A read that cannot be served within this many seconds fails (EIO).
    read_timeout: float = 30.0
    uid: int = 0
    gid: int = 0


@dataclass(eq=False)
class Node:
    inode: int
    kind: Kind
    name: str
    key: tuple[str, ...]
    artifact: str = ""
    number: int = 0
    label: str = ""
    path: str = ""
    size: int = 0
    mtime_ns: int = 0
    digest: str | None = None
    uri: str | None = None
    entry_timeout: float = 1.0
    lookups: int = 0
    #: Inode of the VERSION directory this node lies in (its own, for a VERSION).
    root: int = 0

    @property
    def is_dir(self) -> bool:
        return self.kind is not Kind.FILE

    @property
    def mode(self) -> int:
        if self.kind is Kind.FILE:
            return stat.S_IFREG | 0o444
        if self.kind in (Kind.ROOT, Kind.ARTIFACT):
            return stat.S_IFDIR | 0o755
        return stat.S_IFDIR | 0o555


@dataclass(eq=False)
class OpenFile:
    fh: int
    node: Node
    layout: ChunkLayout
    readahead: ReadAhead = field(default_factory=ReadAhead)


def _inode_for(key: tuple[str, ...]) -> int:
    digest = hashlib.blake2b("\x00".join(key).encode(), digest_size=8).digest()
    # Positive, 63 bits, never the root's number.
    return max(int.from_bytes(digest, "big") >> 1, ROOT_INODE + 1)


def _ns(moment: float) -> int:
    return int(moment * 1e9)


class Tree:
    def __init__(
        self,
        catalog: Catalog,
        fetcher: ChunkFetcher,
        cache: ChunkCache,
        settings: TreeSettings | None = None,
    ) -> None:
        self.catalog = catalog
        self.fetcher = fetcher
        self.cache = cache
        self.settings = settings or TreeSettings()
        root = Node(ROOT_INODE, Kind.ROOT, "", ("root",), mtime_ns=_ns(time.time()))
        root.entry_timeout = self.settings.listing_timeout
        self._nodes: dict[int, Node] = {ROOT_INODE: root}
        self._handles: dict[int, OpenFile] = {}
        self._next_fh = itertools.count(1)

    # -- the inode table --------------------------------------------------------

    def _intern(self, node: Node) -> Node:
        """The existing node for ``node.key``, or ``node`` registered under a free inode."""
        inode = _inode_for(node.key)
        while (existing := self._nodes.get(inode)) is not None:
            if existing.key == node.key:
                return existing
            inode += 1  # a hash collision: probe on, deterministically
        node.inode = inode
        self._nodes[inode] = node
        return node

    def get(self, inode: int) -> Node:
        node = self._nodes.get(inode)
        if node is None:
            raise NotFound(f"inode {inode} is not known (forgotten)")
        return node

    def remember(self, node: Node) -> None:
        """The kernel took a reference (lookup or readdirplus entry)."""
        node.lookups += 1

    def forget(self, inode: int, count: int) -> None:
        node = self._nodes.get(inode)
        if node is None or inode == ROOT_INODE:
            return
        node.lookups -= count
        if node.lookups <= 0 and not any(h.node is node for h in self._handles.values()):
            del self._nodes[inode]

    # -- node makers ------------------------------------------------------------

    def _artifact_node(self, name: str, created_ns: int) -> Node:
        return self._intern(
            Node(
                0,
                Kind.ARTIFACT,
                name,
                ("artifact", name),
                artifact=name,
                mtime_ns=created_ns,
                entry_timeout=self.settings.listing_timeout,
            )
        )

    def _version_node(self, version: VersionInfo, label: str) -> Node:
        moving = label not in (version.label, version.semver)
        node = self._intern(
            Node(
                0,
                Kind.VERSION,
                label,
                ("version", version.artifact, label, str(version.number)),
                artifact=version.artifact,
                number=version.number,
                label=label,
                mtime_ns=_ns(version.committed_at.timestamp()),
                entry_timeout=(
                    self.settings.listing_timeout if moving else self.settings.version_timeout
                ),
            )
        )
        node.root = node.inode
        return node

    def _entry_node(self, parent: Node, name: str, path: str, entry: FileEntry | None) -> Node:
        key: tuple[str, ...]
        if entry is None:
            key = ("dir", str(parent.root), path)
            node = Node(0, Kind.DIR, name, key)
        else:
            key = ("file", parent.artifact, str(parent.number), path)
            node = Node(
                0, Kind.FILE, name, key, size=entry.size, digest=entry.digest, uri=entry.uri
            )
        node.artifact, node.number, node.label, node.path = (
            parent.artifact,
            parent.number,
            parent.label,
            path,
        )
        node.mtime_ns = parent.mtime_ns
        node.root = parent.root
        node.entry_timeout = self.settings.immutable_timeout
        return self._intern(node)

    # -- resolving names --------------------------------------------------------

    async def _resolve_version(self, artifact: str, label: str) -> VersionInfo:
        versions = await self.catalog.versions(artifact)
        if match := _VERSION_ID.fullmatch(label):
            number = int(match.group(1))
        elif is_semver(label):
            found = [v.number for v in versions.values() if v.semver == label]
            if not found:
                raise NotFound(f"{artifact} has no version {label}")
            number = found[0]
        else:
            info = await self.catalog.artifact(artifact)
            if label not in info.aliases:
                raise NotFound(f"{artifact} has no alias {label}")
            number = info.aliases[label]
        version = versions.get(number)
        if version is None:
            # The alias may point at a version newer than our cached list.
            self.catalog.invalidate(artifact)
            version = await self.catalog.version(artifact, number)
        return version

    async def lookup(self, parent_inode: int, name: str) -> Node:
        parent = self.get(parent_inode)
        if not name or "/" in name or "\x00" in name or name in (".", ".."):
            raise NotFound(f"{name!r} is not a single path component")
        if parent.kind is Kind.ROOT:
            info = await self.catalog.artifact(name)
            return self._artifact_node(info.name, _ns(info.created_at.timestamp()))
        if parent.kind is Kind.ARTIFACT:
            version = await self._resolve_version(parent.artifact, name)
            return self._version_node(version, name)
        if parent.kind in (Kind.VERSION, Kind.DIR):
            manifest = await self.catalog.manifest(parent.artifact, parent.number)
            path = manifest.child_path(parent.path, name)
            entry = manifest.files.get(path)
            if entry is None and not manifest.is_dir(path):
                raise NotFound(f"no {path} in {parent.artifact}:v{parent.number}")
            return self._entry_node(parent, name, path, entry)
        raise NotFound(f"{parent.name} is not a directory")

    async def children(self, inode: int) -> list[Node]:
        parent = self.get(inode)
        if parent.kind is Kind.ROOT:
            artifacts = await self.catalog.artifacts()
            return [
                self._artifact_node(info.name, _ns(info.created_at.timestamp()))
                for info in sorted(artifacts.values(), key=lambda info: info.name)
            ]
        if parent.kind is Kind.ARTIFACT:
            versions = await self.catalog.versions(parent.artifact)
            info = await self.catalog.artifact(parent.artifact)
            ordered = [versions[number] for number in sorted(versions)]
            nodes = [self._version_node(version, version.label) for version in ordered]
            nodes += [
                self._version_node(version, version.semver)
                for version in ordered
                if version.semver is not None
            ]
            for alias, number in sorted(info.aliases.items()):
                if number in versions:
                    nodes.append(self._version_node(versions[number], alias))
            return nodes
        if parent.kind in (Kind.VERSION, Kind.DIR):
            manifest = await self.catalog.manifest(parent.artifact, parent.number)
            nodes = []
            for name, is_dir in manifest.dirs.get(parent.path, []):
                path = manifest.child_path(parent.path, name)
                nodes.append(
                    self._entry_node(parent, name, path, None if is_dir else manifest.files[path])
                )
            return nodes
        raise NotFound(f"{parent.name} is not a directory")

    # -- extended attributes ----------------------------------------------------

    async def xattrs(self, inode: int) -> dict[str, bytes]:
        node = self.get(inode)
        if node.kind is Kind.FILE:
            found = {}
            if node.digest is not None:
                found["user.artfs.sha256"] = node.digest.encode()
            if node.uri is not None:
                found["user.artfs.uri"] = node.uri.encode()
            return found
        if node.kind is Kind.VERSION:
            # Aliases, tags and metadata can change: read them from the short-lived listing.
            version = await self.catalog.version(node.artifact, node.number)
            info = await self.catalog.artifact(node.artifact)
            raw = version.raw
            found = {
                "user.artfs.version": version.label.encode(),
                "user.artfs.digest": version.digest.encode(),
                "user.artfs.aliases": ",".join(raw["aliases"]).encode(),
                "user.artfs.tags": ",".join(raw["tags"]).encode(),
                "user.artfs.type": info.type.encode(),
                "user.artfs.metadata": json.dumps(raw["metadata"], sort_keys=True).encode(),
                "user.artfs.created": str(raw["committed_at"]).encode(),
            }
            if version.semver is not None:
                found["user.artfs.semver"] = version.semver.encode()
            return found
        if node.kind is Kind.ARTIFACT:
            info = await self.catalog.artifact(node.artifact)
            return {"user.artfs.type": info.type.encode()}
        return {}

    # -- reading files ----------------------------------------------------------

    async def open(self, inode: int) -> OpenFile:
        node = self.get(inode)
        if node.kind is not Kind.FILE:
            raise NotFound(f"{node.name} is not a file")
        if node.digest is None or node.uri is not None:
            raise Transient(
                f"{node.path} is a remote asset ({node.uri}); reading references through "
                "the mount is not supported yet"
            )
        if node.size == 0:
            layout = ChunkLayout(node.digest, 0, 1 << 20, b"")
        else:
            layout = await self.fetcher.layout(node.digest)
        handle = OpenFile(next(self._next_fh), node, layout)
        self._handles[handle.fh] = handle
        self.cache.pin(layout.digest)
        return handle

    def release(self, fh: int) -> None:
        handle = self._handles.pop(fh, None)
        if handle is not None:
            self.cache.unpin(handle.layout.digest)
            if handle.node.lookups <= 0 and handle.node.inode != ROOT_INODE:
                self._nodes.pop(handle.node.inode, None)

    async def read(self, fh: int, offset: int, size: int) -> bytearray:
        handle = self._handles.get(fh)
        if handle is None:
            raise NotFound(f"file handle {fh} is not open")
        layout = handle.layout
        if offset >= layout.size or size <= 0:
            return bytearray()
        size = min(size, layout.size - offset)
        needed = layout.chunks_for(offset, size)
        self.fetcher.prefetch(layout, needed)
        ahead = handle.readahead.after_read(offset, size)
        if ahead:
            self.fetcher.prefetch(layout, range(needed.stop, needed.stop + ahead))
        buffer = bytearray(size)
        view = memoryview(buffer)
        with trio.move_on_after(self.settings.read_timeout) as scope:
            await self._fill(layout, needed, offset, view)
        if scope.cancelled_caught:
            log.error(
                "read of %s at %d timed out after %.1fs",
                handle.node.path,
                offset,
                self.settings.read_timeout,
            )
            raise Transient(f"read of {handle.node.path} timed out")
        return buffer

    async def _fill(
        self, layout: ChunkLayout, needed: range, offset: int, view: memoryview
    ) -> None:
        await self.fetcher.ensure(layout, needed)
        position = 0
        for index in needed:
            inner = max(offset - index * layout.chunk_size, 0)
            want = min(layout.chunk_length(index) - inner, len(view) - position)
            for _attempt in range(3):
                got = self.cache.read(layout, index, inner, view[position : position + want])
                if got is not None:
                    break
                # Evicted or found corrupt on disk: fetch it again.
                await self.fetcher.ensure(layout, range(index, index + 1))
            else:
                raise ArtfsError(f"chunk {index} of {layout.digest} cannot be kept in the cache")
            position += got
