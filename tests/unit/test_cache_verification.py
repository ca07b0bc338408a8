"""``ChunkCache`` against the registry's own chunk digests: what it stores reads back
verified, and a chunk damaged on disk is caught by the next process that reads it."""

from __future__ import annotations

import hashlib
import logging
import random
from pathlib import Path

import pytest

from artfs.cache.chunks import ChunkCache
from artfs.cache.layout import ChunkLayout
from artfs.cache.ondisk import chunk_places
from artfs.fetch.fetcher import layout_from_answer
from tests.support.fake_registry import FakeRegistry

MiB = 1 << 20


def stored_blob(cache: ChunkCache, size: int) -> tuple[ChunkLayout, bytes]:
    """A blob's chunks stored one by one, checked against the chunk list the registry made."""
    data = random.Random(size).randbytes(size)
    fake = FakeRegistry()
    fake.add_version("a", {"f": data})
    digest = hashlib.sha256(data).hexdigest()
    layout = layout_from_answer(digest, fake.blob_chunks(digest))
    cache.store_layout(layout)
    for index in range(layout.chunk_count):
        chunk = data[index * MiB : index * MiB + layout.chunk_length(index)]
        assert layout.verify(index, chunk)  # the registry's digests are the cache's
        buffer = cache.new_buffer(len(chunk))
        memoryview(buffer)[:] = chunk
        cache.store(layout, index, buffer)
    return layout, data


def read_chunk(cache: ChunkCache, layout: ChunkLayout, index: int) -> bytes | None:
    buffer = bytearray(layout.chunk_length(index))
    got = cache.read(layout, index, 0, memoryview(buffer))
    return None if got is None else bytes(buffer[:got])


def test_stored_chunks_read_back_verified_here_and_in_the_next_process(tmp_path: Path) -> None:
    cache = ChunkCache(tmp_path, 1 << 30)
    layout, data = stored_blob(cache, 3 * MiB + 7)
    assert layout.chunk_hash == "blake3"
    for index in range(layout.chunk_count):
        expected = data[index * MiB : (index + 1) * MiB]
        assert cache.read_ready(layout, index, 0, MiB) == expected  # verified as it was stored

    # Another process (a new ChunkCache on the directory) has verified nothing yet:
    # its first read of each chunk hashes it, and from then on it is ready.
    later = ChunkCache(tmp_path, 1 << 30)
    assert later.layout(layout.digest) == layout
    assert later.read_ready(layout, 3, 0, MiB) is None
    assert read_chunk(later, layout, 3) == data[3 * MiB :]
    assert later.read_ready(layout, 3, 0, MiB) == data[3 * MiB :]


def test_a_chunk_damaged_on_disk_is_dropped_on_its_first_read_in_a_process(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    layout, data = stored_blob(ChunkCache(tmp_path, 1 << 30), 2 * MiB)
    place = chunk_places(tmp_path)[(layout.digest, 1)]
    with open(place.path, "r+b") as chunk_file:
        chunk_file.seek(place.offset + 12345)
        byte = chunk_file.read(1)
        chunk_file.seek(place.offset + 12345)
        chunk_file.write(bytes([byte[0] ^ 0xFF]))

    later = ChunkCache(tmp_path, 1 << 30)
    with caplog.at_level(logging.WARNING, logger="artfs.cache"):
        assert read_chunk(later, layout, 1) is None  # absent: the caller fetches it again
    assert "chunk 1 of blob" in caplog.text
    assert not later.has(layout.digest, 1)
    assert (layout.digest, 1) not in chunk_places(tmp_path)
    assert read_chunk(later, layout, 0) == data[:MiB]  # its neighbour is intact
