"""``FormatPrefetch`` over an in-process registry: what a plan fetches, in what order, how much."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import numpy as np

from artfs.cache.chunks import ChunkCache
from artfs.fetch.fetcher import ChunkFetcher
from artfs.fetch.planned import FormatPrefetch
from tests.support.fake_registry import FakeRegistry
from tests.unit.test_fetcher import cached, with_fetcher

MiB = 1 << 20


def safetensors_blob(fake: FakeRegistry, tensors: int) -> tuple[str, bytes]:
    from safetensors.numpy import save

    rng = np.random.default_rng(5)
    data = save({f"t{i:03d}": rng.random(MiB // 8) for i in range(tensors)})  # 1 MiB each
    fake.add_version("a", {"m.safetensors": data})
    return hashlib.sha256(data).hexdigest(), data


def plan_and_fetch(fake: FakeRegistry, cache: ChunkCache, digest: str) -> FormatPrefetch:
    async def body(fetcher: ChunkFetcher) -> FormatPrefetch:
        prefetch = FormatPrefetch(fetcher, cache)
        await prefetch.carry_out(await fetcher.layout(digest))
        return prefetch

    return with_fetcher(fake, cache, body)


def test_a_plan_fetches_the_header_then_the_tensors_in_whole_requests(tmp_path: Path) -> None:
    fake = FakeRegistry()
    digest, data = safetensors_blob(fake, 20)
    cache = ChunkCache(tmp_path / "cache", 1 << 30)
    prefetch = plan_and_fetch(fake, cache, digest)
    assert prefetch.plans_made == 1
    reads = fake.range_reads
    assert reads[0] == (digest, 0, MiB)  # the header's chunk, to plan with
    # Then runs of 8 chunks (the fetcher's request size), in flight at once, around chunk 0.
    assert sorted(r[1:] for r in reads[1:]) == [
        (MiB, 8 * MiB),
        (8 * MiB, 16 * MiB),
        (16 * MiB, len(data)),
    ]
    assert cached(cache, digest, len(data)) == data


def test_a_plan_takes_no_more_than_its_share_of_the_cache(tmp_path: Path) -> None:
    fake = FakeRegistry()
    digest, _ = safetensors_blob(fake, 40)
    cache = ChunkCache(tmp_path / "cache", 16 * MiB)
    prefetch = plan_and_fetch(fake, cache, digest)
    assert prefetch.chunks_planned == 4  # a quarter of 16 MiB
    # The header's chunk counts too: read back from disk by then, it is checked, not fetched.
    assert sum(end - start for _, start, end in fake.range_reads) == 4 * MiB


def test_a_lying_header_costs_a_bounded_fetch_and_no_plan(tmp_path: Path) -> None:
    fake = FakeRegistry()
    # Claims a 30 MiB JSON header and holds garbage: the planner asks for it all.
    data = struct.pack("<Q", 30 * MiB) + b"{" + np.random.default_rng(6).bytes(40 * MiB)
    fake.add_version("a", {"liar.safetensors": data})
    digest = hashlib.sha256(data).hexdigest()
    cache = ChunkCache(tmp_path / "cache", 16 * MiB)
    prefetch = plan_and_fetch(fake, cache, digest)
    assert prefetch.plans_made == 0
    # Within a quarter of the cache (and two chunks) it gave up before fetching the lie.
    assert sum(end - start for _, start, end in fake.range_reads) <= 6 * MiB


def test_a_gguf_header_of_several_chunks_is_planned_in_a_few_rounds(tmp_path: Path) -> None:
    import gguf

    path = tmp_path / "m.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    # A vocabulary of 120,000 tokens: a header of about 2.3 MiB, read a few bytes at a time.
    writer.add_array("tokenizer.ggml.tokens", [f"token{i}" for i in range(120_000)])
    rng = np.random.default_rng(8)
    for i in range(6):
        writer.add_tensor(f"blk.{i}.w", rng.random((256, 1024), dtype=np.float32))  # 1 MiB
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    data = path.read_bytes()
    fake = FakeRegistry()
    fake.add_version("a", {"m.gguf": data})
    digest = hashlib.sha256(data).hexdigest()
    cache = ChunkCache(tmp_path / "cache", 1 << 30)
    prefetch = plan_and_fetch(fake, cache, digest)
    assert prefetch.plans_made == 1
    assert cached(cache, digest, len(data)) == data  # header and every tensor
    # Rounds of doubling reads of the header, then the tensors: a handful of requests.
    assert len(fake.range_reads) <= 6, fake.range_reads


def test_only_a_read_of_the_first_or_last_chunk_starts_a_plan(tmp_path: Path) -> None:
    """A random reader's read in the middle of a file fetches no head chunk to sniff;
    a footer read (Parquet, a zip's directory) at the end starts the plan."""
    import trio

    fake = FakeRegistry()
    digest, data = safetensors_blob(fake, 20)
    cache = ChunkCache(tmp_path / "cache", 1 << 30)

    async def body(fetcher: ChunkFetcher) -> FormatPrefetch:
        prefetch = FormatPrefetch(fetcher, cache)
        layout = await fetcher.layout(digest)
        prefetch.on_read(layout, range(5, 6))
        assert prefetch.plans_started == 0  # nothing to sniff for a read in the middle
        prefetch.on_read(layout, range(layout.chunk_count - 1, layout.chunk_count))
        with trio.fail_after(30):
            while prefetch.plans_made == 0 or cache.missing(layout, range(layout.chunk_count)):
                await trio.sleep(0.01)
        return prefetch

    prefetch = with_fetcher(fake, cache, body)
    assert prefetch.plans_made == 1
    assert fake.range_reads[0] == (digest, 0, MiB)  # the header, sniffed
    assert cached(cache, digest, len(data)) == data
