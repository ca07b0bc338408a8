"""``ChunkFetcher`` and ``SmallBlobBatches`` over an in-process registry: what they ask
for, how often, and what they do with bytes that break or lie."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
import trio
import trio.testing

from artfs.cache.chunks import ChunkCache
from artfs.errors import Corrupt, NotFound, Transient
from artfs.fetch.batch import SmallBlob, SmallBlobBatches
from artfs.fetch.fetcher import ChunkFetcher
from artfs.fetch.sources import RegistrySource
from tests.conftest import ErrorLogPolicy
from tests.support.fake_registry import FakeRegistry

MiB = 1 << 20
T = TypeVar("T")


def with_fetcher(
    fake: FakeRegistry,
    cache: ChunkCache,
    body: Callable[[ChunkFetcher], Awaitable[T]],
    *,
    fetch_timeout: float = 60.0,
) -> T:
    async def main() -> T:
        async with trio.open_nursery() as nursery:
            fetcher = ChunkFetcher(
                RegistrySource(fake), cache, nursery, fetch_timeout=fetch_timeout
            )
            try:
                return await body(fetcher)
            finally:
                nursery.cancel_scope.cancel()

    return trio.run(main)


def one_blob(fake: FakeRegistry, size: int, seed: int = 1) -> tuple[str, bytes]:
    data = random.Random(seed).randbytes(size)
    fake.add_version("a", {"blob.bin": data})
    return hashlib.sha256(data).hexdigest(), data


def cached(cache: ChunkCache, digest: str, size: int) -> bytes:
    """The blob's bytes as the cache hands them out, each chunk verified."""
    layout = cache.layout(digest, size)
    assert layout is not None
    out = bytearray(size)
    for index in range(layout.chunk_count):
        start = index * layout.chunk_size
        view = memoryview(out)[start : start + layout.chunk_length(index)]
        assert cache.read(layout, index, 0, view) == len(view)
    return bytes(out)


def test_a_read_fetches_only_the_chunks_it_covers_and_once(tmp_path: Path) -> None:
    fake = FakeRegistry()
    digest, data = one_blob(fake, 10 * MiB + 5)
    cache = ChunkCache(tmp_path / "cache", 1 << 30)

    async def body(fetcher: ChunkFetcher) -> None:
        layout = await fetcher.layout(digest)
        needed = layout.chunks_for(3 * MiB + 10, MiB)
        await fetcher.ensure(layout, needed)
        await fetcher.ensure(layout, needed)  # ready now: nothing more to ask

    with_fetcher(fake, cache, body)
    assert fake.range_reads == [(digest, 3 * MiB, 5 * MiB)]
    assert fake.calls["blob_chunks"] == 1
    layout = cache.layout(digest)
    assert layout is not None
    assert [i for i in range(layout.chunk_count) if cache.has(digest, i)] == [3, 4]
    assert cache.read_ready(layout, 4, 0, MiB) == data[4 * MiB : 5 * MiB]


def test_concurrent_readers_of_a_chunk_share_one_request(tmp_path: Path) -> None:
    fake = FakeRegistry()
    digest, data = one_blob(fake, 3 * MiB)
    cache = ChunkCache(tmp_path / "cache", 1 << 30)
    # The request is held until every reader waits on it, so none can come late.
    held = fake.delay("open_range", 30)

    async def body(fetcher: ChunkFetcher) -> int:
        layout = await fetcher.layout(digest)
        async with trio.open_nursery() as readers:
            for _ in range(20):
                readers.start_soon(fetcher.ensure, layout, range(1, 2))
            await trio.testing.wait_all_tasks_blocked()
            held.release()
        return fetcher.requests_made

    assert with_fetcher(fake, cache, body) == 1
    assert fake.range_reads == [(digest, MiB, 2 * MiB)]
    layout = cache.layout(digest)
    assert layout is not None
    assert cache.read_ready(layout, 1, 0, MiB) == data[MiB : 2 * MiB]


def test_a_corrupt_chunk_is_an_error_never_cached_and_fetched_again_once_intact(
    tmp_path: Path, error_logs: ErrorLogPolicy
) -> None:
    error_logs.allow("failed verification")
    fake = FakeRegistry()
    digest, data = one_blob(fake, 3 * MiB)
    cache = ChunkCache(tmp_path / "cache", 1 << 30)
    rot = fake.corrupt("open_range", digest=digest, at=MiB + 10)

    async def body(fetcher: ChunkFetcher) -> None:
        layout = await fetcher.layout(digest)
        with pytest.raises(Corrupt):
            await fetcher.ensure(layout, range(3))
        # What came before the bad chunk in the same request is kept; it and
        # everything after it are not.
        assert [cache.has(digest, i) for i in range(3)] == [True, False, False]
        assert rot.hits == 1
        fake.clear_faults()
        await fetcher.ensure(layout, range(3))

    with_fetcher(fake, cache, body)
    assert fake.range_reads == [(digest, 0, 3 * MiB), (digest, MiB, 3 * MiB)]
    assert cached(cache, digest, 3 * MiB) == data


def test_a_cut_body_is_retried_for_the_chunks_that_did_not_arrive(tmp_path: Path) -> None:
    fake = FakeRegistry()
    digest, data = one_blob(fake, 4 * MiB)
    cache = ChunkCache(tmp_path / "cache", 1 << 30)
    fake.cut("open_range", digest=digest, at=2 * MiB + 100, times=1)

    async def body(fetcher: ChunkFetcher) -> None:
        layout = await fetcher.layout(digest)
        await fetcher.ensure(layout, range(4))

    with_fetcher(fake, cache, body)
    assert fake.range_reads == [(digest, 0, 4 * MiB), (digest, 2 * MiB, 4 * MiB)]
    assert cached(cache, digest, 4 * MiB) == data


def test_transient_failures_are_retried_and_others_are_not(tmp_path: Path) -> None:
    fake = FakeRegistry()
    digest, _ = one_blob(fake, 2 * MiB)
    cache = ChunkCache(tmp_path / "cache", 1 << 30)

    async def body(fetcher: ChunkFetcher) -> None:
        layout = await fetcher.layout(digest)
        fake.fail("open_range", Transient, times=2)
        await fetcher.ensure(layout, range(1))
        assert fake.calls["open_range"] == 3
        fake.fail("open_range", NotFound, times=1)
        with pytest.raises(NotFound):
            await fetcher.ensure(layout, range(1, 2))
        assert fake.calls["open_range"] == 4

    with_fetcher(fake, cache, body)
    assert cache.has(digest, 0)
    assert not cache.has(digest, 1)


def test_a_fetch_that_keeps_failing_gives_up_at_its_deadline(tmp_path: Path) -> None:
    fake = FakeRegistry()
    digest, _ = one_blob(fake, 2 * MiB)
    cache = ChunkCache(tmp_path / "cache", 1 << 30)
    fake.fail("open_range", Transient("the registry is away"))

    async def body(fetcher: ChunkFetcher) -> None:
        layout = await fetcher.layout(digest)
        with pytest.raises(Transient, match="the registry is away"):
            await fetcher.ensure(layout, range(2))

    with_fetcher(fake, cache, body, fetch_timeout=0.3)
    assert 2 <= fake.calls["open_range"] <= 4  # tries 0.1 s, then 0.2 s, apart
    assert not cache.has(digest, 0)


def test_a_chunk_damaged_on_disk_is_found_by_the_next_process_and_fetched_again(
    tmp_path: Path,
) -> None:
    fake = FakeRegistry()
    digest, data = one_blob(fake, 2 * MiB)
    cache_dir = tmp_path / "cache"

    async def fetch_all(fetcher: ChunkFetcher) -> None:
        layout = await fetcher.layout(digest)
        await fetcher.ensure(layout, range(layout.chunk_count))

    with_fetcher(fake, ChunkCache(cache_dir, 1 << 30), fetch_all)
    pack = next((cache_dir / "packs").iterdir())
    damaged = bytearray(pack.read_bytes())
    damaged[-10] ^= 0xFF  # in the blob's last chunk
    pack.write_bytes(damaged)

    # A new ChunkCache on the same directory is the next process: it trusts no
    # chunk it has not hashed itself.
    again = ChunkCache(cache_dir, 1 << 30)
    with_fetcher(fake, again, fetch_all)
    assert fake.range_reads == [(digest, 0, 2 * MiB), (digest, MiB, 2 * MiB)]
    assert cached(again, digest, 2 * MiB) == data


def small_blobs(fake: FakeRegistry, count: int) -> tuple[list[SmallBlob], list[bytes]]:
    files = {f"f{i:02d}": f"small file {i}".encode() * (i + 1) for i in range(count)}
    fake.add_version("small", files)
    blobs = [SmallBlob(hashlib.sha256(data).hexdigest(), len(data)) for data in files.values()]
    return blobs, list(files.values())


def with_batches(
    cache: ChunkCache, fake: FakeRegistry, body: Callable[[SmallBlobBatches], Awaitable[None]]
) -> None:
    async def main() -> None:
        await body(SmallBlobBatches(RegistrySource(fake), cache))

    trio.run(main)


async def settled(batches: SmallBlobBatches, blobs: list[SmallBlob]) -> None:
    """Return once the batches carrying ``blobs`` have landed: a fetch of one blob alone
    sends nothing, and waits for the batch it is in, if any."""
    for blob in blobs:
        await batches.fetch(blob, [])


def test_small_blobs_come_many_per_request_and_each_is_verified(
    tmp_path: Path, error_logs: ErrorLogPolicy
) -> None:
    error_logs.allow("failed verification")
    fake = FakeRegistry()
    blobs, contents = small_blobs(fake, 6)
    cache = ChunkCache(tmp_path / "cache", 1 << 30)
    fake.corrupt("open_blob_batch", digest=blobs[3].digest, times=1)

    async def body(batches: SmallBlobBatches) -> None:
        await batches.fetch(blobs[0], blobs[1:])
        await settled(batches, blobs)
        # Asked again: only what is neither cached nor on its way.
        await batches.fetch(blobs[0], blobs[1:])
        await settled(batches, blobs)

    with_batches(cache, fake, body)
    assert fake.batch_reads == [
        tuple(blob.digest for blob in blobs),
        (blobs[3].digest,),
    ]
    assert [cache.has_small(blob.digest) for blob in blobs] == [True] * 6
    assert cached(cache, blobs[3].digest, blobs[3].size) == contents[3]


def test_a_batch_that_breaks_off_keeps_what_arrived_and_a_failed_one_nothing(
    tmp_path: Path,
) -> None:
    fake = FakeRegistry()
    blobs, _ = small_blobs(fake, 5)
    cache = ChunkCache(tmp_path / "cache", 1 << 30)

    async def body(batches: SmallBlobBatches) -> None:
        fake.cut("open_blob_batch", digest=blobs[2].digest, times=1)
        await batches.fetch(blobs[0], blobs[1:])
        await settled(batches, blobs)
        assert [cache.has_small(blob.digest) for blob in blobs] == [True, True, False, False, False]
        fake.fail("open_blob_batch", Transient, times=1)
        await batches.fetch(blobs[2], blobs[3:])  # best effort: never raises
        await settled(batches, blobs)

    with_batches(cache, fake, body)
    assert fake.calls["open_blob_batch"] == 2
    assert [cache.has_small(blob.digest) for blob in blobs] == [True, True, False, False, False]
