"""Fetch worker processes against a real registry: their failure modes, then in a mount.

The fetcher hands ranged fetches to worker processes (``artfs.fetch.workers``)
that download into the shared arena, verify, and write to the cache's disk.
These tests start real workers and check the guarantees the threads gave:
verified bytes only, single flight, and a worker's death costing a retry,
never a hang or a wrong byte.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trio

from artfs.cache.arena import ChunkArena
from artfs.cache.chunks import ChunkCache, Verdict
from artfs.cache.layout import ChunkLayout
from artfs.client.http import RegistryClient
from artfs.config import resolve_config
from artfs.errors import Corrupt
from artfs.fetch.fetcher import ChunkFetcher
from artfs.fetch.sources import RegistrySource
from artfs.fetch.workers import FetchWorkers
from tests.conftest import ErrorLogPolicy
from tests.integration.trees import push_tree
from tests.support.fault_proxy import BLOB_READS, Fault, FaultProxy
from tests.support.mount import mounted
from tests.support.polling import wait_until
from tests.support.registry import RegistryProcess

MiB = 1 << 20


def push_bytes(url: str, name: str, tmp_path: Path, data: bytes) -> str:
    push_tree(url, name, tmp_path / "src", {"blob.bin": data})
    return hashlib.sha256(data).hexdigest()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    return state != "Z"


class Workers:
    """A cache on an arena, and a worker pool over it, for one test."""

    def __init__(self, url: str, tmp_path: Path, count: int = 2) -> None:
        self.arena = ChunkArena(64)
        self.cache = ChunkCache(tmp_path / "cache", 1 << 30, arena=self.arena)
        self.log = tmp_path / "workers.log"
        self.pool = FetchWorkers(
            resolve_config(url),
            self.arena,
            str(tmp_path / "cache"),
            count=count,
            threads=2,
            range_timeout=10,
            log_file=str(self.log),
        )
        self.client = RegistryClient(resolve_config(url))

    def run(self, body: Callable[[ChunkFetcher], object], fetch_timeout: float = 30) -> None:
        async def main() -> None:
            async with trio.open_nursery() as nursery:
                fetcher = ChunkFetcher(
                    RegistrySource(self.client),
                    self.cache,
                    nursery,
                    fetch_timeout=fetch_timeout,
                    workers=self.pool,
                )
                await body(fetcher)  # type: ignore[misc]
                nursery.cancel_scope.cancel()

        trio.run(main)

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Stop the pool; none of its workers, dead or alive, may be left running, and
        those running stop on their own when hung up on, not killed."""
        pids = self.pool.pids()
        killed = self.pool.close()
        assert not [pid for pid in pids if alive(pid)], "a worker outlived its pool"
        assert not killed, "workers did not stop when hung up on"

    def read(self, layout: ChunkLayout) -> bytes:
        data = bytearray(layout.size)
        view = memoryview(data)
        for index in range(layout.chunk_count):
            start = index * layout.chunk_size
            got = self.cache.read(
                layout, index, 0, view[start : start + layout.chunk_length(index)]
            )
            assert got == layout.chunk_length(index)
        return bytes(data)


@pytest.fixture
def workers(shared_registry: RegistryProcess, tmp_path: Path) -> Iterator[Workers]:
    with Workers(shared_registry.url, tmp_path) as pool:
        yield pool


def test_workers_fetch_verify_and_store_once_for_many_readers(
    workers: Workers, shared_registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    data = random.Random(1).randbytes(11 * MiB + 5)
    digest = push_bytes(shared_registry.url, name, tmp_path, data)
    seen: dict[str, object] = {}

    async def body(fetcher: ChunkFetcher) -> None:
        layout = await fetcher.layout(digest)
        async with trio.open_nursery() as readers:
            for _ in range(10):
                readers.start_soon(fetcher.ensure, layout, range(layout.chunk_count))
        seen.update(layout=layout, requests=fetcher.requests_made, bytes=fetcher.bytes_fetched)

    workers.run(body)
    layout = seen["layout"]
    assert isinstance(layout, ChunkLayout)
    assert seen["requests"] == 2  # 12 chunks: two ranged requests of at most 8
    assert seen["bytes"] == len(data)
    assert workers.read(layout) == data
    # Written by the workers, readable by any process sharing the cache.
    again = ChunkCache(tmp_path / "cache", 1 << 30)
    assert all(again.verify_on_disk(layout, i) is Verdict.INTACT for i in range(layout.chunk_count))
    assert len(workers.pool.pids()) == 2


def test_a_worker_killed_mid_chunk_costs_a_retry_not_a_wrong_byte(
    shared_registry: RegistryProcess,
    tmp_path: Path,
    name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    data = random.Random(2).randbytes(6 * MiB)
    digest = push_bytes(shared_registry.url, name, tmp_path, data)
    with FaultProxy(shared_registry.url) as proxy:
        pool = Workers(proxy.url, tmp_path, count=1)
        killed: list[int] = []
        # The first ranged read is held at the proxy: its worker is mid-request.
        proxy.add(Fault.delay(3.0, path=BLOB_READS, times=1))
        seen: dict[str, object] = {}

        async def kill_when_held() -> None:
            while not proxy.faults["delay"] or not pool.pool.pids():
                await trio.sleep(0.02)
            pid = pool.pool.pids()[0]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

        async def body(fetcher: ChunkFetcher) -> None:
            layout = await fetcher.layout(digest)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(kill_when_held)
                await fetcher.ensure(layout, range(layout.chunk_count))
            seen.update(layout=layout, requests=fetcher.requests_made)

        with pool:
            pool.run(body)
            assert workers_replaced(pool, killed)
    layout = seen["layout"]
    assert isinstance(layout, ChunkLayout)
    assert pool.read(layout) == data
    assert seen["requests"] == 2  # the one the worker died in, and its retry
    assert f"fetch worker {killed[0]} stopped" in caplog.text


def workers_replaced(pool: Workers, killed: list[int]) -> bool:
    return bool(killed) and not alive(killed[0]) and killed[0] not in pool.pool.pids()


def test_a_corrupt_chunk_from_a_worker_is_refused_and_its_slot_reused(
    shared_registry: RegistryProcess,
    tmp_path: Path,
    name: str,
    error_logs: ErrorLogPolicy,
) -> None:
    data = random.Random(3).randbytes(3 * MiB)
    digest = push_bytes(shared_registry.url, name, tmp_path, data)
    with FaultProxy(shared_registry.url) as proxy:
        pool = Workers(proxy.url, tmp_path)
        proxy.add(Fault.corrupt(path=BLOB_READS, times=1))
        seen: dict[str, object] = {}

        async def body(fetcher: ChunkFetcher) -> None:
            layout = await fetcher.layout(digest)
            with pytest.raises(Corrupt):
                await fetcher.ensure(layout, range(layout.chunk_count))
            # Nothing of the refused answer is listed, and every slot came back.
            seen["listed_after_corrupt"] = [
                i for i in range(layout.chunk_count) if fetcher.cache.has(digest, i)
            ]
            seen["free_after_corrupt"] = _free_slots(fetcher.cache)
            await trio.sleep(1.1)  # past FAILURE_MEMORY: the next reader asks afresh
            await fetcher.ensure(layout, range(layout.chunk_count))
            seen["layout"] = layout

        with pool:
            pool.run(body)
    layout = seen["layout"]
    assert isinstance(layout, ChunkLayout)
    assert proxy.faults["corrupt"] == 1
    listed = seen["listed_after_corrupt"]
    assert isinstance(listed, list)
    assert len(listed) < layout.chunk_count
    # Chunks verified before the flipped one hold their slots (the fresh tier); no other.
    assert seen["free_after_corrupt"] == 64 - len(listed)
    assert pool.read(layout) == data
    log = (tmp_path / "workers.log").read_text()
    assert "failed verification; refusing its bytes" in log
    assert "[worker " in log


def _free_slots(cache: ChunkCache) -> int:
    count = 0
    taken = []
    while (shared := cache.shared_buffer(MiB)) is not None:
        taken.append(shared[0])
        count += 1
    for slot in taken:
        cache.release_slot(slot)
    return count


def test_a_mount_reads_through_its_workers_and_stops_them_at_unmount(
    shared_registry: RegistryProcess, tmp_path: Path, name: str, error_logs: ErrorLogPolicy
) -> None:
    data = random.Random(4).randbytes(24 * MiB + 3)
    push_bytes(shared_registry.url, name, tmp_path, data)
    with mounted(
        tmp_path / "mnt", shared_registry.url, tmp_path / "cache", "--fetch-workers", "2"
    ) as mount:
        path = mount.path / name / "latest" / "blob.bin"
        daemon = mount.daemon_pid()
        assert daemon is not None
        reader = subprocess.Popen(["sha256sum", str(path)], stdout=subprocess.PIPE, text=True)
        # Kill a worker while the read is under way; the read still gets every byte right.
        pids = wait_until(lambda: _children(daemon), "fetch workers", timeout=20)
        os.kill(pids[0], signal.SIGKILL)
        out, _ = reader.communicate(timeout=60)
        assert out.split()[0] == hashlib.sha256(data).hexdigest()
        workers_read = sum(_bytes_read(pid) for pid in _children(daemon))
        assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(data).digest()
        children = _children(daemon)
    assert workers_read > 0
    assert not [pid for pid in children if alive(pid)], "a worker outlived its mount"


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return [child for child in found if alive(child)]


def _bytes_read(pid: int) -> int:
    try:
        lines = Path(f"/proc/{pid}/io").read_text().splitlines()
    except OSError:
        return 0
    return next(int(line.split()[1]) for line in lines if line.startswith("rchar"))


def test_workers_that_keep_dying_leave_the_fetch_to_threads(
    shared_registry: RegistryProcess, tmp_path: Path, name: str, error_logs: ErrorLogPolicy
) -> None:
    error_logs.allow("fetch workers keep stopping")
    data = random.Random(5).randbytes(2 * MiB)
    digest = push_bytes(shared_registry.url, name, tmp_path, data)
    pool = Workers(shared_registry.url, tmp_path, count=1)
    # Workers open the arena through the daemon's descriptor: gone, each dies at start.
    pool.arena.close()
    seen: dict[str, object] = {}

    async def body(fetcher: ChunkFetcher) -> None:
        layout = await fetcher.layout(digest)
        await fetcher.ensure(layout, range(layout.chunk_count))
        seen["layout"] = layout

    with pool:
        pool.run(body)
    layout = seen["layout"]
    assert isinstance(layout, ChunkLayout)
    assert not pool.pool.usable
    assert pool.read(layout) == data
    assert "Traceback" in (tmp_path / "workers.log").read_text()  # why each one died
