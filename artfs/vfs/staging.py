"""``StagingArea``: one artifact's ``.staging`` directory, kept on the mounting machine's disk.

The staged tree is an ordinary directory tree under the daemon's state dir, so
creating, writing, renaming, unlinking, symlinks, chmod and fsync are the local
filesystem's own operations, at local speed, and survive a crash of the daemon.

Every operation names an entry by its staged path, relative to a descriptor
of the area's root directory (``fd``), never by an absolute path: a staged
path may be as long as the kernel allows a path to be, and the absolute path
of such an entry, the state dir's prefix in front, would not be.

New entries get exactly the mode the kernel asked for (it has applied the
caller's umask already; the daemon's own must not be applied again) and, when
asked, the owner of the process that made them (see ``StagingTree``).

Copy-on-write (``artfs stage --from V``): each file of V is first a *placeholder*,
an empty file whose ``user.artfs.ref`` extended attribute holds ``digest:size``.
A placeholder is read through the verified chunk cache and committed by its
digest, so it is never downloaded or uploaded unless written to; the first
write copies it up (the caller fetches its bytes and calls ``materialize``).
Renames and unlinks of placeholders are just renames and unlinks. Only an
empty file can be a placeholder, so only empty files are asked for the attribute.

Files written through the mount carry a digest record when they were written
in order (``artfs.vfs.write_digests``); the commit's hashing step uses it.

Nothing here touches the network or FUSE; the caller runs the slow parts
(hashing, copy-up) in worker threads.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from artfs import names
from artfs.digests import check_digest
from artfs.errors import InvalidInput

__all__ = [
    "REF_XATTR",
    "Owner",
    "StagedFile",
    "StagingArea",
    "Uncommittable",
    "delete_discarded",
    "discarded_root",
    "is_missing",
    "read_ref",
]

REF_XATTR = "user.artfs.ref"
#: The longest path a system call takes, its terminating NUL included.
PATH_MAX = 4096

#: The uid and gid a new entry is given.
Owner = tuple[int, int]
_SET_ID = stat.S_ISUID | stat.S_ISGID


class Uncommittable(InvalidInput):
    """An entry of ``.staging`` that cannot be committed as it is (the message names it).

    Its own class so that ``mv .staging ALIAS`` can answer it with an errno that
    ``mv`` prints sensibly, where plain EINVAL reads "subdirectory of itself".
    """


@dataclass(frozen=True)
class StagedFile:
    """A file as it will be committed: by its local bytes or by a placeholder's digest."""

    path: str
    size: int
    #: Where its bytes can be read; None for a placeholder, committed by its digest.
    local: Path | None
    digest: str | None  # known for placeholders; computed for local bytes


def read_ref(fd: int) -> tuple[str, int] | None:
    """The ``(digest, size)`` the placeholder open at ``fd`` stands for, or ``None``."""
    try:
        raw = os.getxattr(fd, REF_XATTR)
    except OSError:
        return None
    digest, _, size = raw.decode().partition(":")
    return digest, int(size)


def is_missing(exc: OSError) -> bool:
    """The error of a path that leads nowhere now: its entry, or a directory on the way, is gone."""
    return exc.errno in (errno.ENOENT, errno.ENOTDIR)


@functools.cache
def _umask() -> int:
    """The daemon's umask, which ``open`` and ``mkdir`` apply on top of the mode asked for."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return 0o022  # kernels before 4.7 do not say: the usual one


def _parent(path: str) -> str:
    return path.rpartition("/")[0]


class StagingArea:
    def __init__(self, root: Path, settle: Callable[[], None] | None = None) -> None:
        self.root = root
        #: Waits for the digest records of files closed so far (see ``files``).
        self._settle = settle
        root.mkdir(parents=True, exist_ok=True)
        #: The root directory: every entry is reached relative to it.
        self.fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        #: The filesystem it lies on: an inode number names a file only together with it.
        self.dev = os.fstat(self.fd).st_dev

    # -- entries by staged path ("" is the root); each raises OSError as the OS does --------

    @staticmethod
    def _at(path: str) -> str:
        return path or "."

    def lstat(self, path: str) -> os.stat_result:
        return os.stat(self._at(path), dir_fd=self.fd, follow_symlinks=False)

    def open(self, path: str, flags: int, mode: int = 0o600) -> int:
        return os.open(self._at(path), flags | os.O_CLOEXEC, mode, dir_fd=self.fd)

    def listdir(self, path: str) -> list[str]:
        # A descriptor of its own: a shared one would share its read position too.
        fd = self.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            return os.listdir(fd)
        finally:
            os.close(fd)

    def create(self, path: str, flags: int, mode: int, owner: Owner | None) -> int:
        """Create a file with exactly ``mode`` and ``owner``; returns it open with ``flags``."""
        fd = self.open(path, flags | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        try:
            self._settle_new(path, mode, owner, fd)
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                self.unlink(path)
            raise
        return fd

    def mkdir(self, path: str, mode: int, owner: Owner | None) -> None:
        os.mkdir(path, mode, dir_fd=self.fd)
        try:
            self._settle_new(path, mode, owner)
        except OSError:
            with contextlib.suppress(OSError):
                self.rmdir(path)
            raise

    def symlink(self, target: str, path: str, owner: Owner | None) -> None:
        os.symlink(target, path, dir_fd=self.fd)
        try:
            self._settle_new(path, None, owner)
        except OSError:
            with contextlib.suppress(OSError):
                self.unlink(path)
            raise

    def _settle_new(
        self, path: str, mode: int | None, owner: Owner | None, fd: int | None = None
    ) -> None:
        """Give a new entry the mode and owner asked for, where the daemon's own got in the way.

        ``fd``: a file's, open; None for a directory, or for a symlink (``mode``
        None: it has no mode of its own). Owner first: a chown clears the
        set-user-ID and set-group-ID bits that chmod sets.
        """
        stray = mode is not None and mode & _umask()
        if not stray and owner is None:
            return
        # As the kernel does: a set-group-ID directory gives what is made in it its
        # group, and a directory made in it the bit too. Asked only where that matters.
        inherits = 0
        if owner is not None or (fd is None and mode is not None):
            inherits = self.lstat(_parent(path)).st_mode & stat.S_ISGID
        if owner is not None:
            uid, gid = owner[0], -1 if inherits else owner[1]
            if fd is not None:
                os.fchown(fd, uid, gid)
            else:
                os.chown(path, uid, gid, dir_fd=self.fd, follow_symlinks=False)
        if mode is not None and (stray or (owner is not None and mode & _SET_ID)):
            if fd is not None:
                os.fchmod(fd, mode)
            else:  # a directory: kept set-group-ID where it inherited the bit
                os.chmod(path, mode | inherits, dir_fd=self.fd)

    def rmdir(self, path: str) -> None:
        os.rmdir(path, dir_fd=self.fd)

    def unlink(self, path: str) -> None:
        os.unlink(path, dir_fd=self.fd)

    def readlink(self, path: str) -> str:
        return os.readlink(path, dir_fd=self.fd)

    def link(self, source: str, target: str) -> None:
        os.link(source, target, src_dir_fd=self.fd, dst_dir_fd=self.fd, follow_symlinks=False)

    def rename(self, source: str, target: str) -> None:
        os.rename(source, target, src_dir_fd=self.fd, dst_dir_fd=self.fd)

    def chmod(self, path: str, mode: int) -> None:
        """Change the mode of ``path``, which must not be a symlink (Linux cannot chmod one,
        and chmod would change what it leads to)."""
        os.chmod(self._at(path), mode, dir_fd=self.fd)

    def chown(self, path: str, uid: int, gid: int) -> None:
        os.chown(self._at(path), uid, gid, dir_fd=self.fd, follow_symlinks=False)

    def utime(self, path: str, times_ns: tuple[int, int]) -> None:
        os.utime(self._at(path), ns=times_ns, dir_fd=self.fd, follow_symlinks=False)

    def is_empty(self) -> bool:
        return not self.listdir("")

    # -- copy-on-write ------------------------------------------------------------

    def ref(self, path: str) -> tuple[str, int] | None:
        """The ``(digest, size)`` the placeholder at ``path`` stands for, or ``None``."""
        try:
            fd = self.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return None
        try:
            return read_ref(fd)
        finally:
            os.close(fd)

    def drop_ref(self, path: str) -> None:
        """Make the placeholder at ``path`` an ordinary empty file."""
        fd = self.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            os.removexattr(fd, REF_XATTR)
        finally:
            os.close(fd)

    def add_placeholder(self, path: str, digest: str, size: int) -> None:
        names.check_logical_path(path)
        check_digest(digest)
        parent = ""
        for part in path.split("/")[:-1]:
            parent = f"{parent}/{part}" if parent else part
            with contextlib.suppress(FileExistsError):
                os.mkdir(parent, dir_fd=self.fd)
        fd = self.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o666)
        try:
            os.setxattr(fd, REF_XATTR, f"{digest}:{size}".encode())
        finally:
            os.close(fd)

    def temporary(self) -> tuple[int, str]:
        """A new empty file at the root for a copy-up, open for writing: (fd, its name)."""
        fd, name = tempfile.mkstemp(prefix=".artfs-copy-", dir=self.root)
        return fd, Path(name).name

    def materialize(self, path: str, content: str) -> None:
        """Replace a placeholder by real bytes (already verified, in the root's ``content``),
        keeping its mode and owner."""
        placeholder = self.lstat(path)
        if placeholder.st_uid != os.geteuid() or placeholder.st_gid != os.getegid():
            self.chown(content, placeholder.st_uid, placeholder.st_gid)
        self.chmod(content, stat.S_IMODE(placeholder.st_mode))
        self.rename(content, path)

    # -- commit ---------------------------------------------------------------------

    @contextlib.contextmanager
    def files(self) -> Iterator[list[StagedFile]]:
        """Every file to commit, in path order; symlinks are committed as their target.

        A symlink must resolve to a file inside the staging tree: a version holds
        files, not links, and nothing outside ``.staging`` may leak into it.
        Empty directories have no place in a manifest and are left out. A file
        whose absolute path is too long to open is given as a path through a
        descriptor held open until the block ends.
        """
        if self._settle is not None:
            self._settle()  # files closed just before the commit: their records are due
        with contextlib.ExitStack() as held:
            files = []
            #: Each file by its inode, for the symlinks: hard links are one file.
            found: dict[tuple[int, int], StagedFile] = {}
            symlinks = []
            for path, info in self._walk():
                try:
                    names.check_logical_path(path)
                except InvalidInput as exc:
                    raise Uncommittable(f".staging/{path}: {exc.message}") from exc
                if stat.S_ISREG(info.st_mode):
                    files.append(self._staged(path, info, held))
                    found.setdefault((info.st_dev, info.st_ino), files[-1])
                elif stat.S_ISLNK(info.st_mode):
                    symlinks.append(path)
                else:
                    raise Uncommittable(f".staging/{path} is not a file, directory or symlink")
            for path in sorted(symlinks):  # the first bad one reported is always the same one
                target = self._link_target(path, found)
                files.append(StagedFile(path, target.size, target.local, target.digest))
            yield sorted(files, key=lambda staged: staged.path)

    def _walk(self) -> Iterator[tuple[str, os.stat_result]]:
        """Every entry below the root but directories, with its ``lstat``."""
        pending = [""]
        while pending:
            directory = pending.pop()
            for name in self.listdir(directory):
                path = f"{directory}/{name}" if directory else name
                info = self.lstat(path)
                if stat.S_ISDIR(info.st_mode):
                    pending.append(path)
                else:
                    yield path, info

    def _staged(self, path: str, info: os.stat_result, held: contextlib.ExitStack) -> StagedFile:
        ref = self.ref(path) if info.st_size == 0 else None
        if ref is not None:
            return StagedFile(path, ref[1], None, ref[0])
        local = self.root / path
        if len(os.fsencode(local)) >= PATH_MAX:
            fd = self.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            held.callback(os.close, fd)
            local = Path(f"/proc/self/fd/{fd}")
        return StagedFile(path, info.st_size, local, None)

    def _link_target(self, path: str, found: dict[tuple[int, int], StagedFile]) -> StagedFile:
        """The staged file the symlink at ``path`` leads to: one of ``found``, by its inode."""
        try:
            target = os.stat(path, dir_fd=self.fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise Uncommittable(f".staging/{path} is a symlink loop") from exc
            target = None
        staged = None if target is None else found.get((target.st_dev, target.st_ino))
        if staged is None:
            raise Uncommittable(
                f".staging/{path} is a symlink to {self.readlink(path)!r}, which does not"
                " lead to a file inside .staging"
            )
        return staged

    def clear(self) -> Path:
        """Empty the staging tree (after a successful commit) at once.

        Its entries are renamed into a new directory under ``discarded_root``,
        which is returned: deleting a large staged file takes the filesystem a
        while, and the commit need not wait for it.
        The caller deletes the directory; one left by a crash is deleted with
        the rest at the next start (``delete_discarded``).
        """
        place = Path(tempfile.mkdtemp(dir=self._discarded_root()))
        for name in self.listdir(""):
            os.rename(name, place / name, src_dir_fd=self.fd)
        return place

    def _discarded_root(self) -> Path:
        root = discarded_root(self.root.parent)
        root.mkdir(exist_ok=True)
        return root


def discarded_root(state_root: Path) -> Path:
    """Where emptied staging trees wait to be deleted: beside the areas, on the same disk.

    Its name is no artifact name (those never hold ``#``), so it is never an area.
    """
    return state_root / "#discarded"


def delete_discarded(state_root: Path) -> None:
    """Delete staging trees emptied before a crash (committed data, safe to lose)."""
    shutil.rmtree(discarded_root(state_root), ignore_errors=True)
