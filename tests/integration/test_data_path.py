"""The mount's data path: kernel read-ahead, warm reads, crash safety, the fresh tier."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import time
from pathlib import Path
from typing import BinaryIO

import pytest
import trio

from artfs.cache.chunks import ChunkCache
from artfs.cache.layout import ChunkLayout
from artfs.cache.ondisk import chunk_places
from artfs.client.http import RegistryClient
from artfs.config import resolve_config
from artfs.daemon.kernel_readahead import device_of_mount
from artfs.daemon.mount import READ_AHEAD_KB
from artfs.fetch.fetcher import ChunkFetcher
from artfs.fetch.sources import RegistrySource
from tests.integration.trees import push_tree
from tests.support.mount import mounted, read_chunk, write_chunk
from tests.support.polling import wait_until
from tests.support.registry import RegistryProcess

MiB = 1 << 20


def push_file(url: str, name: str, tmp_path: Path, data: bytes) -> str:
    push_tree(url, name, tmp_path / "src", {"big.bin": data})
    return hashlib.sha256(data).hexdigest()


def blob_gets(registry: RegistryProcess) -> list[str]:
    return [
        line for line in registry.requests_seen() if line.startswith("GET") and "/blobs/" in line
    ]


@pytest.mark.skipif(os.geteuid() != 0, reason="only root may set a device's read-ahead")
def test_mount_raises_the_kernel_read_ahead_of_its_device(
    shared_registry: RegistryProcess, tmp_path: Path
) -> None:
    with mounted(tmp_path / "mnt", shared_registry.url, tmp_path / "cache") as mount:
        device = device_of_mount(mount.path.resolve())
        assert device is not None
        st = os.stat(mount.path)
        assert device == f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
        setting = Path("/sys/class/bdi") / device / "read_ahead_kb"
        assert int(setting.read_text()) == READ_AHEAD_KB


def test_device_of_mount_reads_escaped_mountinfo(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(
        "22 1 0:21 / /proc rw - proc proc rw\n"
        "90 22 0:52 / /tmp/a\\040b rw - fuse.artfs artfs rw\n"
        "91 22 0:53 / /tmp/a\\040b rw - fuse.artfs artfs rw\n"
    )
    assert device_of_mount(Path("/tmp/a b"), info) == "0:53"  # the top of a stack
    assert device_of_mount(Path("/tmp/elsewhere"), info) is None


def test_warm_read_in_a_new_mount_fetches_nothing_and_checks_every_chunk(
    registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    data = random.Random(5).randbytes(9 * MiB + 123)
    push_file(registry.url, name, tmp_path, data)
    cache = tmp_path / "cache"
    path = Path(name) / "v1" / "big.bin"
    with mounted(tmp_path / "mnt", registry.url, cache) as mount:
        assert (mount.path / path).read_bytes() == data
    before = len(blob_gets(registry))
    # Damage one chunk on disk: the new mount verifies before handing out.
    digest = hashlib.sha256(data).hexdigest()
    write_chunk(chunk_places(cache)[(digest, 4)], b"\0" * MiB)
    with mounted(tmp_path / "mnt", registry.url, cache) as mount:
        assert (mount.path / path).read_bytes() == data
        assert "corrupt" in mount.log_text()
    # Only the damaged chunk crossed the network again.
    assert len(blob_gets(registry)) == before + 1
    assert read_chunk(chunk_places(cache)[(digest, 4)]) == data[4 * MiB : 5 * MiB]


def test_daemon_killed_mid_read_leaves_a_cache_the_next_mount_reads_correctly(
    shared_registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    data = random.Random(6).randbytes(48 * MiB)
    push_file(shared_registry.url, name, tmp_path, data)
    cache = tmp_path / "cache"
    path = Path(name) / "v1" / "big.bin"
    with mounted(tmp_path / "mnt", shared_registry.url, cache) as mount:
        pid = mount.daemon_pid()
        assert pid is not None
        reader = subprocess.Popen(["cat", str(mount.path / path)], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not mount.chunks() and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(pid, signal.SIGKILL)
        reader.wait(timeout=30)
        subprocess.run(["fusermount3", "-u", "-z", str(mount.path)], check=False)
    # Killed mid-write or not, every chunk under a final name (file or pack) is whole.
    left = chunk_places(cache)
    assert left
    for (_, index), place in left.items():
        assert read_chunk(place) == data[index * MiB : (index + 1) * MiB]
    with mounted(tmp_path / "mnt", shared_registry.url, cache) as mount:
        assert (mount.path / path).read_bytes() == data


def test_fresh_tier_is_bounded_and_chunks_read_back_from_disk(tmp_path: Path) -> None:
    chunks = [random.Random(i).randbytes(MiB) for i in range(6)]
    layout = ChunkLayout(
        digest="ab" * 32,
        size=6 * MiB,
        chunk_size=MiB,
        chunk_digests=b"".join(hashlib.sha256(c).digest() for c in chunks),
    )
    cache = ChunkCache(tmp_path / "cache", 1 << 30, fresh_bytes=2 * MiB)
    for index, chunk in enumerate(chunks):
        buffer = cache.new_buffer(len(chunk))
        memoryview(buffer)[:] = chunk
        cache.store(layout, index, buffer)
    assert cache.stats()["chunks"] == 6
    _, on_disk = cache.pending(layout, range(6))
    assert len(on_disk) >= 4  # the tier holds 2 MiB; the rest went to disk only
    for index, chunk in enumerate(chunks):
        assert cache.check(layout, index)  # from memory, or read back and verified
        assert cache.read_ready(layout, index, 0, MiB - 1000) == chunk[:-1000]
        view = memoryview(bytearray(1000))
        assert cache.read_ready_into(layout, index, MiB - 1000, view) == 1000
        assert view.tobytes() == chunk[-1000:]
    # What was written straight to disk is exactly what was stored.
    reopened = ChunkCache(tmp_path / "cache", 1 << 30)
    for index, chunk in enumerate(chunks):
        assert reopened.read_ready(layout, index, 0, MiB) is None  # not verified here yet
        assert reopened.check(layout, index)
        assert reopened.read_ready(layout, index, 0, MiB) == chunk


def test_fetcher_reads_ranges_into_intact_chunks_one_request_per_run(
    shared_registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    data = random.Random(7).randbytes(20 * MiB)
    digest = push_file(shared_registry.url, name, tmp_path, data)
    client = RegistryClient(resolve_config(shared_registry.url))
    cache = ChunkCache(tmp_path / "cache", 1 << 30)

    async def main() -> int:
        async with trio.open_nursery() as nursery:
            fetcher = ChunkFetcher(
                RegistrySource(client), cache, nursery, max_request_bytes=2 * MiB
            )
            layout = await fetcher.layout(digest)
            for start in range(0, layout.chunk_count, 2):
                await fetcher.ensure(layout, range(start, start + 2))
            fetcher.close()
            nursery.cancel_scope.cancel()
            return fetcher.requests_made

    assert trio.run(main) == 10
    layout = cache.layout(digest)
    assert layout is not None
    for index in range(20):
        assert cache.read_ready(layout, index, 0, MiB) == data[index * MiB : (index + 1) * MiB]
    # The chunks of one request lie together: a pack per request, no file per chunk.
    places = chunk_places(tmp_path / "cache")
    assert len(places) == 20
    assert len({place.path for place in places.values()}) == 10
    assert all(place.path.endswith(".pack") for place in places.values())


def sha256_of(stream: BinaryIO) -> str:
    """The digest of what ``stream`` reads to its end, 1 MiB at a time (as a reader streams)."""
    hasher = hashlib.sha256()
    while piece := stream.read(MiB):
        hasher.update(piece)
    return hasher.hexdigest()


def test_a_file_streamed_through_a_small_cache_keeps_the_bound_while_open(
    shared_registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    data = random.Random(21).randbytes(48 * MiB)
    digest = push_file(shared_registry.url, name, tmp_path, data)
    with (
        mounted(
            tmp_path / "mnt", shared_registry.url, tmp_path / "cache", "--cache-size", "16M"
        ) as mount,
        open(mount.path / name / "v1" / "big.bin", "rb") as stream,
    ):
        assert sha256_of(stream) == digest
        # Still open: its older chunks made room all the same. The fetch's worker
        # threads may still be finishing the last request's pack when the read
        # returns, so the disk is looked at until they are done.
        wait_until(lambda: mount.cached_bytes() <= 16 * MiB, "the cache back within its bound")


def test_a_full_cache_disk_gives_up_old_chunks_instead_of_failing_reads(
    shared_registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    data = random.Random(23).randbytes(40 * MiB)
    digest = push_file(shared_registry.url, name, tmp_path, data)
    disk = tmp_path / "disk"
    disk.mkdir()
    # A cache bound far above what its disk holds: the disk fills first.
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)], check=True)
    try:
        with mounted(
            tmp_path / "mnt", shared_registry.url, disk / "cache", "--cache-size", "1G"
        ) as mount:
            with open(mount.path / name / "v1" / "big.bin", "rb") as stream:
                assert sha256_of(stream) == digest
            assert "cache disk full" in mount.log_text()
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
