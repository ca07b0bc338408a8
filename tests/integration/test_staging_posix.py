"""``.staging`` as POSIX expects it, through a real mount (what pjdfstest found wanting).

Paths up to the kernel's limit, modes exactly as asked, files that outlive
their names while open, hard links, owners, ``fallocate`` and the file types a
version cannot hold.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.mount import Mount, mounted
from tests.support.mount import artfs as run_artfs
from tests.support.registry import RegistryProcess

MiB = 1 << 20
NAME_MAX = 255
#: Fifteen directories of 255-byte names and a 255-byte file name: 4,095 bytes, the
#: longest relative path the kernel takes (PATH_MAX counts the terminating NUL).
DEEP_DIRS = [chr(ord("a") + i) * NAME_MAX for i in range(15)]
NOBODY = 65534
SOMEONE_ELSE = 65533
SHARED_GROUP = 4242


@pytest.fixture
def mount(shared_registry: RegistryProcess, tmp_path: Path) -> Iterator[Mount]:
    with mounted(tmp_path / "mnt", shared_registry.url, tmp_path / "cache") as m:
        yield m


def commit(artifact: Path) -> str:
    result = run_artfs("commit", str(artifact))
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def errno_of(action: object, *args: object) -> int:
    assert callable(action)
    with pytest.raises(OSError) as caught:
        action(*args)
    return caught.value.errno or 0


# -- paths near PATH_MAX ----------------------------------------------------------------


def make_deep_dirs(top_fd: int, names: list[str]) -> int:
    """Each directory inside the last, made by descriptor as pjdfstest does; returns the deepest."""
    fd = os.dup(top_fd)
    for name in names:
        os.mkdir(name, dir_fd=fd)
        inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = inner
    return fd


def read_at(top_fd: int, path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY, dir_fd=top_fd)
    try:
        return os.read(fd, 1 << 16)
    finally:
        os.close(fd)


def test_paths_of_4095_bytes_work_in_staging_through_commits_and_copy_on_write(
    mount: Mount, name: str
) -> None:
    artifact = mount.path / name
    artifact.mkdir()
    file_name, other, link = "f" * NAME_MAX, "g" * NAME_MAX, "s" * NAME_MAX
    deep_file = "/".join([*DEEP_DIRS, file_name])
    assert len(deep_file) == 4095
    staging = os.open(artifact / ".staging", os.O_RDONLY | os.O_DIRECTORY)
    deepest = make_deep_dirs(staging, DEEP_DIRS)
    try:
        fd = os.open(deep_file, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644, dir_fd=staging)
        os.write(fd, b"deep bytes")
        os.close(fd)
        assert os.stat(deep_file, dir_fd=staging).st_size == 10
        assert read_at(staging, deep_file) == b"deep bytes"
        os.rename(file_name, other, src_dir_fd=deepest, dst_dir_fd=deepest)
        os.link(other, file_name, src_dir_fd=deepest, dst_dir_fd=deepest)
        os.symlink(file_name, link, dir_fd=deepest)
        assert os.readlink(link, dir_fd=deepest) == file_name
        os.chmod(deep_file, 0o600, dir_fd=staging)
        os.utime(deep_file, ns=(1_000_000_000, 2_000_000_000), dir_fd=staging)
        info = os.stat(deep_file, dir_fd=staging)
        assert (stat.S_IMODE(info.st_mode), info.st_mtime_ns, info.st_nlink) == (
            0o600,
            2_000_000_000,
            2,
        )
        assert sorted(os.listdir(deepest)) == sorted([file_name, other, link])
        os.unlink(other, dir_fd=deepest)
        os.mkdir("d" * NAME_MAX, dir_fd=deepest)  # a directory at 4,095 bytes too
        os.rmdir("d" * NAME_MAX, dir_fd=deepest)
        fd = os.open(deep_file, os.O_WRONLY, dir_fd=staging)
        os.ftruncate(fd, 4)
        os.close(fd)
        assert read_at(deepest, link) == b"deep"
        assert commit(artifact) == "v1"

        version = os.open(artifact / "v1", os.O_RDONLY | os.O_DIRECTORY)
        try:
            assert read_at(version, deep_file) == b"deep"
            assert read_at(version, "/".join([*DEEP_DIRS, link])) == b"deep"
        finally:
            os.close(version)
        # A commit leaves a new, empty .staging; a descriptor on the old one leads to
        # a retired directory once the kernel's cached entries below it expire.
        os.close(staging)
        staging = os.open(artifact / ".staging", os.O_RDONLY | os.O_DIRECTORY)
        # Copy-on-write entries at the same depth: read through the cache, then copied up.
        staged = run_artfs("stage", str(artifact), "--from", "v1")
        assert staged.returncode == 0, staged.stderr
        assert os.stat(deep_file, dir_fd=staging).st_size == 4
        assert read_at(staging, deep_file) == b"deep"
        fd = os.open(deep_file, os.O_WRONLY | os.O_APPEND, dir_fd=staging)
        os.write(fd, b" and more")
        os.close(fd)
        assert commit(artifact) == "v2"
    finally:
        os.close(deepest)
        os.close(staging)
    version = os.open(artifact / "v2", os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert read_at(version, deep_file) == b"deep and more"
        assert read_at(version, "/".join([*DEEP_DIRS, link])) == b"deep"
    finally:
        os.close(version)


# -- modes ------------------------------------------------------------------------------


def test_new_entries_get_exactly_the_mode_asked_for_and_the_daemon_keeps_its_umask(
    mount: Mount, name: str
) -> None:
    artifact = mount.path / name
    artifact.mkdir()
    staging = artifact / ".staging"
    expected: dict[Path, int] = {}
    for umask in (0o000, 0o002, 0o022, 0o077):
        file_, directory, node = (staging / f"{kind}-{umask:03o}" for kind in ("f", "d", "n"))
        subprocess.run(["touch", str(file_)], umask=umask, check=True)
        subprocess.run(["mkdir", str(directory)], umask=umask, check=True)
        subprocess.run(
            [sys.executable, "-c", f"import os; os.mknod({str(node)!r}, 0o100666)"],
            umask=umask,
            check=True,
        )
        expected |= {file_: 0o666 & ~umask, directory: 0o777 & ~umask, node: 0o666 & ~umask}
    assert {path: stat.S_IMODE(path.stat().st_mode) for path in expected} == expected
    # The daemon's own files keep its own umask: reading a version fills its cache.
    (staging / "f-000").write_bytes(b"x" * MiB)
    assert commit(artifact) == "v1"
    assert (artifact / "v1" / "f-000").read_bytes() == b"x" * MiB
    writable = [p for p in mount.cache_dir.rglob("*") if p.lstat().st_mode & 0o002]
    assert mount.chunks()
    assert writable == []


# -- open files without a name ----------------------------------------------------------


def test_an_open_file_stays_usable_after_unlink_until_its_last_close(
    mount: Mount, name: str
) -> None:
    artifact = mount.path / name
    artifact.mkdir()
    staging = artifact / ".staging"
    fd = os.open(staging / "f", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"hello world")
        os.unlink(staging / "f")
        assert not (staging / "f").exists()
        assert os.fstat(fd).st_size == 11
        assert os.pread(fd, 5, 0) == b"hello"
        assert os.pwrite(fd, b"!", 11) == 1
        os.ftruncate(fd, 5)
        os.fchmod(fd, 0o600)
        os.utime(fd, ns=(1_000_000_000, 2_000_000_000))
        os.fsync(fd)
        info = os.fstat(fd)
        assert (info.st_size, stat.S_IMODE(info.st_mode), info.st_mtime_ns, info.st_nlink) == (
            5,
            0o600,
            2_000_000_000,
            0,
        )
        assert os.pread(fd, 100, 0) == b"hello"
        # A commit meanwhile takes what has a name and leaves the open file alone.
        (staging / "kept").write_bytes(b"kept")
        assert commit(artifact) == "v1"
        assert os.pread(fd, 100, 0) == b"hello"
        assert os.fstat(fd).st_size == 5
    finally:
        os.close(fd)
    assert tree_bytes(artifact / "v1") == {"kept": b"kept"}
    assert os.listdir(staging) == []


def test_an_open_file_replaced_by_a_rename_is_still_itself(mount: Mount, name: str) -> None:
    artifact = mount.path / name
    artifact.mkdir()
    staging = artifact / ".staging"
    (staging / "old").write_bytes(b"old bytes")
    with open(staging / "old", "rb") as old:
        (staging / "new").write_bytes(b"new")
        os.replace(staging / "new", staging / "old")
        assert os.fstat(old.fileno()).st_size == 9
        assert old.read() == b"old bytes"
    assert (staging / "old").read_bytes() == b"new"


# -- hard links -------------------------------------------------------------------------


def listed(command: list[str], cwd: Path) -> list[str]:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=True)
    return sorted(result.stdout.split())


def hard_linked(mount: Mount, name: str) -> Path:
    """``.staging`` with one file named ``a``, ``b`` and ``sub/c``."""
    artifact = mount.path / name
    artifact.mkdir()
    staging = artifact / ".staging"
    (staging / "sub").mkdir()
    (staging / "a").write_bytes(b"one")
    os.link(staging / "a", staging / "b")
    os.link(staging / "a", staging / "sub" / "c")
    return staging


def test_hard_links_are_listed_by_their_own_names(mount: Mount, name: str, tmp_path: Path) -> None:
    staging = hard_linked(mount, name)
    assert listed(["ls", "-A"], staging) == ["a", "b", "sub"]
    assert listed(["find", "."], staging) == [".", "./a", "./b", "./sub", "./sub/c"]
    inodes = {(staging / p).stat().st_ino for p in ("a", "b", "sub/c")}
    assert len(inodes) == 1
    assert (staging / "b").stat().st_nlink == 3
    # Copies see the tree as it is, links included.
    subprocess.run(["cp", "-a", str(staging), str(tmp_path / "copy")], check=True)
    copied = tmp_path / "copy"
    assert tree_bytes(copied) == {"a": b"one", "b": b"one", "sub/c": b"one"}
    assert len({(copied / p).stat().st_ino for p in ("a", "b", "sub/c")}) == 1
    archive = subprocess.run(
        ["tar", "-C", str(staging), "-cf", "-", "."], capture_output=True, check=True
    ).stdout
    members = subprocess.run(
        ["tar", "-tvf", "-"], input=archive, capture_output=True, check=True
    ).stdout.decode()
    assert sorted(line.split(maxsplit=5)[-1] for line in members.splitlines()) == [
        "./",
        "./a",
        "./b link to ./a",
        "./sub/",
        "./sub/c link to ./a",
    ]
    rsync = subprocess.run(
        ["rsync", "-aH", f"{staging}/", str(tmp_path / "rsynced")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert rsync.returncode == 0, rsync.stderr
    assert tree_bytes(tmp_path / "rsynced") == {"a": b"one", "b": b"one", "sub/c": b"one"}


def test_a_hard_linked_file_outlives_each_of_its_names(mount: Mount, name: str) -> None:
    staging = hard_linked(mount, name)
    # The name looked up last goes first: the others stay fully usable.
    os.unlink(staging / "sub" / "c")
    assert (staging / "a").stat().st_nlink == 2
    assert (staging / "a").read_bytes() == b"one"
    with open(staging / "a", "ab") as appending:
        appending.write(b" two")
    assert (staging / "b").read_bytes() == b"one two"
    os.unlink(staging / "b")
    assert (staging / "a").stat().st_nlink == 1
    os.rename(staging / "a", staging / "renamed")
    assert (staging / "renamed").read_bytes() == b"one two"
    os.link(staging / "renamed", staging / "again")
    os.unlink(staging / "renamed")
    assert listed(["find", "."], staging) == [".", "./again", "./sub"]
    with open(staging / "again", "r+b") as rewriting:
        rewriting.write(b"ONE")
    assert (staging / "again").read_bytes() == b"ONE two"
    assert commit(staging.parent) == "v1"
    assert tree_bytes(staging.parent / "v1") == {"again": b"ONE two"}


# -- owners -----------------------------------------------------------------------------


def test_stat_shows_the_real_owners_and_chown_changes_them(mount: Mount, name: str) -> None:
    artifact = mount.path / name
    artifact.mkdir()
    staging = artifact / ".staging"
    (staging / "f").write_bytes(b"f")
    (staging / "d").mkdir()
    os.symlink("f", staging / "l")
    for path in ("f", "d", "l"):
        info = (staging / path).lstat()
        assert (info.st_uid, info.st_gid) == (os.getuid(), os.getgid())
    os.chown(staging / "f", 1234, 5678)
    os.chown(staging / "d", 4321, -1)
    os.lchown(staging / "l", 8765, 4321)
    assert ((staging / "f").stat().st_uid, (staging / "f").stat().st_gid) == (1234, 5678)
    assert ((staging / "d").stat().st_uid, (staging / "d").stat().st_gid) == (4321, os.getgid())
    assert ((staging / "l").lstat().st_uid, (staging / "l").lstat().st_gid) == (8765, 4321)
    assert (staging / "f").stat().st_uid == 1234  # lchown left the link's target alone
    assert commit(artifact) == "v1"
    assert tree_bytes(artifact / "v1") == {"f": b"f", "l": b"f"}


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory every user may walk through (pytest's tmp_path is its owner's alone)."""
    place = Path(tempfile.mkdtemp(prefix="artfs-posix-"))
    place.chmod(0o755)
    try:
        yield place
    finally:
        shutil.rmtree(place, ignore_errors=True)


def as_user(uid: int, script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a shell ``script`` as user and group ``uid``, with no other groups.

    A shell, not this Python: its interpreter may lie where other users cannot go.
    """
    return subprocess.run(
        ["sh", "-c", script, "sh", *args],
        user=uid,
        group=uid,
        extra_groups=[],
        umask=0o022,
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_with_allow_other_new_entries_belong_to_their_creator_and_modes_hold(
    shared_registry: RegistryProcess, open_dir: Path, tmp_path: Path, name: str
) -> None:
    with mounted(
        open_dir / "mnt", shared_registry.url, tmp_path / "cache", "--allow-other"
    ) as mount:
        artifact = mount.path / name
        artifact.mkdir()
        staging = artifact / ".staging"
        os.chmod(staging, 0o1777)  # root lets everyone write here, as in /tmp
        making = 'cd "$1" && printf mine > f && mkdir d && ln -s f l'
        created = as_user(NOBODY, making, str(staging))
        assert created.returncode == 0, created.stderr
        for path, mode in (("f", 0o644), ("d", 0o755), ("l", 0o777)):
            info = (staging / path).lstat()
            assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (
                NOBODY,
                NOBODY,
                mode,
            ), path
        appending, reading = 'printf " more" >> "$1"', 'cat "$1"'
        refused = as_user(SOMEONE_ELSE, appending, str(staging / "f"))
        assert refused.returncode != 0
        assert os.strerror(errno.EACCES) in refused.stderr
        assert as_user(SOMEONE_ELSE, reading, str(staging / "f")).stdout == "mine"
        # The sticky directory keeps others from removing it, as in /tmp.
        removing = as_user(SOMEONE_ELSE, 'rm -f "$1"', str(staging / "f"))
        assert os.strerror(errno.EPERM) in removing.stderr
        assert as_user(NOBODY, appending, str(staging / "f")).returncode == 0
        assert (staging / "f").read_bytes() == b"mine more"
        # A set-group-ID directory gives its group to what is made in it, as on any disk.
        shared = staging / "shared"
        shared.mkdir()
        os.chown(shared, -1, SHARED_GROUP)
        os.chmod(shared, 0o2777)
        inside = as_user(NOBODY, 'cd "$1" && touch f && mkdir d', str(shared))
        assert inside.returncode == 0, inside.stderr
        made = {path: (shared / path).stat() for path in ("f", "d")}
        assert {path: (info.st_uid, info.st_gid) for path, info in made.items()} == {
            "f": (NOBODY, SHARED_GROUP),
            "d": (NOBODY, SHARED_GROUP),
        }
        assert stat.S_IMODE(made["d"].st_mode) == 0o2755
        assert commit(artifact) == "v1"
        assert tree_bytes(artifact / "v1") == {
            "f": b"mine more",
            "l": b"mine more",
            "shared/f": b"",
        }


# -- fallocate and the file types a version cannot hold ---------------------------------


def test_posix_fallocate_extends_with_zeros_and_fallocate_is_eopnotsupp(
    mount: Mount, name: str
) -> None:
    artifact = mount.path / name
    artifact.mkdir()
    path = artifact / ".staging" / "f"
    path.write_bytes(b"x" * 10)
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, MiB + 5)
        assert os.fstat(fd).st_size == MiB + 5
        assert os.pread(fd, 2 * MiB, 0) == b"x" * 10 + b"\0" * (MiB - 5)
        libc = ctypes.CDLL(None, use_errno=True)
        libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
        assert libc.fallocate(fd, 0, 0, 2 * MiB) == -1
        assert ctypes.get_errno() == errno.EOPNOTSUPP
        assert os.fstat(fd).st_size == MiB + 5
    finally:
        os.close(fd)
    assert commit(artifact) == "v1"
    assert (artifact / "v1" / "f").read_bytes() == b"x" * 10 + b"\0" * (MiB - 5)


def test_fifos_devices_and_sockets_are_eperm_and_leave_nothing(mount: Mount, name: str) -> None:
    artifact = mount.path / name
    artifact.mkdir()
    staging = artifact / ".staging"
    assert errno_of(os.mkfifo, staging / "fifo") == errno.EPERM
    assert errno_of(os.mknod, staging / "null", 0o600 | stat.S_IFCHR, os.makedev(1, 3)) == (
        errno.EPERM
    )
    assert errno_of(os.mknod, staging / "loop", 0o600 | stat.S_IFBLK, os.makedev(7, 0)) == (
        errno.EPERM
    )
    directory = os.open(staging, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with socket.socket(socket.AF_UNIX) as server:
            # Through the descriptor: the full path may be too long for a socket address.
            assert errno_of(server.bind, f"/proc/self/fd/{directory}/sock") == errno.EPERM
    finally:
        os.close(directory)
    assert os.listdir(staging) == []
