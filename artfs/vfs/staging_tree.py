"""``StagingTree``: the writable ``<artifact>/.staging`` directories of the mount.

Each ``.staging`` is a ``StagingArea`` on local disk; this module maps its
entries to nodes and kernel requests to local file operations. Inode numbers
of staged entries hash the backing file's own inode number, so they survive
renames. While an artifact's staging is being committed, changes to it are
refused with ``Conflict`` (``EBUSY``), so the committed version is exactly
what was there when the commit began.

Names: a node is a backing file, and a file may have several names (hard
links). A listing gives each entry its own name. A node remembers every name
it was seen under and checks that one still leads to its file (the same
backing inode) before using it, so unlinking, renaming or replacing one name
leaves the file reachable by the others. A file whose last name is gone while
it is still open is reached through an open handle's descriptor until the
last close, as POSIX has it: its attributes, size, mode, owner and times.

Permissions: owners are real. ``stat`` reports the backing entry's uid and
gid, and chown passes through to it, so it works when the daemon runs as root
and is refused (``EPERM``) otherwise, as the OS decides. When the daemon runs
as root, what a process creates through the mount belongs to that process's
uid and gid (the directory's group, in a set-group-ID directory); otherwise to
the daemon's user. The kernel checks modes against these owners (the mount's
``default_permissions``); other users reach the mount at all only when it was
mounted with ``--allow-other``. A ``.staging`` itself belongs to the daemon's
user: chmod it (as root, ``chmod 1777`` makes it a shared scratch space like
``/tmp``) or chown it to let others write there.

Placeholders (copy-on-write entries) report their recorded size; a read-only
open reads them through the verified cache (``Tree`` does that), and any open
for writing, or a truncate, first copies the bytes up.

Files written in order are hashed as they are written (``WriteDigests``), so
that a commit need not read them again.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import trio

from artfs import names
from artfs.cache.chunks import ChunkCache
from artfs.cache.layout import ChunkLayout
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
from artfs.vfs.staging import Owner, Placeholder, StagingArea, delete_discarded, is_missing
from artfs.vfs.write_digests import Key, WriteDigests

__all__ = ["StagedHandle", "StagingTree"]

STAGING = ".staging"
_RENAME_NOREPLACE, _RENAME_EXCHANGE = 1, 2


@dataclass(eq=False)
class StagedHandle:
    fh: int
    node: Node
    fd: int
    #: The file's entry in ``WriteDigests``; None for a read-only handle.
    writing: Key | None = None


@dataclass(frozen=True)
class _Entry:
    """A staged node as found now: by a path in its area or, when no name of it is left,
    by the descriptor of one of its open handles."""

    area: StagingArea
    info: os.stat_result
    path: str | None
    fd: int = -1

    def open(self, flags: int) -> int:
        if self.path is None:
            # The descriptor's own file, whatever became of its names.
            return os.open(f"/proc/self/fd/{self.fd}", flags | os.O_CLOEXEC)
        return self.area.open(self.path, flags | os.O_NOFOLLOW)

    def ref(self) -> Placeholder | None:
        """What it stands for, if it is a placeholder (always an empty file)."""
        if self.path is None or self.info.st_size or not stat.S_ISREG(self.info.st_mode):
            return None
        return self.area.ref(self.path)

    def chmod(self, mode: int) -> None:
        if stat.S_ISLNK(self.info.st_mode):
            raise LocalError(errno.EOPNOTSUPP, "a symlink has no mode of its own")
        if self.path is None:
            os.fchmod(self.fd, mode)
        else:
            self.area.chmod(self.path, mode)

    def chown(self, uid: int, gid: int) -> None:
        if self.path is None:
            os.fchown(self.fd, uid, gid)
        else:
            self.area.chown(self.path, uid, gid)

    def utime(self, times_ns: tuple[int, int]) -> None:
        if self.path is None:
            os.utime(self.fd, ns=times_ns)
        else:
            self.area.utime(self.path, times_ns)


def _os_error(exc: OSError, what: str) -> ArtfsError:
    """Local-disk failures as domain errors; the fs layer turns them back into errnos."""
    if exc.errno == errno.ENOSPC:
        return NoSpace(f"local disk full while {what}")
    if exc.errno == errno.ENOENT:
        return NotFound(f"{what}: {exc.strerror}")
    return LocalError(exc.errno or errno.EIO, f"{what}: {exc.strerror}")


def _named(node: Node, path: str) -> None:
    node.path = path
    node.name = path.rsplit("/", 1)[-1]


def _moved_path(path: str, old: str, new: str) -> str | None:
    """Where ``path`` is after ``old`` moved to ``new``; None if the move left it alone."""
    if path == old:
        return new
    if path.startswith(old + "/"):
        return new + path[len(old) :]
    return None


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
        #: The names a node was seen under, for nodes of files with several.
        self._names: dict[int, set[str]] = {}
        #: The backing inode number of nodes whose file a copy-up replaced.
        self._copied: dict[int, int] = {}
        #: Who the daemon is: only root may give what it creates away.
        self._identity = (os.geteuid(), os.getegid())
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
            info = self.area(artifact).lstat(path)
        except OSError as exc:
            raise _os_error(exc, f"looking up .staging/{path}") from exc
        node = self._intern(
            Node(0, Kind.STAGED, "", ("staged", artifact, str(info.st_ino)), artifact=artifact)
        )
        if node.path and node.path != path and info.st_nlink > 1:
            # Another name of the same file: any of them may be the one left later.
            self._names.setdefault(node.inode, set()).update((node.path, path))
        # The backing inode may be a renamed file or a reused inode number: refresh.
        _named(node, path)
        node.entry_timeout = self.settings.listing_timeout
        return node

    def dropped(self, node: Node) -> None:
        """The tree has let go of ``node``."""
        self._names.pop(node.inode, None)
        self._copied.pop(node.inode, None)

    def _find(self, node: Node) -> _Entry:
        """Where ``node`` is now: its last name if that still leads to its file, else
        another of its names, else an open handle of it. Raises OSError or NotFound."""
        area = self.area(node.artifact)
        if node.kind is Kind.STAGING:
            return _Entry(area, area.lstat(""), "")
        inode = self._copied.get(node.inode) or int(node.key[-1])
        others = self._names.get(node.inode)
        for path in (node.path, *(others or ())):
            try:
                info = area.lstat(path)
            except OSError as exc:
                if not is_missing(exc):
                    raise
            else:
                if info.st_ino == inode and info.st_dev == area.dev:
                    _named(node, path)
                    return _Entry(area, info, path)
            if others is not None:
                others.discard(path)  # unlinked, or another file's name now
        handle = self._handle(node)
        if handle is None:
            raise NotFound(f".staging/{node.path} is gone")
        return _Entry(area, os.fstat(handle.fd), None, handle.fd)

    def _handle(self, node: Node, *, writable: bool = False) -> StagedHandle | None:
        """An open handle of ``node`` (one open for writing, if ``writable``), if any."""
        for handle in self.handles.values():
            if handle.node is node and (handle.writing is not None or not writable):
                return handle
        return None

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

    def children(self, parent: Node) -> list[tuple[str, Node]]:
        """The entries of a directory, each by its own name: one file may have several."""
        if parent.retired:
            return []
        directory = parent.path if parent.kind is Kind.STAGED else ""
        try:
            found = sorted(self.area(parent.artifact).listdir(directory))
        except OSError as exc:
            raise _os_error(exc, f"listing .staging/{directory}") from exc
        entries = []
        for name in found:
            try:
                entries.append((name, self._node(parent.artifact, self._child(parent, name))))
            except NotFound:
                continue  # removed meanwhile
        return entries

    def stat(self, node: Node) -> Stat:
        try:
            entry = self._find(node)
            ref = entry.ref()
        except OSError as exc:
            raise _os_error(exc, f"stat of .staging/{node.path}") from exc
        info = entry.info
        return Stat(
            mode=info.st_mode,
            size=info.st_size if ref is None else ref.size,
            mtime_ns=info.st_mtime_ns,
            atime_ns=info.st_atime_ns,
            ctime_ns=info.st_ctime_ns,
            nlink=info.st_nlink,
            uid=info.st_uid,
            gid=info.st_gid,
            timeout=node.entry_timeout,
        )

    def placeholder(self, node: Node) -> Placeholder | None:
        if node.kind is not Kind.STAGED:
            return None
        try:
            return self._find(node).ref()
        except OSError as exc:
            raise _os_error(exc, f"open .staging/{node.path}") from exc

    # -- changing the tree -----------------------------------------------------------

    def _checked_name(self, name: str) -> str:
        if not name or "/" in name or "\x00" in name or name in (".", ".."):
            raise InvalidInput(f"invalid name {name!r}")
        if len(name.encode()) > 255:
            raise LocalError(errno.ENAMETOOLONG, "name longer than 255 bytes")
        return name

    def _owner(self, owner: Owner | None) -> Owner | None:
        """Whom a new entry goes to when not to the daemon: the process that made it, if
        the daemon may give it away (as root)."""
        if owner is None or self._identity[0] != 0 or owner == self._identity:
            return None
        return owner

    def mkdir(self, parent: Node, name: str, mode: int, owner: Owner | None = None) -> Node:
        self._writable(parent.artifact)
        path = self._child(parent, self._checked_name(name))
        try:
            self.area(parent.artifact).mkdir(path, stat.S_IMODE(mode), self._owner(owner))
        except OSError as exc:
            raise _os_error(exc, f"mkdir .staging/{path}") from exc
        return self._node(parent.artifact, path)

    def rmdir(self, parent: Node, name: str) -> None:
        self._writable(parent.artifact)
        path = self._child(parent, name)
        area = self.area(parent.artifact)
        try:
            area.rmdir(path)
            if "/" not in path:
                area.drop_base_if_empty()
        except OSError as exc:
            raise _os_error(exc, f"rmdir .staging/{path}") from exc

    def unlink(self, parent: Node, name: str) -> None:
        self._writable(parent.artifact)
        path = self._child(parent, name)
        area = self.area(parent.artifact)
        try:
            area.unlink(path)
            if "/" not in path:
                area.drop_base_if_empty()
        except OSError as exc:
            raise _os_error(exc, f"unlink .staging/{path}") from exc

    def symlink(self, parent: Node, name: str, target: str, owner: Owner | None = None) -> Node:
        self._writable(parent.artifact)
        path = self._child(parent, self._checked_name(name))
        try:
            self.area(parent.artifact).symlink(target, path, self._owner(owner))
        except OSError as exc:
            raise _os_error(exc, f"symlink .staging/{path}") from exc
        return self._node(parent.artifact, path)

    def readlink(self, node: Node) -> str:
        try:
            entry = self._find(node)
            if entry.path is None:
                raise NotFound(f".staging/{node.path} is gone")
            return entry.area.readlink(entry.path)
        except OSError as exc:
            raise _os_error(exc, f"readlink .staging/{node.path}") from exc

    def link(self, node: Node, parent: Node, name: str) -> Node:
        self._writable(parent.artifact)
        if node.artifact != parent.artifact:
            raise LocalError(errno.EXDEV, "hard links stay within one .staging")
        path = self._child(parent, self._checked_name(name))
        try:
            entry = self._find(node)
            if entry.path is None:
                raise NotFound(f".staging/{node.path} has no name left to link to")
            entry.area.link(entry.path, path)
        except OSError as exc:
            raise _os_error(exc, f"link .staging/{path}") from exc
        return self._node(parent.artifact, path)

    def rename(self, old_parent: Node, old: str, new_parent: Node, new: str, flags: int) -> None:
        if old_parent.artifact != new_parent.artifact:
            raise LocalError(errno.EXDEV, "rename across .staging directories")
        self._writable(old_parent.artifact)
        area = self.area(old_parent.artifact)
        source = self._child(old_parent, old)
        target = self._child(new_parent, self._checked_name(new))
        if flags & _RENAME_EXCHANGE:
            raise LocalError(errno.EINVAL, "RENAME_EXCHANGE is not supported")
        try:
            if flags & _RENAME_NOREPLACE and self._exists(area, target):
                raise LocalError(errno.EEXIST, f"{new} exists")
            area.rename(source, target)
        except OSError as exc:
            raise _os_error(exc, f"rename .staging/{source}") from exc
        self._moved(old_parent.artifact, source, target)

    @staticmethod
    def _exists(area: StagingArea, path: str) -> bool:
        try:
            area.lstat(path)
        except OSError as exc:
            if is_missing(exc):
                return False
            raise
        return True

    def _moved(self, artifact: str, old: str, new: str) -> None:
        """Rewrite the paths of a moved entry and everything below it.

        The kernel keeps its cached dentries below a renamed directory and goes
        on using their inodes, so our nodes must follow the move. The names a
        node had are kept beside the new ones (each is checked before use): a
        rename from one name of a file to another of the same file does nothing.
        """
        for node in self._nodes.values():
            if node.kind is not Kind.STAGED or node.artifact != artifact:
                continue
            moved = _moved_path(node.path, old, new)
            if moved is not None:
                _named(node, moved)
            others = self._names.get(node.inode)
            if others:
                others.update(
                    [p for p in (_moved_path(path, old, new) for path in others) if p is not None]
                )

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
        try:
            if size is not None:
                await self._truncate(node, size, self.handles.get(fh) if fh is not None else None)
            if all(value is None for value in (mode, uid, gid, atime_ns, mtime_ns)):
                return
            entry = self._find(node)
            if uid is not None or gid is not None:
                entry.chown(-1 if uid is None else uid, -1 if gid is None else gid)
            if mode is not None:  # after chown, which clears the set-ID bits
                entry.chmod(stat.S_IMODE(mode))
            if atime_ns is not None or mtime_ns is not None:
                self._retime(entry, atime_ns, mtime_ns)
        except OSError as exc:
            raise _os_error(exc, f"changing .staging/{node.path}") from exc

    async def _truncate(self, node: Node, size: int, handle: StagedHandle | None) -> None:
        entry = self._find(node)
        if entry.path is not None and entry.ref() is not None:
            if size == 0:
                entry.area.drop_ref(entry.path)
            else:
                await self.copy_up(node)
                entry = self._find(node)
        self.digests.truncated((entry.info.st_dev, entry.info.st_ino), size)
        if handle is None and entry.path is None:
            handle = self._handle(node, writable=True)
        if handle is not None:
            drop_record(handle.fd)
            os.ftruncate(handle.fd, size)
            return
        fd = entry.open(os.O_WRONLY)
        try:
            drop_record(fd)
            os.ftruncate(fd, size)
        finally:
            os.close(fd)

    @staticmethod
    def _retime(entry: _Entry, atime_ns: int | None, mtime_ns: int | None) -> None:
        info = entry.info
        times = (
            info.st_atime_ns if atime_ns is None else atime_ns,
            info.st_mtime_ns if mtime_ns is None else mtime_ns,
        )
        fd = -1
        if stat.S_ISREG(info.st_mode):
            # `cp -p`, `rsync -t` set the mtime after writing: keep the record true. A file
            # the daemon may not read has its times set all the same, and loses its record.
            with contextlib.suppress(PermissionError):
                fd = entry.open(os.O_RDONLY)
        if fd < 0:
            entry.utime(times)
            return
        try:
            recorded = read_record(fd)
            os.utime(fd, ns=times)
            if recorded is not None:
                write_record(fd, recorded[0])
        finally:
            os.close(fd)

    # -- file contents ---------------------------------------------------------------

    async def copy_up(self, node: Node, truncate: bool = False) -> None:
        """Replace a placeholder by its verified bytes, fetched through the cache
        (``truncate``: by nothing, as its bytes are about to be dropped anyway)."""
        try:
            entry = self._find(node)
            ref = entry.ref()
        except OSError as exc:
            raise _os_error(exc, f"copying up .staging/{node.path}") from exc
        if ref is None or entry.path is None:
            return
        area = entry.area
        if ref.size == 0 or truncate:
            area.drop_ref(entry.path)
            return
        if ref.uri is not None or ref.digest is None:
            # Its bytes are not the registry's to fetch: it can be replaced whole, not edited.
            raise LocalError(
                errno.EPERM,
                f".staging/{node.path} is a reference to {ref.uri}: replace it whole "
                "(truncate it first) or remove it",
            )
        digest, size = ref.digest, ref.size
        layout = await self.fetcher.layout(digest, size)
        await self.fetcher.ensure(layout, range(layout.chunk_count))
        fd, name = area.temporary()
        try:
            await trio.to_thread.run_sync(self._assemble, layout, fd)
            # Found again: it may have been renamed, or copied up by another open, meanwhile.
            entry = self._find(node)
            if entry.path is not None and entry.ref() is not None:
                area.materialize(entry.path, name)
                self._copied[node.inode] = area.lstat(entry.path).st_ino
        except OSError as exc:
            raise _os_error(exc, f"copying up .staging/{node.path}") from exc
        finally:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                area.unlink(name)

    def _assemble(self, layout: ChunkLayout, fd: int) -> None:
        hasher = hashlib.sha256()
        buffer = bytearray(layout.chunk_size)
        with open(fd, "wb", closefd=False) as out:
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
            await self.copy_up(node, truncate=bool(flags & os.O_TRUNC))
        access = flags & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR)
        try:
            # No O_APPEND: the kernel sends the offsets, and O_APPEND would make pwrite ignore them.
            fd = self._find(node).open(access | (flags & os.O_TRUNC))
        except OSError as exc:
            raise _os_error(exc, f"open .staging/{node.path}") from exc
        # Before any write can reach the file: its old digest record goes now.
        key = self._track(fd, bool(flags & os.O_TRUNC), node.path) if writing else None
        handle = StagedHandle(self._next_fh(), node, fd, key)
        self.handles[handle.fh] = handle
        return handle

    def create(
        self, parent: Node, name: str, mode: int, flags: int, owner: Owner | None = None
    ) -> StagedHandle:
        self._writable(parent.artifact)
        path = self._child(parent, self._checked_name(name))
        access = flags & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR)
        try:
            fd = self.area(parent.artifact).create(
                path, access, stat.S_IMODE(mode), self._owner(owner)
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
