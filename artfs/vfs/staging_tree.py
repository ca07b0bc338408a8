"""``StagingTree``: the writable ``<artifact>/.staging`` directories of the mount.

Each ``.staging`` is a ``StagingArea`` on local disk; this module maps its
entries to nodes and kernel requests to local file operations. Inode numbers
of staged entries hash the backing file's own inode number, so they survive
renames. While an artifact's staging is being committed, changes to it are
refused with ``Conflict`` (``EBUSY``), so the committed version is exactly
what was there when the commit began.

Placeholders (copy-on-write entries) report their recorded size; a read-only
open reads them through the verified cache (``Tree`` does that), and any open
for writing, or a truncate, first copies the bytes up.

Files written in order are hashed as they are written (``WriteDigests``), so
that a commit need not read them again.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import trio

from artfs import names
from artfs.cache.chunks import ChunkCache, ChunkLayout
from artfs.errors import (
    ArtfsError,
    Conflict,
    Corrupt,
    InvalidInput,
    LocalError,
    NoSpace,
    NotFound,
)
from artfs.fetch.fetcher import ChunkFetcher
from artfs.upload.records import drop_record, read_record, write_record
from artfs.vfs.nodes import Kind, Node, Stat, TreeSettings
from artfs.vfs.staging import StagingArea, delete_discarded, read_ref
from artfs.vfs.write_digests import Key, WriteDigests

__all__ = ["StagedHandle", "StagingTree"]

STAGING = ".staging"


@dataclass(eq=False)
class StagedHandle:
    fh: int
    node: Node
    fd: int
    #: The file's entry in ``WriteDigests``; None for a read-only handle.
    writing: Key | None = None


def _os_error(exc: OSError, what: str) -> ArtfsError:
    """Local-disk failures as domain errors; the fs layer turns them back into errnos."""
    if exc.errno == errno.ENOSPC:
        return NoSpace(f"local disk full while {what}")
    if exc.errno == errno.ENOENT:
        return NotFound(f"{what}: {exc.strerror}")
    return LocalError(exc.errno or errno.EIO, f"{what}: {exc.strerror}")


class StagingTree:
    def __init__(
        self,
        state_root: Path,
        intern: Callable[[Node], Node],
        nodes: dict[int, Node],
        fetcher: ChunkFetcher,
        cache: ChunkCache,
        settings: TreeSettings,
        next_fh: Callable[[], int],
    ) -> None:
        self.state_root = state_root
        self._intern = intern
        self._nodes = nodes
        self.fetcher = fetcher
        self.cache = cache
        self.settings = settings
        self._next_fh = next_fh
        self._areas: dict[str, StagingArea] = {}
        self._generations: dict[str, int] = {}
        self.handles: dict[int, StagedHandle] = {}
        self.digests = WriteDigests()
        #: Artifacts whose staging is being committed right now.
        self.committing: set[str] = set()
        delete_discarded(state_root)

    def delete_later(self, discarded: Path) -> None:
        """Delete an emptied staging tree in the background; see ``StagingArea.clear``."""
        threading.Thread(
            target=shutil.rmtree,
            args=(discarded,),
            kwargs={"ignore_errors": True},
            name="delete-discarded",
            daemon=True,
        ).start()

    # -- areas and nodes -----------------------------------------------------------

    def area(self, artifact: str) -> StagingArea:
        area = self._areas.get(artifact)
        if area is None:
            area = self._areas[artifact] = StagingArea(
                self.state_root / artifact, self.digests.settle
            )
        return area

    def root_node(self, artifact: str, parent_mtime_ns: int) -> Node:
        generation = str(self._generations.get(artifact, 0))
        node = self._intern(
            Node(0, Kind.STAGING, STAGING, ("staging", artifact, generation), artifact=artifact)
        )
        node.mtime_ns = parent_mtime_ns
        # Always revalidated: after `mv .staging production` the kernel's dentry
        # "production" points at this inode until it asks again.
        node.entry_timeout = 0
        return node

    def _node(self, artifact: str, path: str) -> Node:
        try:
            info = os.lstat(self.area(artifact).backing(path))
        except OSError as exc:
            raise _os_error(exc, f"looking up .staging/{path}") from exc
        node = self._intern(
            Node(0, Kind.STAGED, "", ("staged", artifact, str(info.st_ino)), artifact=artifact)
        )
        # The backing inode may be a renamed file or a reused inode number: refresh.
        node.path = path
        node.name = path.rsplit("/", 1)[-1]
        node.entry_timeout = self.settings.listing_timeout
        return node

    def retire(self, root: Node | None, artifact: str) -> None:
        """After a commit, .staging is a new directory (a new inode).

        The kernel moved its dentry for the old one to where ``mv`` put it (the
        alias name); that dentry now leads to a retired, empty directory and is
        replaced on its next lookup, while ``.staging`` resolves afresh.
        """
        self._generations[artifact] = self._generations.get(artifact, 0) + 1
        if root is not None:
            root.retired = True

    def _writable(self, artifact: str) -> None:
        if artifact in self.committing:
            raise Conflict(f"{artifact}/.staging is being committed; try again when it is done")

    @staticmethod
    def _child(parent: Node, name: str) -> str:
        if parent.kind is Kind.STAGING:
            return name
        return f"{parent.path}/{name}"

    def lookup(self, parent: Node, name: str) -> Node:
        if parent.retired:
            raise NotFound(f"{parent.artifact}/.staging was committed")
        return self._node(parent.artifact, self._child(parent, name))

    def children(self, parent: Node) -> list[Node]:
        if parent.retired:
            return []
        directory = self.area(parent.artifact).backing(
            parent.path if parent.kind is Kind.STAGED else ""
        )
        try:
            names_ = sorted(os.listdir(directory))
        except OSError as exc:
            raise _os_error(exc, f"listing .staging/{parent.path}") from exc
        found = []
        for name in names_:
            try:
                found.append(self._node(parent.artifact, self._child(parent, name)))
            except NotFound:
                continue  # removed meanwhile
        return found

    def backing(self, node: Node) -> Path:
        return self.area(node.artifact).backing(node.path if node.kind is Kind.STAGED else "")

    def stat(self, node: Node) -> Stat:
        try:
            info = os.lstat(self.backing(node))
        except OSError as exc:
            raise _os_error(exc, f"stat of .staging/{node.path}") from exc
        size = info.st_size
        if stat.S_ISREG(info.st_mode) and (ref := read_ref(self.backing(node))) is not None:
            size = ref[1]
        return Stat(
            mode=info.st_mode,
            size=size,
            mtime_ns=info.st_mtime_ns,
            atime_ns=info.st_atime_ns,
            ctime_ns=info.st_ctime_ns,
            nlink=info.st_nlink,
            uid=self.settings.uid,
            gid=self.settings.gid,
            timeout=node.entry_timeout,
        )

    def placeholder(self, node: Node) -> tuple[str, int] | None:
        return read_ref(self.backing(node)) if node.kind is Kind.STAGED else None

    # -- changing the tree -----------------------------------------------------------

    def _checked_name(self, name: str) -> str:
        if not name or "/" in name or "\x00" in name or name in (".", ".."):
            raise InvalidInput(f"invalid name {name!r}")
        if len(name.encode()) > 255:
            raise LocalError(errno.ENAMETOOLONG, "name longer than 255 bytes")
        return name

    def mkdir(self, parent: Node, name: str, mode: int) -> Node:
        self._writable(parent.artifact)
        path = self._child(parent, self._checked_name(name))
        try:
            os.mkdir(self.area(parent.artifact).backing(path), mode & 0o7777)
        except OSError as exc:
            raise _os_error(exc, f"mkdir .staging/{path}") from exc
        return self._node(parent.artifact, path)

    def rmdir(self, parent: Node, name: str) -> None:
        self._writable(parent.artifact)
        path = self._child(parent, name)
        try:
            os.rmdir(self.area(parent.artifact).backing(path))
        except OSError as exc:
            raise _os_error(exc, f"rmdir .staging/{path}") from exc

    def unlink(self, parent: Node, name: str) -> None:
        self._writable(parent.artifact)
        path = self._child(parent, name)
        try:
            os.unlink(self.area(parent.artifact).backing(path))
        except OSError as exc:
            raise _os_error(exc, f"unlink .staging/{path}") from exc

    def symlink(self, parent: Node, name: str, target: str) -> Node:
        self._writable(parent.artifact)
        path = self._child(parent, self._checked_name(name))
        try:
            os.symlink(target, self.area(parent.artifact).backing(path))
        except OSError as exc:
            raise _os_error(exc, f"symlink .staging/{path}") from exc
        return self._node(parent.artifact, path)

    def readlink(self, node: Node) -> str:
        try:
            return os.readlink(self.backing(node))
        except OSError as exc:
            raise _os_error(exc, f"readlink .staging/{node.path}") from exc

    def link(self, node: Node, parent: Node, name: str) -> Node:
        self._writable(parent.artifact)
        if node.artifact != parent.artifact:
            raise LocalError(errno.EXDEV, "hard links stay within one .staging")
        path = self._child(parent, self._checked_name(name))
        try:
            os.link(self.backing(node), self.area(parent.artifact).backing(path))
        except OSError as exc:
            raise _os_error(exc, f"link .staging/{path}") from exc
        return self._node(parent.artifact, path)

    def rename(self, old_parent: Node, old: str, new_parent: Node, new: str, flags: int) -> None:
        if old_parent.artifact != new_parent.artifact:
            raise LocalError(errno.EXDEV, "rename across .staging directories")
        self._writable(old_parent.artifact)
        area = self.area(old_parent.artifact)
        source = area.backing(self._child(old_parent, old))
        target = area.backing(self._child(new_parent, self._checked_name(new)))
        noreplace, exchange = 1, 2  # RENAME_NOREPLACE, RENAME_EXCHANGE
        if flags & exchange:
            raise LocalError(errno.EINVAL, "RENAME_EXCHANGE is not supported")
        if flags & noreplace and os.path.lexists(target):
            raise LocalError(errno.EEXIST, f"{new} exists")
        try:
            os.rename(source, target)
        except OSError as exc:
            raise _os_error(exc, f"rename .staging/{old}") from exc
        self._moved(old_parent.artifact, self._child(old_parent, old), self._child(new_parent, new))

    def _moved(self, artifact: str, old: str, new: str) -> None:
        """Rewrite the paths of a moved entry and everything below it.

        The kernel keeps its cached dentries below a renamed directory and goes
        on using their inodes, so our nodes must follow the move.
        """
        below = old + "/"
        for node in self._nodes.values():
            if node.kind is not Kind.STAGED or node.artifact != artifact:
                continue
            if node.path == old:
                node.path = new
                node.name = new.rsplit("/", 1)[-1]
            elif node.path.startswith(below):
                node.path = new + "/" + node.path[len(below) :]

    async def setattr(
        self,
        node: Node,
        *,
        size: int | None,
        mode: int | None,
        uid: int | None,
        gid: int | None,
        atime_ns: int | None,
        mtime_ns: int | None,
        fh: int | None,
    ) -> None:
        self._writable(node.artifact)
        local = self.backing(node)
        try:
            if size is not None:
                if size == 0 and self.placeholder(node) is not None:
                    os.removexattr(local, "user.artfs.ref")
                else:
                    await self.copy_up(node)
                handle = self.handles.get(fh) if fh is not None else None
                info = os.stat(local, follow_symlinks=False)
                self.digests.truncated((info.st_dev, info.st_ino), size)
                drop_record(local)
                if handle is not None:
                    os.ftruncate(handle.fd, size)
                else:
                    os.truncate(local, size)
            if mode is not None:
                os.chmod(local, stat.S_IMODE(mode), follow_symlinks=False)
            if uid is not None or gid is not None:
                os.chown(
                    local,
                    -1 if uid is None else uid,
                    -1 if gid is None else gid,
                    follow_symlinks=False,
                )
            if atime_ns is not None or mtime_ns is not None:
                current = os.lstat(local)
                # `cp -p`, `rsync -t` set the mtime after writing: keep the record true.
                recorded = read_record(local) if stat.S_ISREG(current.st_mode) else None
                os.utime(
                    local,
                    ns=(
                        current.st_atime_ns if atime_ns is None else atime_ns,
                        current.st_mtime_ns if mtime_ns is None else mtime_ns,
                    ),
                    follow_symlinks=False,
                )
                if recorded is not None:
                    self._rerecord(local, recorded[0])
        except OSError as exc:
            raise _os_error(exc, f"changing .staging/{node.path}") from exc

    @staticmethod
    def _rerecord(local: Path, digest: str) -> None:
        fd = os.open(local, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            write_record(fd, digest)
        finally:
            os.close(fd)

    # -- file contents ---------------------------------------------------------------

    async def copy_up(self, node: Node) -> None:
        """Replace a placeholder by its verified bytes, fetched through the cache."""
        ref = self.placeholder(node)
        if ref is None:
            return
        digest, size = ref
        area = self.area(node.artifact)
        if size == 0:
            os.removexattr(self.backing(node), "user.artfs.ref")
            return
        layout = await self.fetcher.layout(digest, size)
        await self.fetcher.ensure(layout, range(layout.chunk_count))
        handle, name = tempfile.mkstemp(prefix=".artfs-copy-", dir=area.root)
        os.close(handle)
        try:
            await trio.to_thread.run_sync(self._assemble, layout, Path(name))
            area.materialize(node.path, Path(name))
        except OSError as exc:
            raise _os_error(exc, f"copying up .staging/{node.path}") from exc
        finally:
            Path(name).unlink(missing_ok=True)

    def _assemble(self, layout: ChunkLayout, target: Path) -> None:
        hasher = hashlib.sha256()
        buffer = bytearray(layout.chunk_size)
        with open(target, "wb") as out:
            for index in range(layout.chunk_count):
                view = memoryview(buffer)[: layout.chunk_length(index)]
                if self.cache.read(layout, index, 0, view) != len(view):
                    raise Corrupt(f"chunk {index} of {layout.digest} left the cache during copy-up")
                hasher.update(view)
                out.write(view)
        if hasher.hexdigest() != layout.digest:
            raise Corrupt(f"copy-up of {layout.digest} does not match its digest")

    async def open(self, node: Node, flags: int) -> StagedHandle:
        writing = flags & (os.O_WRONLY | os.O_RDWR | os.O_TRUNC | os.O_APPEND)
        if writing:
            self._writable(node.artifact)
            await self.copy_up(node)
        access = flags & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR)
        try:
            # No O_APPEND: the kernel sends the offsets, and O_APPEND would make pwrite ignore them.
            fd = os.open(self.backing(node), access | (flags & os.O_TRUNC) | os.O_NOFOLLOW)
        except OSError as exc:
            raise _os_error(exc, f"open .staging/{node.path}") from exc
        # Before any write can reach the file: its old digest record goes now.
        key = self._track(fd, bool(flags & os.O_TRUNC), node.path) if writing else None
        handle = StagedHandle(self._next_fh(), node, fd, key)
        self.handles[handle.fh] = handle
        return handle

    def create(self, parent: Node, name: str, mode: int, flags: int) -> StagedHandle:
        self._writable(parent.artifact)
        path = self._child(parent, self._checked_name(name))
        access = flags & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR)
        try:
            fd = os.open(
                self.area(parent.artifact).backing(path),
                access | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                stat.S_IMODE(mode),
            )
        except OSError as exc:
            raise _os_error(exc, f"create .staging/{path}") from exc
        key = self._track(fd, True, path)
        handle = StagedHandle(self._next_fh(), self._node(parent.artifact, path), fd, key)
        self.handles[handle.fh] = handle
        return handle

    def _track(self, fd: int, fresh: bool, path: str) -> Key:
        try:
            return self.digests.opened(fd, fresh=fresh)
        except OSError as exc:
            os.close(fd)
            raise _os_error(exc, f"open .staging/{path}") from exc

    def read(self, handle: StagedHandle, offset: int, size: int) -> bytes:
        try:
            return os.pread(handle.fd, size, offset)
        except OSError as exc:
            raise _os_error(exc, f"read .staging/{handle.node.path}") from exc

    async def write(self, handle: StagedHandle, offset: int, data: bytes) -> int:
        self._writable(handle.node.artifact)
        try:
            # In a worker thread: a 1 MiB write takes milliseconds, which the
            # event loop owes to every other request of the mount.
            return await trio.to_thread.run_sync(self._pwrite, handle, data, offset)
        except OSError as exc:
            raise _os_error(exc, f"write .staging/{handle.node.path}") from exc

    def _pwrite(self, handle: StagedHandle, data: bytes, offset: int) -> int:
        written = os.pwrite(handle.fd, data, offset)
        if handle.writing is not None:
            self.digests.written(handle.writing, offset, data[:written])
        return written

    async def fsync(self, handle: StagedHandle, datasync: bool) -> None:
        sync: Callable[[int], None] = os.fdatasync if datasync else os.fsync
        try:
            await trio.to_thread.run_sync(sync, handle.fd)
        except OSError as exc:
            raise _os_error(exc, f"fsync .staging/{handle.node.path}") from exc

    def release(self, fh: int) -> None:
        handle = self.handles.pop(fh, None)
        if handle is None:
            return
        if handle.writing is not None:
            self.digests.closed(handle.writing, handle.fd)  # closes it once hashed
        else:
            os.close(handle.fd)


def check_alias_target(name: str) -> str:
    """The alias a ``mv .staging <name>`` commit points; version ids and labels are read-only."""
    return names.check_alias(name)
