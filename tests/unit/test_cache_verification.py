"""``ChunkCache`` against the registry's own chunk digests: what it stores reads back
verified, and every read from disk is verified again, so a chunk damaged on disk is
caught by the very process that verified it before (SPEC §5)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import random
from pathlib import Path

import pytest

from artfs.cache.chunks import ChunkCache
from artfs.cache.layout import ChunkLayout
from artfs.cache.ondisk import chunk_places
from artfs.fetch.fetcher import layout_from_answer
from tests.support.fake_registry import FakeRegistry

MiB = 1 << 20


def stored_blob(cache: ChunkCache, size: int, *, packed: bool = False) -> tuple[ChunkLayout, bytes]:
    """A blob's chunks stored (one by one, or as one download's pack), checked against the
    chunk list the registry made."""
    data = random.Random(size).randbytes(size)
    fake = FakeRegistry()
    fake.add_version("a", {"f": data})
    digest = hashlib.sha256(data).hexdigest()
    layout = layout_from_answer(digest, fake.blob_chunks(digest))
    cache.store_layout(layout)
    indexes = range(layout.chunk_count)
    one_by_one = contextlib.nullcontext(functools.partial(cache.store, layout))
    with cache.storing_run(layout, indexes) if packed else one_by_one as store:
        for index in indexes:
            chunk = data[index * MiB : index * MiB + layout.chunk_length(index)]
            assert layout.verify(index, chunk)  # the registry's digests are the cache's
            buffer = cache.new_buffer(len(chunk))
            memoryview(buffer)[:] = chunk
            store(index, buffer)
    return layout, data


def read_chunk(cache: ChunkCache, layout: ChunkLayout, index: int) -> bytes | None:
    buffer = bytearray(layout.chunk_length(index))
    got = cache.read(layout, index, 0, memoryview(buffer))
    return None if got is None else bytes(buffer[:got])


def flip_byte(cache_dir: Path, layout: ChunkLayout, index: int, at: int = 12345) -> str:
    """Damage one byte of a cached chunk where it lies; the file it lies in."""
    place = chunk_places(cache_dir)[(layout.digest, index)]
    with open(place.path, "r+b") as chunk_file:
        byte = os.pread(chunk_file.fileno(), 1, place.offset + at)
        os.pwrite(chunk_file.fileno(), bytes([byte[0] ^ 0xFF]), place.offset + at)
    return place.path


def test_stored_chunks_read_back_verified_here_and_in_the_next_process(tmp_path: Path) -> None:
    cache = ChunkCache(tmp_path, 1 << 30)
    layout, data = stored_blob(cache, 3 * MiB + 7)
    assert layout.chunk_hash == "blake3"
    for index in range(layout.chunk_count):
        expected = data[index * MiB : (index + 1) * MiB]
        assert cache.read_ready(layout, index, 0, MiB) == expected  # in memory as it was stored
    # Read to its end, each chunk left memory: it is only on disk now, not ready.
    assert cache.pending(layout, range(4)) == ([], [0, 1, 2, 3])
    assert cache.read_ready(layout, 0, 0, MiB) is None

    # Another process (a new ChunkCache on the directory) holds nothing in memory:
    # a whole read verifies the chunk from disk; ``check`` makes it ready.
    later = ChunkCache(tmp_path, 1 << 30)
    assert later.layout(layout.digest) == layout
    assert later.read_ready(layout, 3, 0, MiB) is None
    assert read_chunk(later, layout, 3) == data[3 * MiB :]
    assert later.check(layout, 2)
    assert later.read_ready(layout, 2, 0, MiB) == data[2 * MiB : 3 * MiB]


@pytest.mark.parametrize("packed", [False, True], ids=["chunk-file", "pack"])
def test_a_chunk_damaged_after_this_process_verified_it_is_caught_on_its_next_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, packed: bool
) -> None:
    cache = ChunkCache(tmp_path, 1 << 30)
    layout, data = stored_blob(cache, 4 * MiB, packed=packed)
    assert read_chunk(cache, layout, 1) == data[MiB : 2 * MiB]  # verified, read from disk
    assert cache.check(layout, 2)  # verified, and now held in memory
    path = flip_byte(tmp_path, layout, 1)
    flip_byte(tmp_path, layout, 2)
    assert path.endswith(".pack") == packed

    with caplog.at_level(logging.WARNING, logger="artfs.cache"):
        assert read_chunk(cache, layout, 1) is None  # absent: the caller fetches it again
    assert f"chunk 1 of blob {layout.digest}" in caplog.text
    assert path in caplog.text
    assert not cache.has(layout.digest, 1)
    # The bad copy is gone for every process: a new scan does not list it.
    assert (layout.digest, 1) not in chunk_places(tmp_path)
    assert ChunkCache(tmp_path, 1 << 30).pending(layout, range(4))[0] == [1]
    # What this process verified into memory stays as it was verified.
    assert cache.read_ready(layout, 2, 0, MiB) == data[2 * MiB : 3 * MiB]
    # Its neighbours are intact.
    assert read_chunk(cache, layout, 0) == data[:MiB]
    assert read_chunk(cache, layout, 3) == data[3 * MiB :]


def test_a_damaged_chunk_is_never_made_ready(tmp_path: Path) -> None:
    layout, _ = stored_blob(ChunkCache(tmp_path, 1 << 30), 2 * MiB, packed=True)
    cache = ChunkCache(tmp_path, 1 << 30)  # a new process: nothing in memory
    assert cache.pending(layout, range(2)) == ([], [0, 1])
    flip_byte(tmp_path, layout, 0, at=0)
    assert not cache.check(layout, 0)
    assert cache.read_ready(layout, 0, 0, MiB) is None
    assert cache.pending(layout, range(2)) == ([0], [1])  # absent: to be fetched again


def test_a_partly_read_chunk_stays_in_memory_for_the_rest(tmp_path: Path) -> None:
    layout, data = stored_blob(ChunkCache(tmp_path, 1 << 30), 2 * MiB)
    later = ChunkCache(tmp_path, 1 << 30)  # a new process: nothing in memory
    view = memoryview(bytearray(4096))
    assert later.read(layout, 1, 100, view) == 4096
    assert view == data[MiB + 100 : MiB + 4196]
    # The next read of that chunk is served from memory, as verified: damage on disk
    # after the verification cannot reach it.
    flip_byte(tmp_path, layout, 1, at=5000)
    assert later.read_ready(layout, 1, 5000, 10) == data[MiB + 5000 : MiB + 5010]


def test_a_damaged_small_blob_in_a_batch_pack_is_dropped_for_every_process(
    tmp_path: Path,
) -> None:
    blobs = [random.Random(n).randbytes(3000 + n) for n in range(4)]
    layouts = [ChunkLayout.implied(hashlib.sha256(blob).hexdigest(), len(blob)) for blob in blobs]
    assert all(layouts)
    batch = [(layout, blob) for layout, blob in zip(layouts, blobs, strict=True) if layout]
    ChunkCache(tmp_path, 1 << 30).store_many(batch)
    damaged = batch[1][0]
    assert flip_byte(tmp_path, damaged, 0, at=10).endswith(".pack")

    cache = ChunkCache(tmp_path, 1 << 30)
    assert read_chunk(cache, damaged, 0) is None
    # It shares its blocks with its neighbours, so no hole can be punched: its header
    # entry is marked instead, and no new scan lists it.
    assert (damaged.digest, 0) not in chunk_places(tmp_path)
    later = ChunkCache(tmp_path, 1 << 30)
    assert not later.has(damaged.digest, 0)
    for layout, blob in batch:
        if layout is not damaged:
            assert read_chunk(later, layout, 0) == blob
