"""``Tree``: the mounted namespace, its inode numbers, and reads of its files.

What a user sees and why: docs/design.md, "The mounted tree".

Node kinds, one per level::

    ROOT        /                              the project's artifacts
    ARTIFACT    /<artifact>                    versions, semver labels, aliases
    VERSION     /<artifact>/<v3|1.2.0|alias>   a version's root directory
    DIR         …/<dir>                        a directory inside a version
    FILE        …/<file>                       a file inside a version

and, read-only, ``/.collections/<registry>/<collection>/<member|alias>`` for
collections (``CollectionsTree``), whose member directories are VERSION nodes.

Inode numbers are a hash of what a node *is*, so they are stable for as long
as it exists and across remounts:

* a VERSION directory is keyed by (artifact, label, version number): when an
  alias moves, its directory gets a new inode, and the kernel, which looks an
  alias up again on every path walk, finds the new version under the same name
  (as soon as the catalog knows, within ``listing_timeout``), while handles
  open on the old inode keep reading the old version;
* a DIR is keyed by its VERSION directory and path (a directory has one parent);
* a FILE is keyed by (artifact, version number, path) and so is shared by
  ``v3/x`` and ``production/x``, like a hard link: one page cache for both.

Each artifact also has a writable ``.staging`` (``StagingTree``, on local
disk). Committing it — ``commit`` here, reached by ``artfs commit`` or by
``mv .staging <alias>`` — publishes it as the next version and empties it;
``stage_from`` makes it a copy-on-write view of a version. Everything else is
read-only: changes raise ``ReadOnly``.

Nodes are kept while the kernel holds a lookup on them or a handle is open,
and dropped on ``forget``. Runs on the trio thread; registry calls are made by
``Catalog``, ``ChunkFetcher`` and ``publish`` in worker threads.
"""

from __future__ import annotations

import dataclasses
import errno
import itertools
import json
import logging
import os
import re
import stat
import time
from typing import Any

import trio

from artfs import names
from artfs.cache.chunks import ChunkCache
from artfs.errors import (
    ArtfsError,
    Conflict,
    Corrupt,
    InvalidInput,
    LocalError,
    NotFound,
    ReadOnly,
    Transient,
)
from artfs.fetch.batch import SmallBlobBatches
from artfs.fetch.fetcher import ChunkFetcher
from artfs.fetch.sources import ReferenceSource
from artfs.names import is_semver
from artfs.references import ReferenceRead
from artfs.upload.publish import LocalEntry, Published, VersionRequest, publish
from artfs.vfs.catalog import Catalog, VersionInfo
from artfs.vfs.collections_tree import COLLECTIONS_DIR, CollectionsTree
from artfs.vfs.kernel import KernelCache
from artfs.vfs.manifest import ManifestFile
from artfs.vfs.nodes import ROOT_INODE, Kind, Node, OpenFile, Stat, TreeSettings, inode_for, ns
from artfs.vfs.reads import BlobReads
from artfs.vfs.references import ReferenceFiles
from artfs.vfs.siblings import SiblingPrefetch
from artfs.vfs.staging import Owner, StagingBase, Uncommittable
from artfs.vfs.staging_tree import STAGING, StagedHandle, StagingTree
from artfs.vfs.uses import Caller, UseRecorder

__all__ = ["ROOT_INODE", "Kind", "Node", "OpenFile", "Tree", "TreeSettings"]

_STAGED = (Kind.STAGING, Kind.STAGED)
_COLLECTIONS = (Kind.COLLECTIONS, Kind.REGISTRY, Kind.COLLECTION)
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_TRUNC | os.O_APPEND | os.O_CREAT

log = logging.getLogger("artfs.vfs")

_VERSION_ID = re.compile(r"v([1-9][0-9]*)")


class Tree:
    def __init__(
        self,
        catalog: Catalog,
        fetcher: ChunkFetcher,
        cache: ChunkCache,
        settings: TreeSettings | None = None,
        kernel: KernelCache | None = None,
        uses: UseRecorder | None = None,
    ) -> None:
        self.catalog = catalog
        #: Lineage: the run this mount is, told of each version read (None: nothing recorded).
        self.uses = uses
        self.fetcher = fetcher
        self.cache = cache
        self.settings = settings or TreeSettings()
        #: The kernel's caches of this tree, told of changed names and of files
        #: fetched ahead (the fs layer's, given by the daemon); None: no kernel.
        self.kernel = kernel
        root = Node(ROOT_INODE, Kind.ROOT, "", ("root",), mtime_ns=ns(time.time()))
        root.entry_timeout = self.settings.listing_timeout
        self._nodes: dict[int, Node] = {ROOT_INODE: root}
        self._next_fh = itertools.count(1)
        self.reads = BlobReads(fetcher, cache, self.settings, lambda: next(self._next_fh))
        source = fetcher.source
        self.references = ReferenceFiles(
            source if isinstance(source, ReferenceSource) else None, cache
        )
        #: Open handles on references: their errors name the file and its URI.
        self._open_references: dict[int, ReferenceRead] = {}
        self.siblings = SiblingPrefetch(
            catalog,
            SmallBlobBatches(fetcher.source, cache),
            self._idle_file,
            None if kernel is None else kernel.prefetched,
        )
        self.collections = CollectionsTree(catalog, self._intern, self.settings)
        self.staging = (
            StagingTree(
                self.settings.staging_root,
                self._intern,
                self._nodes,
                fetcher,
                cache,
                self.settings,
                lambda: next(self._next_fh),
            )
            if self.settings.staging_root is not None
            else None
        )

    # -- the inode table --------------------------------------------------------

    def _intern(self, node: Node) -> Node:
        """The existing node for ``node.key``, or ``node`` registered under a free inode."""
        inode = inode_for(node.key)
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
        if node.lookups <= 0 and not self._is_open(node):
            self._drop(node)

    def _drop(self, node: Node) -> None:
        self._nodes.pop(node.inode, None)
        if node.kind is Kind.STAGED and self.staging is not None:
            self.staging.dropped(node)

    def _is_open(self, node: Node) -> bool:
        if any(handle.node is node for handle in self.reads.handles.values()):
            return True
        return self.staging is not None and any(
            handle.node is node for handle in self.staging.handles.values()
        )

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
                mtime_ns=ns(version.committed_at.timestamp()),
                # An alias is always looked up afresh (entry timeout 0): after a commit
                # through this mount the kernel cannot be told in time (the rename holds
                # the directory lock), and `mv .staging production && cat latest/x`
                # must read the new version. Version ids and labels never move.
                entry_timeout=0 if moving else self.settings.version_timeout,
            )
        )
        node.root = node.inode
        return node

    def _entry_node(self, parent: Node, name: str, path: str, entry: ManifestFile | None) -> Node:
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
            if name == COLLECTIONS_DIR:
                return self.collections.top_node(parent.mtime_ns)
            info = await self.catalog.artifact(name)
            return self._artifact_node(info.name, ns(info.created_at.timestamp()))
        if parent.kind in _COLLECTIONS:
            return await self.collections.lookup(parent, name)
        if parent.kind is Kind.ARTIFACT:
            if name == STAGING and self.staging is not None:
                return self.staging.root_node(parent.artifact, parent.mtime_ns)
            version = await self._resolve_version(parent.artifact, name)
            return self._version_node(version, name)
        if parent.kind in _STAGED:
            return self._staging().lookup(parent, name)
        if parent.kind in (Kind.VERSION, Kind.DIR):
            manifest = await self.catalog.manifest(parent.artifact, parent.number)
            path = manifest.child_path(parent.path, name)
            entry = manifest.file(path)
            if entry is None and not manifest.is_dir(path):
                raise NotFound(f"no {path} in {parent.artifact}:v{parent.number}")
            return self._entry_node(parent, name, path, entry)
        raise NotFound(f"{parent.name} is not a directory")

    async def children(self, inode: int) -> list[Node]:
        return [node for _, node in await self.listing(inode)]

    async def listing(self, inode: int) -> list[tuple[str, Node]]:
        """A directory's entries, each by its own name: a hard-linked staged file has several."""
        parent = self.get(inode)
        if parent.kind in _STAGED:
            return self._staging().children(parent)
        return [(node.name, node) for node in await self._children(parent)]

    async def _children(self, parent: Node) -> list[Node]:
        if parent.kind is Kind.ROOT:
            artifacts = await self.catalog.artifacts()
            nodes = [
                self._artifact_node(info.name, ns(info.created_at.timestamp()))
                for info in sorted(artifacts.values(), key=lambda info: info.name)
            ]
            if await self._has_collections():
                nodes.insert(0, self.collections.top_node(parent.mtime_ns))
            return nodes
        if parent.kind in _COLLECTIONS:
            return await self.collections.children(parent)
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
            if self.staging is not None:
                nodes.insert(0, self.staging.root_node(parent.artifact, parent.mtime_ns))
            return nodes
        if parent.kind in (Kind.VERSION, Kind.DIR):
            manifest = await self.catalog.manifest(parent.artifact, parent.number)
            nodes = []
            for name, is_dir in manifest.children(parent.path):
                path = manifest.child_path(parent.path, name)
                nodes.append(
                    self._entry_node(parent, name, path, None if is_dir else manifest.file(path))
                )
            return nodes
        raise NotFound(f"{parent.name} is not a directory")

    async def _has_collections(self) -> bool:
        """Whether the root lists ``.collections``. Never a reason for the listing of
        artifacts to fail: an answer the registry cannot give counts as none."""
        try:
            return await self.collections.present()
        except (NotFound, Transient) as exc:
            log.debug("collections not listed at the root: %s", exc)
            return False

    # -- extended attributes ----------------------------------------------------

    async def xattrs(self, inode: int) -> dict[str, bytes]:
        node = self.get(inode)
        if node.kind is Kind.FILE:
            return _file_xattrs(node.digest, node.uri)
        if node.kind is Kind.STAGED:
            # An unchanged copy-on-write file says what it stands for, as the version's does.
            ref = self._staging().placeholder(node)
            return {} if ref is None else _file_xattrs(ref.digest, ref.uri)
        if node.collection and node.kind in (Kind.VERSION, Kind.COLLECTION):
            return await self.collections.xattrs(node)
        if node.kind is Kind.VERSION:
            # Aliases, tags and metadata can change: read them from the short-lived listing.
            version = await self.catalog.version(node.artifact, node.number)
            info = await self.catalog.artifact(node.artifact)
            record = version.record
            found = {
                "user.artfs.version": version.label.encode(),
                "user.artfs.digest": version.digest.encode(),
                "user.artfs.aliases": ",".join(record.aliases).encode(),
                "user.artfs.tags": ",".join(record.tags).encode(),
                "user.artfs.type": info.type.encode(),
                "user.artfs.metadata": json.dumps(record.metadata, sort_keys=True).encode(),
                "user.artfs.created": record.committed_at.isoformat().encode(),
            }
            if version.semver is not None:
                found["user.artfs.semver"] = version.semver.encode()
            if node.label not in (version.label, version.semver):
                found.update(self._stale(node.artifact))
            return found
        if node.kind is Kind.ARTIFACT:
            info = await self.catalog.artifact(node.artifact)
            return {"user.artfs.type": info.type.encode(), **self._stale(node.artifact)}
        return {}

    def _stale(self, artifact: str) -> dict[str, bytes]:
        """``user.artfs.stale``, when the registry was last heard about ``artifact``, while
        it cannot be asked and what the mount shows of it (aliases, versions) may be old."""
        since = self.catalog.artifact_stale_since(artifact)
        return {} if since is None else {"user.artfs.stale": since.isoformat().encode()}

    # -- reading files ----------------------------------------------------------

    async def open(
        self, inode: int, flags: int = os.O_RDONLY, caller: Caller | None = None
    ) -> OpenFile | StagedHandle:
        """``caller``: the process opening, whose ``$ARTFS_RUN`` is told it read the version."""
        node = self.get(inode)
        if node.kind is Kind.STAGED:
            ref = self._staging().placeholder(node)
            if ref is not None and not flags & _WRITE_FLAGS:
                # Unchanged copy-on-write file: read it like a version's file.
                if ref.uri is not None or ref.digest is None:
                    return await self._open_reference(node, ref.uri, ref.digest, ref.size)
                return await self.reads.open(node, ref.digest, ref.size)
            return await self._staging().open(node, flags)
        if node.kind is not Kind.FILE:
            raise NotFound(f"{node.name} is not a file")
        if flags & _WRITE_FLAGS:
            raise ReadOnly("versions are immutable; write into <artifact>/.staging")
        if node.digest is None or node.uri is not None:
            return await self._open_reference(node, node.uri, node.digest, node.size)
        if self.uses is not None:
            self.uses.note(node.artifact, node.number, caller)
        await self.siblings.before_open(node)
        return await self.reads.open(node, node.digest, node.size)

    async def _open_reference(
        self, node: Node, uri: str | None, digest: str | None, size: int
    ) -> OpenFile:
        """Open a remote asset, a version's or a staged placeholder's: the one place both
        kinds of file read a reference from (``artfs.vfs.references``)."""
        if uri is None:
            raise NotFound(f"{node.path} has neither bytes nor a URI to read them from")
        # Named as a reader sees it in the mount: artifact, version (or .staging), path.
        shown = "/".join(part for part in (node.artifact, node.label, node.path) if part)
        reference = ReferenceRead(shown, uri, size, digest)
        handle = await self.reads.open(node, await self.references.digest(reference), size)
        self._open_references[handle.fh] = reference
        return handle

    def release(self, fh: int) -> None:
        node: Node
        self._open_references.pop(fh, None)
        if (handle := self.reads.release(fh)) is not None:
            node = handle.node
        elif self.staging is not None and (staged := self.staging.handles.get(fh)) is not None:
            self.staging.release(fh)
            node = staged.node
        else:
            return
        # The kernel may have forgotten the node while it was open: drop it now.
        if node.lookups <= 0 and not self._is_open(node):
            self._drop(node)

    async def read(self, fh: int, offset: int, size: int) -> bytes | bytearray | memoryview:
        handle = self.reads.handles.get(fh)
        if handle is None:
            staged = self.staging.handles.get(fh) if self.staging is not None else None
            if staged is None:
                raise NotFound(f"file handle {fh} is not open")
            return self._staging().read(staged, offset, size)
        try:
            return await self.reads.read(handle, offset, size)
        except Corrupt as exc:
            reference = self._open_references.get(fh)
            if reference is None:
                raise
            # The fetcher names a blob; a reader needs the file and where it lives.
            raise self.references.changed(reference, exc) from exc

    # -- attributes -------------------------------------------------------------

    def stat(self, node: Node) -> Stat:
        if node.kind in _STAGED:
            return self._staging().stat(node)
        if node.kind is Kind.FILE:
            mode, nlink = stat.S_IFREG | 0o444, 1
        elif node.kind in (Kind.ROOT, Kind.ARTIFACT):
            mode, nlink = stat.S_IFDIR | 0o755, 2
        else:
            mode, nlink = stat.S_IFDIR | 0o555, 2
        return Stat(
            mode=mode,
            size=node.size,
            mtime_ns=node.mtime_ns,
            atime_ns=node.mtime_ns,
            ctime_ns=node.mtime_ns,
            nlink=nlink,
            uid=self.settings.uid,
            gid=self.settings.gid,
            timeout=node.entry_timeout,
        )

    # -- changes: only .staging, new artifacts and commits ------------------------

    def _staging(self) -> StagingTree:
        if self.staging is None:
            raise ReadOnly("this mount is read-only")
        return self.staging

    def _staged_parent(self, inode: int) -> Node:
        parent = self.get(inode)
        if parent.kind not in _STAGED:
            raise ReadOnly("versions are immutable; write into <artifact>/.staging")
        return parent

    def _staged_handle(self, fh: int) -> StagedHandle:
        handle = self._staging().handles.get(fh)
        if handle is None:
            raise ReadOnly("this file is read-only")
        return handle

    async def mkdir(
        self, parent_inode: int, name: str, mode: int, owner: Owner | None = None
    ) -> Node:
        parent = self.get(parent_inode)
        if parent.kind is Kind.ROOT:
            return await self.create_artifact(name)
        return self._staging().mkdir(self._staged_parent(parent_inode), name, mode, owner)

    async def create_artifact(self, name: str, type_: str = "dataset") -> Node:
        names.check_name(name)
        self.catalog.invalidate()
        if name in await self.catalog.artifacts():
            raise LocalError(errno.EEXIST, f"artifact {name} exists")
        registry = self.catalog.registry
        record = await trio.to_thread.run_sync(lambda: registry.create_artifact(name, type_))
        self.catalog.invalidate()
        return self._artifact_node(name, ns(record.created_at.timestamp()))

    def rmdir(self, parent_inode: int, name: str) -> None:
        self._staging().rmdir(self._staged_parent(parent_inode), name)

    def unlink(self, parent_inode: int, name: str) -> None:
        self._staging().unlink(self._staged_parent(parent_inode), name)

    def symlink(
        self, parent_inode: int, name: str, target: str, owner: Owner | None = None
    ) -> Node:
        return self._staging().symlink(self._staged_parent(parent_inode), name, target, owner)

    def readlink(self, inode: int) -> str:
        node = self.get(inode)
        if node.kind is not Kind.STAGED:
            raise InvalidInput(f"{node.name} is not a symlink")
        return self._staging().readlink(node)

    def link(self, inode: int, parent_inode: int, name: str) -> Node:
        node = self.get(inode)
        if node.kind is not Kind.STAGED:
            raise ReadOnly("only staged files can be linked")
        return self._staging().link(node, self._staged_parent(parent_inode), name)

    def create(
        self, parent_inode: int, name: str, mode: int, flags: int, owner: Owner | None = None
    ) -> StagedHandle:
        """A new staged file, open; ``owner``: the uid and gid of the process that asked."""
        return self._staging().create(self._staged_parent(parent_inode), name, mode, flags, owner)

    async def write(self, fh: int, offset: int, data: bytes) -> int:
        return await self._staging().write(self._staged_handle(fh), offset, data)

    async def fsync(self, fh: int, datasync: bool) -> None:
        if fh in self.reads.handles:
            return  # immutable: nothing to flush
        await self._staging().fsync(self._staged_handle(fh), datasync)

    async def setattr(
        self,
        inode: int,
        *,
        size: int | None = None,
        mode: int | None = None,
        uid: int | None = None,
        gid: int | None = None,
        atime_ns: int | None = None,
        mtime_ns: int | None = None,
        fh: int | None = None,
    ) -> Node:
        node = self.get(inode)
        if node.kind not in _STAGED:
            raise ReadOnly("versions are immutable; write into <artifact>/.staging")
        await self._staging().setattr(
            node,
            size=size,
            mode=mode,
            uid=uid,
            gid=gid,
            atime_ns=atime_ns,
            mtime_ns=mtime_ns,
            fh=fh,
        )
        return node

    async def rename(
        self,
        old_parent_inode: int,
        old: str,
        new_parent_inode: int,
        new: str,
        flags: int,
        caller: Caller | None = None,
    ) -> None:
        """``caller``: the process asking, whose ``$ARTFS_RUN`` names a commit's producer."""
        old_parent, new_parent = self.get(old_parent_inode), self.get(new_parent_inode)
        if old_parent.kind is Kind.ARTIFACT and old == STAGING:
            alias, seen = await self._commit_target(old_parent, new_parent, new)
            source = (
                self.commit_source("run", caller.run_id(), caller.user())
                if caller is not None
                else self.commit_source()
            )
            # Replace what the user saw, or nothing: a concurrent move of the alias
            # makes this commit fail (EBUSY) and leaves .staging as it was.
            request = (
                VersionRequest(source=source)
                if alias == "latest"
                else VersionRequest(aliases=[alias], alias_expect={alias: seen}, source=source)
            )
            try:
                await self.commit(old_parent.artifact, request)
            except Uncommittable as exc:
                # mv prints EINVAL as "cannot move to a subdirectory of itself" and
                # falls back to copying on EXDEV; EPERM reads true, the log says why.
                log.warning("mv %s/.staging %s refused: %s", old_parent.artifact, alias, exc)
                raise LocalError(errno.EPERM, exc.message) from exc
            return
        if old_parent.kind in _STAGED and new_parent.kind in _STAGED:
            self._staging().rename(old_parent, old, new_parent, new, flags)
            return
        if old_parent.kind in _STAGED or new_parent.kind in _STAGED:
            raise LocalError(errno.EXDEV, "moves into or out of .staging copy instead")
        raise ReadOnly("versions are immutable; write into <artifact>/.staging")

    async def _commit_target(
        self, artifact: Node, new_parent: Node, new: str
    ) -> tuple[str, str | None]:
        """The alias ``mv .staging X`` commits to, and the version it must still point at.

        Moving into an existing alias directory (what coreutils ``mv`` does when
        X exists) must replace the very version that directory showed. Renaming
        to X (new, or ``mv -T``) must replace what X is when the commit starts:
        nothing, if X does not exist. Either way a concurrent move loses nothing.
        """
        if new_parent is artifact:
            label = new
        elif (
            new_parent.kind is Kind.VERSION
            and not new_parent.collection  # a collection's member is no alias of the artifact
            and new_parent.artifact == artifact.artifact
            and new == STAGING
        ):
            label = new_parent.label
        else:
            raise LocalError(errno.EXDEV, ".staging can only become an alias of its artifact")
        if label == STAGING:
            raise InvalidInput(".staging cannot be renamed to itself")
        if names.parse_version_ref(label).kind != "alias":
            raise ReadOnly(f"{label} is a version, and versions are immutable")
        if new_parent is not artifact:
            return label, f"v{new_parent.number}"
        self.catalog.invalidate(artifact.artifact)
        number = (await self.catalog.artifact(artifact.artifact)).aliases.get(label)
        return label, None if number is None else f"v{number}"

    def commit_source(
        self,
        kind: str = "mount",
        run_id: str | None = None,
        user: str | None = None,
        message: str = "",
    ) -> dict[str, Any]:
        """Who produces a commit: this mount's run, or ``run_id``; ``{}`` if untold."""
        if self.uses is None:
            return {}
        return self.uses.run.source(kind, run_id, user, message)

    async def commit(self, artifact: str, request: VersionRequest) -> Published:
        """Publish ``artifact/.staging`` as the next version, then empty it."""
        staging = self._staging()
        if artifact in staging.committing:
            raise Conflict(f"{artifact}/.staging is already being committed")
        area = staging.area(artifact)
        staging.committing.add(artifact)
        try:
            published = await trio.to_thread.run_sync(self._publish, artifact, request)
            staging.delete_later(await trio.to_thread.run_sync(area.clear))
        except ArtfsError as exc:
            # The errno alone (EIO for an unreachable registry) says little: the log says why.
            log.warning("commit of %s/.staging failed, .staging kept: %s", artifact, exc.message)
            raise
        finally:
            staging.committing.discard(artifact)
        self.catalog.invalidate(artifact)
        self._changed_after_commit(artifact, request)
        log.info(
            "committed %s/.staging as %s (%d bytes uploaded)",
            artifact,
            published.record.version,
            published.uploaded_bytes,
        )
        return published

    def _changed_after_commit(self, artifact: str, request: VersionRequest) -> None:
        parent = self._find(("artifact", artifact))
        staging = self._staging()
        root = next(
            (
                node
                for node in self._nodes.values()
                if node.kind is Kind.STAGING and node.artifact == artifact and not node.retired
            ),
            None,
        )
        staging.retire(root, artifact)
        if parent is None or self.kernel is None:
            return
        # An expected alias that is not also asked for does not move: nothing to refresh.
        for name in dict.fromkeys(["latest", STAGING, *request.aliases]):
            self.kernel.entry_changed(parent, name)

    def _idle_file(self, artifact: str, number: int, path: str) -> Node | None:
        """A version's file the kernel holds and nobody has open, if any."""
        node = self._find(("file", artifact, str(number), path))
        if node is None or node.lookups <= 0 or self._is_open(node):
            return None
        return node

    def _find(self, key: tuple[str, ...]) -> Node | None:
        inode = inode_for(key)
        while (node := self._nodes.get(inode)) is not None:
            if node.key == key:
                return node
            inode += 1
        return None

    def _publish(self, artifact: str, request: VersionRequest) -> Published:
        area = self._staging().area(artifact)
        with area.files() as staged:
            entries = [
                LocalEntry(file.path, file.size, file.local, file.digest, file.uri, file.metadata)
                for file in staged
            ]
            if not entries:
                raise InvalidInput(f"nothing to commit: {artifact}/.staging has no files")
            if (base := area.base()) is not None:
                # What stage --from started from, unless the commit says otherwise.
                request = dataclasses.replace(
                    request,
                    metadata={**base.metadata, **request.metadata},
                    description=request.description or base.description,
                )
            return publish(self.catalog.registry, artifact, entries, request)

    async def stage_from(self, artifact: str, ref: str) -> int:
        """Make ``artifact/.staging`` a copy-on-write view of a version; returns its file count.

        Every entry is staged, references too; what an entry holds beyond its
        digest and size, and the version's metadata and description, go into
        the area's base (``StagingBase``), so committing it unchanged is the no-op.
        """
        area = self._staging().area(artifact)
        if not area.is_empty():
            raise Conflict(f"{artifact}/.staging is not empty; commit or empty it first")
        version = await self._resolve_version(artifact, ref)
        label = f"v{version.number}"
        registry = self.catalog.registry

        def fill() -> int:
            record = registry.get_version(artifact, label)
            entries = list(registry.list_files(artifact, label))
            rich = [entry for entry in entries if entry.uri is not None or entry.metadata]
            area.set_base(StagingBase(label, record.metadata, record.description, rich))
            index = {id(entry): position for position, entry in enumerate(rich)}
            for entry in entries:
                area.add_placeholder(entry.path, entry.digest, entry.size, index.get(id(entry)))
            return len(entries)

        return await trio.to_thread.run_sync(fill)


def _file_xattrs(digest: str | None, uri: str | None) -> dict[str, bytes]:
    """``user.artfs.sha256`` and, for a reference, ``user.artfs.uri``: what is known."""
    found = {}
    if digest is not None:
        found["user.artfs.sha256"] = digest.encode()
    if uri is not None:
        found["user.artfs.uri"] = uri.encode()
    return found
