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
What an entry of V holds beyond its bytes (a reference's URI and recorded
checksum, per-file metadata) and V's own metadata and description are kept in
the area's *base* (``StagingBase``, a JSON file beside the area); such a
placeholder's attribute names its record there, ``digest:size:index`` (the
digest empty for a reference that has none). The base lasts until a commit
succeeds or ``.staging`` is emptied.

Files written through the mount carry a digest record when they were written
in order (``artfs.vfs.write_digests``); the commit's hashing step uses it.

Nothing here touches the network or FUSE; the caller runs the slow parts
(hashing, copy-up) in worker threads.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from artfs import names
from artfs.client.models import FileRecord
from artfs.digests import check_digest
from artfs.errors import InvalidInput

__all__ = [
    "REF_XATTR",
    "Owner",
    "Placeholder",
    "StagedFile",
    "StagingArea",
    "StagingBase",
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
    #: A placeholder of a reference: where its bytes live.
    uri: str | None = None
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True)
class Placeholder:
    """What an unchanged copy-on-write file stands for: an entry of the base version."""

    #: None only for a reference whose checksum was not recorded.
    digest: str | None
    size: int
    #: Its entry in the base, where it has more than bytes (a reference, metadata).
    record: FileRecord | None = None

    @property
    def uri(self) -> str | None:
        return None if self.record is None else self.record.uri


@dataclass(frozen=True)
class StagingBase:
    """The version ``stage --from`` started from, as far as a commit needs it."""

    version: str
    metadata: dict[str, Any]
    description: str
    #: The entries with more than a digest and size, indexed by their placeholders.
    records: list[FileRecord]

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "metadata": self.metadata,
            "description": self.description,
            "records": [record.to_json() for record in self.records],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StagingBase:
        return cls(
            version=data["version"],
            metadata=data["metadata"],
            description=data["description"],
            records=[FileRecord.from_json(record) for record in data["records"]],
        )


def read_ref(fd: int) -> tuple[str | None, int, int | None] | None:
    """``(digest, size, record index)`` of the placeholder open at ``fd``, or ``None``."""
    try:
        raw = os.getxattr(fd, REF_XATTR)
    except OSError:
        return None
    digest, size, *index = raw.decode().split(":")
    return digest or None, int(size), int(index[0]) if index else None


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
        self._base_path = root.parent / "#bases" / f"{root.name}.json"
        self._base: StagingBase | None = None
        self._base_loaded = False
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

    def ref(self, path: str) -> Placeholder | None:
        """What the placeholder at ``path`` stands for, or ``None``."""
        try:
            fd = self.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return None
        try:
            found = read_ref(fd)
        finally:
            os.close(fd)
        if found is None:
            return None
        digest, size, index = found
        if index is None:
            return Placeholder(digest, size)
        base = self.base()
        if base is None or index >= len(base.records):
            # Its base is gone (never so while the area holds a placeholder of it).
            raise Uncommittable(f".staging/{path}: its entry in the version it came from is lost")
        return Placeholder(digest, size, base.records[index])

    # -- the base: the version stage --from started from ---------------------------

    def base(self) -> StagingBase | None:
        if not self._base_loaded:
            try:
                self._base = StagingBase.from_json(json.loads(self._base_path.read_bytes()))
            except FileNotFoundError:
                self._base = None
            self._base_loaded = True
        return self._base

    def set_base(self, base: StagingBase) -> None:
        """Record ``base`` (durably: a crash must not leave placeholders without it)."""
        self._base_path.parent.mkdir(exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self._base_path.parent, prefix=".base-")
        with open(fd, "wb") as out:
            out.write(json.dumps(base.to_json()).encode())
            out.flush()
            os.fsync(out.fileno())
        os.replace(name, self._base_path)
        self._base, self._base_loaded = base, True

    def drop_base(self) -> None:
        self._base_path.unlink(missing_ok=True)
        self._base, self._base_loaded = None, True

    def drop_base_if_empty(self) -> None:
        """Forget the base once ``.staging`` is emptied: what comes next starts afresh."""
        if self.base() is not None and self.is_empty():
            self.drop_base()

    def drop_ref(self, path: str) -> None:
        """Make the placeholder at ``path`` an ordinary empty file."""
        fd = self.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            os.removexattr(fd, REF_XATTR)
        finally:
            os.close(fd)

    def add_placeholder(
        self, path: str, digest: str | None, size: int, record: int | None = None
    ) -> None:
        """A placeholder for an entry: by its digest, and by ``record``, its index in
        the base, where the entry holds more (a reference: then the digest may be None)."""
        names.check_logical_path(path)
        if digest is not None:
            check_digest(digest)
        elif record is None:
            raise InvalidInput(f"{path}: a placeholder needs a digest or a record")
        parent = ""
        for part in path.split("/")[:-1]:
            parent = f"{parent}/{part}" if parent else part
            with contextlib.suppress(FileExistsError):
                os.mkdir(parent, dir_fd=self.fd)
        fd = self.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o666)
        try:
            value = f"{digest or ''}:{size}" + ("" if record is None else f":{record}")
            os.setxattr(fd, REF_XATTR, value.encode())
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
                files.append(dataclasses.replace(self._link_target(path, found), path=path))
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
            record = ref.record
            return StagedFile(
                path,
                ref.size,
                None,
                ref.digest,
                None if record is None else record.uri,
                None if record is None else record.metadata,
            )
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
        self.drop_base()
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
