"""A running mount verifies every chunk it reads from its cache's disk files (SPEC §5):
bytes damaged on disk after the mount verified them are caught, logged and fetched
again, or the read fails with EIO; never a wrong byte."""

from __future__ import annotations

import errno
import hashlib
import os
import random
import subprocess
from pathlib import Path

import pytest

from artfs.cache.ondisk import ChunkPlace
from tests.integration.trees import push_tree
from tests.support.mount import Mount, mounted, read_chunk
from tests.support.polling import wait_until
from tests.support.registry import RegistryProcess

MiB = 1 << 20
BIG = random.Random(17).randbytes(5 * MiB + 11)
ONE = random.Random(18).randbytes(700 << 10)  # a one-chunk blob, fetched alone: a file of its own
DAMAGED = (1, 2, 4)  # chunks of BIG: the read-ahead fetches the first ones alone, later ones packed


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _flip(place: ChunkPlace, at: int) -> None:
    """Damage a cached chunk in place, as a stray writer or bad disk would."""
    with open(place.path, "r+b") as target:
        byte = os.pread(target.fileno(), 1, place.offset + at)
        os.pwrite(target.fileno(), bytes([byte[0] ^ 0x5A]), place.offset + at)


def _drop_page_cache(path: Path) -> None:
    """Make the next read of ``path`` reach the daemon: the kernel's copy is dropped, and
    asked again until ``fincore`` finds no page of it left (a page under I/O, as on a
    busy machine, is skipped by one ``DONTNEED``; served from it, a read never reaches
    the damaged chunk this test is about)."""

    def dropped() -> bool:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
        resident = subprocess.run(
            ["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return int(resident.stdout) == 0

    wait_until(dropped, f"no page of {path} in the page cache")


def _cached_and_damaged(registry: RegistryProcess, tmp_path: Path, name: str, mount: Mount) -> None:
    """Read both files through ``mount`` (cached, verified), then damage chunks on disk."""
    version = mount.path / name / "v1"
    assert (version / "big.bin").read_bytes() == BIG
    assert (version / "one.bin").read_bytes() == ONE
    places = mount.chunks()
    damaged = [places[(_digest(ONE), 0)]] + [places[(_digest(BIG), i)] for i in DAMAGED]
    # Both kinds of cache file: chunk files of their own, and packs.
    assert {place.path.endswith(".pack") for place in damaged} == {False, True}
    for number, place in enumerate(damaged):
        _flip(place, 777 if number % 2 else place.size - 1)
    for path in (version / "big.bin", version / "one.bin"):
        _drop_page_cache(path)


@pytest.fixture
def pushed(registry: RegistryProcess, tmp_path: Path, name: str) -> RegistryProcess:
    push_tree(registry.url, name, tmp_path / "src", {"big.bin": BIG, "one.bin": ONE})
    return registry


def test_damaged_cache_bytes_are_caught_under_a_running_mount_and_fetched_again(
    pushed: RegistryProcess, tmp_path: Path, name: str
) -> None:
    cache = tmp_path / "cache"
    with mounted(tmp_path / "mnt", pushed.url, cache) as mount:
        _cached_and_damaged(pushed, tmp_path, name, mount)
        version = mount.path / name / "v1"
        # Reads inside each damaged chunk first, then the whole files: all correct.
        with open(version / "big.bin", "rb") as big:
            for index in DAMAGED:
                offset = index * MiB + 700
                assert os.pread(big.fileno(), 4096, offset) == BIG[offset : offset + 4096]
        with open(version / "one.bin", "rb") as one:
            assert os.pread(one.fileno(), 8192, len(ONE) - 8192) == ONE[-8192:]
        assert (version / "big.bin").read_bytes() == BIG
        assert (version / "one.bin").read_bytes() == ONE

        log = mount.log_text()
        places = mount.chunks()
    for digest, index in [(_digest(ONE), 0)] + [(_digest(BIG), i) for i in DAMAGED]:
        assert f"chunk {index} of blob {digest} is corrupt" in log
    assert log.count("is corrupt") == 1 + len(DAMAGED)  # one line each
    # The bad copies were replaced by good ones, fetched again.
    assert read_chunk(places[(_digest(ONE), 0)]) == ONE
    for index in DAMAGED:
        assert read_chunk(places[(_digest(BIG), index)]) == BIG[index * MiB : (index + 1) * MiB]


def test_a_damaged_chunk_is_eio_not_wrong_bytes_when_the_registry_is_gone(
    pushed: RegistryProcess, tmp_path: Path, name: str
) -> None:
    cache = tmp_path / "cache"
    with mounted(tmp_path / "mnt", pushed.url, cache, "--read-timeout", "2") as mount:
        _cached_and_damaged(pushed, tmp_path, name, mount)
        with open(mount.path / name / "v1" / "big.bin", "rb") as big:
            pushed.stop()
            # Intact chunks still read from the cache, verified.
            assert os.pread(big.fileno(), 4096, 3 * MiB) == BIG[3 * MiB : 3 * MiB + 4096]
            with pytest.raises(OSError) as failed:
                os.pread(big.fileno(), 4096, 2 * MiB + 100)
            assert failed.value.errno == errno.EIO
        assert f"chunk 2 of blob {_digest(BIG)} is corrupt" in mount.log_text()
