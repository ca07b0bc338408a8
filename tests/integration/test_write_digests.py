"""Digests computed while staging files are written (``artfs.vfs.write_digests``).

A file written in order through the mount carries its sha256 in a record on
the backing file; a commit uses it instead of reading the file again. These
tests look at the backing files (``--staging-dir``) to see the records, and
check that whatever happens to a file — rewrites, truncates, a daemon killed
mid-write, a record that lies — the committed bytes are the bytes it holds.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import signal
from pathlib import Path

import artfs
from artfs.daemon.pids import wait_exit
from artfs.upload.records import DIGEST_XATTR, read_record
from tests.support.mount import Mount, mounted
from tests.support.mount import artfs as run_artfs
from tests.support.polling import wait_until
from tests.support.registry import RegistryProcess

MiB = 1 << 20


def _mount(registry: RegistryProcess, tmp_path: Path) -> Mount:
    return Mount(
        tmp_path / "mnt", registry.url, tmp_path / "cache", "--staging-dir", str(tmp_path / "st")
    )


def _backing(tmp_path: Path, name: str, path: str) -> Path:
    found = [p for p in (tmp_path / "st").rglob(path) if p.parent.name == name]
    assert len(found) == 1, found
    return found[0]


def _commit(mount: Mount, name: str) -> str:
    result = run_artfs("commit", str(mount.path / name))
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def _committed(url: str, name: str, version: str) -> dict[str, str]:
    with artfs.Client(url=url) as client:
        return {
            asset.logical_path: asset.digest or ""
            for asset in client.get_artifact(name, version).assets
        }


def _recorded(tmp_path: Path, name: str, *paths: str) -> bool:
    """Whether each file has its digest record: written when its release reaches the daemon."""
    return all(read_record(_backing(tmp_path, name, path)) is not None for path in paths)


def _releases_handled(staging: Path, tmp_path: Path, name: str) -> None:
    """Wait until the daemon has handled the releases of the files closed so far.

    A release reaches the daemon after close returns, in the order of the
    closes: once a file closed after them has its record, they are handled.
    """
    (staging / "settled").write_bytes(b"settled")
    wait_until(lambda: _recorded(tmp_path, name, "settled"), "the daemon handling releases")
    (staging / "settled").unlink()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_in_pieces(path: Path, data: bytes, piece: int = 256 * 1024) -> None:
    with open(path, "wb") as out:
        for start in range(0, len(data), piece):
            out.write(data[start : start + piece])


def test_a_file_written_in_order_is_committed_by_its_recorded_digest(
    shared_registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    rng = random.Random(1)
    big, small = rng.randbytes(3 * MiB + 11), b"hello"
    mount = _mount(shared_registry, tmp_path)
    try:
        mount.mount()
        staging = mount.path / name / ".staging"
        (mount.path / name).mkdir()
        _write_in_pieces(staging / "big.bin", big)
        (staging / "small.txt").write_bytes(small)
        (staging / "empty").write_bytes(b"")
        # `cp -p` and `rsync -t` set the mtime after writing: the record follows.
        os.utime(staging / "small.txt", ns=(1_000_000_000, 2_000_000_000))
        wait_until(
            lambda: _recorded(tmp_path, name, "big.bin", "small.txt", "empty"), "digest records"
        )
        for path, data in (("big.bin", big), ("small.txt", small), ("empty", b"")):
            assert read_record(_backing(tmp_path, name, path)) == (_sha(data), len(data))
        assert _commit(mount, name) == "v1"
        assert _committed(shared_registry.url, name, "v1") == {
            "big.bin": _sha(big),
            "small.txt": _sha(small),
            "empty": _sha(b""),
        }
        assert (mount.path / name / "v1" / "big.bin").read_bytes() == big
    finally:
        mount.unmount()


def test_rewrites_truncates_and_appends_drop_the_record(
    shared_registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    mount = _mount(shared_registry, tmp_path)
    try:
        mount.mount()
        staging = mount.path / name / ".staging"
        (mount.path / name).mkdir()
        for path in ("rewritten", "truncated", "appended", "backwards"):
            (staging / path).write_bytes(b"0123456789" * 1000)
        wait_until(
            lambda: _recorded(tmp_path, name, "rewritten", "truncated", "appended", "backwards"),
            "digest records",
        )
        with open(staging / "rewritten", "r+b") as f:
            f.seek(5)
            f.write(b"XX")
        os.truncate(staging / "truncated", 7)
        with open(staging / "appended", "ab") as f:
            f.write(b"more")
        fd = os.open(staging / "backwards", os.O_WRONLY | os.O_TRUNC)
        try:
            os.pwrite(fd, b"b" * 10, 10)
            os.pwrite(fd, b"a" * 10, 0)
        finally:
            os.close(fd)
        _releases_handled(staging, tmp_path, name)
        expected = {path: (staging / path).read_bytes() for path in os.listdir(staging)}
        for path in expected:
            backing = _backing(tmp_path, name, path)
            assert DIGEST_XATTR not in os.listxattr(backing), path
        assert expected["rewritten"][:8] == b"01234XX7"
        assert _commit(mount, name) == "v1"
        assert _committed(shared_registry.url, name, "v1") == {
            path: _sha(data) for path, data in expected.items()
        }
    finally:
        mount.unmount()


def test_a_daemon_killed_mid_write_leaves_no_record_and_the_commit_takes_the_bytes_on_disk(
    shared_registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    rng = random.Random(2)
    first, more = rng.randbytes(2 * MiB), rng.randbytes(MiB + 3)
    mount = _mount(shared_registry, tmp_path)
    try:
        mount.mount()
        staging = mount.path / name / ".staging"
        (mount.path / name).mkdir()
        (staging / "recorded.bin").write_bytes(first)
        wait_until(lambda: _recorded(tmp_path, name, "recorded.bin"), "the digest record")
        assert read_record(_backing(tmp_path, name, "recorded.bin")) is not None
        # Both files are open for writing, with bytes written, when the daemon dies.
        fresh = os.open(staging / "fresh.bin", os.O_WRONLY | os.O_CREAT, 0o644)
        appending = os.open(staging / "recorded.bin", os.O_WRONLY | os.O_APPEND)
        os.write(fresh, first)
        os.write(appending, more)
        pid = mount.daemon_pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        assert wait_exit(pid, 10)
        for fd in (fresh, appending):
            with contextlib.suppress(OSError):  # the mount is gone
                os.close(fd)
    finally:
        mount.unmount()
    with mounted(
        tmp_path / "mnt",
        shared_registry.url,
        tmp_path / "cache",
        "--staging-dir",
        str(tmp_path / "st"),
    ) as again:
        staging = again.path / name / ".staging"
        on_disk = {path: (staging / path).read_bytes() for path in ("fresh.bin", "recorded.bin")}
        assert on_disk == {"fresh.bin": first, "recorded.bin": first + more}
        for path in on_disk:
            assert read_record(_backing(tmp_path, name, path)) is None, path
        assert _commit(again, name) == "v1"
        assert _committed(shared_registry.url, name, "v1") == {
            path: _sha(data) for path, data in on_disk.items()
        }
        assert (again.path / name / "v1" / "recorded.bin").read_bytes() == first + more


def test_a_record_that_lies_is_caught_by_the_registry_and_the_commit_hashes_instead(
    shared_registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    data = random.Random(3).randbytes(MiB + 5)
    mount = _mount(shared_registry, tmp_path)
    try:
        mount.mount()
        staging = mount.path / name / ".staging"
        (mount.path / name).mkdir()
        (staging / "f.bin").write_bytes(data)
        wait_until(lambda: _recorded(tmp_path, name, "f.bin"), "the digest record")
        # An edit behind the mount's back that keeps size and mtime: the record
        # now names bytes nobody has (the registry included).
        backing = _backing(tmp_path, name, "f.bin")
        info = backing.stat()
        wrong = _sha(b"not these bytes")
        os.setxattr(backing, DIGEST_XATTR, f"{wrong}:{info.st_size}:{info.st_mtime_ns}".encode())
        assert read_record(backing) == (wrong, len(data))
        assert _commit(mount, name) == "v1"
        assert _committed(shared_registry.url, name, "v1") == {"f.bin": _sha(data)}
        assert (mount.path / name / "v1" / "f.bin").read_bytes() == data
        assert "did not match a recorded digest" in mount.log_text()
    finally:
        mount.unmount()
