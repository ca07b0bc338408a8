"""A mount while its registry is gone: what the machine holds keeps working, and
everything catches up when the registry returns, without a remount.

docs/design.md, "Outages and offline mounts", and the README's table say what
each operation does; this checks it operation by operation against a real
registry that the test stops and starts again.
"""

from __future__ import annotations

import errno
import os
import random
import time
from pathlib import Path

import pytest

from tests.support.artifacts import push_files
from tests.support.mount import artfs as run_artfs
from tests.support.mount import mounted
from tests.support.polling import wait_until
from tests.support.registry import RegistryProcess

MiB = 1 << 20
READ_TIMEOUT = 3.0


#: An artifact of two versions with an alias, as the mount lists it (labels given by the registry).
LISTED = [".staging", "1.0.0", "2.0.0", "latest", "prod", "v1", "v2"]


def read_uncached(path: Path) -> bytes:
    """The file's bytes from the daemon, not from the kernel's page cache of it."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        return Path(f"/proc/self/fd/{fd}").read_bytes()
    finally:
        os.close(fd)


def stale_mark(path: Path) -> bytes | None:
    try:
        return os.getxattr(path, "user.artfs.stale")
    except OSError as exc:
        if exc.errno != errno.ENODATA:
            raise
        return None


def test_a_stopped_registry_leaves_what_the_machine_holds_working(
    registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    rng = random.Random(17)
    cached = {"small.txt": b"hello offline", "weights.bin": rng.randbytes(3 * MiB + 5)}
    uncached = rng.randbytes(2 * MiB)
    push_files(
        registry.url, name, {**cached, "never-read.bin": uncached}, tmp_path, aliases=["prod"]
    )
    push_files(registry.url, name, {"small.txt": b"second"}, tmp_path)
    with mounted(
        tmp_path / "mnt",
        registry.url,
        tmp_path / "cache",
        "--read-timeout",
        str(READ_TIMEOUT),
        "--listing-timeout",
        "1",
    ) as mount:
        artifact = mount.path / name
        staging = artifact / ".staging"
        # What a user did before the outage: looked around, read two files, staged one.
        assert sorted(os.listdir(artifact)) == LISTED
        for path, data in cached.items():
            assert (artifact / "prod" / path).read_bytes() == data
        (staging / "before.txt").write_bytes(b"staged before")

        registry.stop(kill=True)
        # Once the listings' ttl passed, the alias shows its last known target, and says so.
        mark = wait_until(lambda: stale_mark(artifact / "prod"), "prod marked stale", 20)
        assert mark is not None
        assert mark.decode().startswith("20")  # when the registry last confirmed it
        assert stale_mark(artifact) is not None
        assert os.getxattr(artifact / "prod", "user.artfs.version") == b"v1"

        assert os.listdir(mount.path) == [name]
        assert sorted(os.listdir(artifact)) == LISTED
        assert sorted(os.listdir(artifact / "prod")) == [
            "never-read.bin",
            "small.txt",
            "weights.bin",
        ]
        assert (artifact / "v1" / "weights.bin").stat().st_size == len(cached["weights.bin"])
        for path, data in cached.items():
            assert read_uncached(artifact / "prod" / path) == data

        # Bytes this machine never had: EIO, within the one read deadline.
        started = time.monotonic()
        with pytest.raises(OSError) as caught:
            read_uncached(artifact / "v1" / "never-read.bin")
        assert caught.value.errno == errno.EIO
        assert time.monotonic() - started < 3 * READ_TIMEOUT

        # .staging is local: everything works.
        assert (staging / "before.txt").read_bytes() == b"staged before"
        (staging / "sub").mkdir()
        (staging / "sub" / "during.txt").write_bytes(b"staged during")
        os.rename(staging / "before.txt", staging / "sub" / "renamed.txt")
        assert sorted(os.listdir(staging / "sub")) == ["during.txt", "renamed.txt"]

        # A commit fails clearly, and keeps .staging as it was.
        with pytest.raises(OSError) as caught:
            os.rename(staging, artifact / "prod2")
        assert caught.value.errno == errno.EIO
        result = run_artfs("commit", str(artifact))
        assert result.returncode != 0
        assert "cannot reach the registry" in result.stderr
        assert "failed, .staging kept" in mount.log_text()
        assert sorted(os.listdir(staging / "sub")) == ["during.txt", "renamed.txt"]

        registry.start()
        # Back: listings refresh by themselves, the mark goes, commits work again.
        wait_until(lambda: stale_mark(artifact / "prod") is None, "prod fresh again", 20)
        result = run_artfs("commit", str(artifact), "--alias", "prod")
        assert result.returncode == 0, result.stderr
        assert os.getxattr(artifact / "prod", "user.artfs.version") == b"v3"
        assert (artifact / "v3" / "sub" / "renamed.txt").read_bytes() == b"staged before"
        # A version made elsewhere appears too.
        push_files(registry.url, name, {"small.txt": b"fourth"}, tmp_path)
        wait_until(lambda: "v4" in os.listdir(artifact), "v4 listed", 20)
        assert (artifact / "latest" / "small.txt").read_bytes() == b"fourth"


def test_a_read_deadline_is_one_deadline_and_no_retry_outlives_it(
    registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    push_files(registry.url, name, {"big.bin": random.Random(5).randbytes(4 * MiB)}, tmp_path)
    with mounted(
        tmp_path / "mnt", registry.url, tmp_path / "cache", "--read-timeout", str(READ_TIMEOUT)
    ) as mount:
        path = mount.path / name / "v1" / "big.bin"
        with open(path, "rb", buffering=0) as file:
            # Open while the registry is up: the handle knows the blob's chunks, and
            # only the bytes past the first are left to fetch.
            assert len(file.read(4096)) == 4096
            registry.stop(kill=True)
            started = time.monotonic()
            with pytest.raises(OSError) as caught:
                os.pread(file.fileno(), 65536, 3 * MiB)
            failed_after = time.monotonic() - started
        assert caught.value.errno == errno.EIO
        # The kernel asks again for a page whose read-ahead failed; that second
        # request must not wait a second deadline (it did: 2 x 5 s = 9.7 s).
        assert failed_after < 1.8 * READ_TIMEOUT
        retries = mount.log_text().count("retrying chunks")
        # Showing that nothing happens takes a while of nothing happening: a
        # fetch that outlived its reader would retry again within this span.
        time.sleep(READ_TIMEOUT)
        assert mount.log_text().count("retrying chunks") == retries
