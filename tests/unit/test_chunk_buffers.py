"""Chunk buffers are reused once the cache lets go of them, never while a reader holds a view."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from artfs.cache.chunks import ChunkCache
from artfs.cache.layout import ChunkLayout
from artfs.digests import CHUNK_SIZE


def _fetched(cache: ChunkCache, data: bytes) -> tuple[ChunkLayout, int]:
    """Store ``data`` (one whole chunk) as the fetcher does, into a ``new_buffer``; say its id."""
    layout = ChunkLayout(
        hashlib.sha256(data).hexdigest(), len(data), CHUNK_SIZE, hashlib.sha256(data).digest()
    )
    buffer = cache.new_buffer(len(data))
    memoryview(buffer)[:] = data
    cache.store(layout, 0, buffer)
    return layout, id(buffer)


def test_a_buffer_is_reused_only_after_the_last_view_of_it_is_gone(tmp_path: Path) -> None:
    cache = ChunkCache(tmp_path, max_bytes=64 * CHUNK_SIZE)
    first = os.urandom(CHUNK_SIZE)
    layout, stored = _fetched(cache, first)
    # A reader takes the whole chunk: the fresh tier lets go of it, the view stays.
    view = cache.read_ready(layout, 0, 0, CHUNK_SIZE)
    assert isinstance(view, memoryview)
    other = cache.new_buffer(CHUNK_SIZE)
    assert id(other) != stored  # the reply is not sent yet
    memoryview(other)[:] = b"\xff" * CHUNK_SIZE
    assert view == first  # its bytes are untouched

    del view  # the reply went out
    reused = cache.new_buffer(CHUNK_SIZE)
    assert id(reused) == stored
    # Writing into it changes nothing the cache serves: the chunk now comes from its file.
    memoryview(reused)[:] = b"\0" * CHUNK_SIZE
    assert cache.read_ready(layout, 0, 0, CHUNK_SIZE) is None  # it left memory with its reader
    assert cache.check(layout, 0)  # read back from its file, verified
    assert cache.read_ready(layout, 0, 0, CHUNK_SIZE) == first


def test_a_buffer_still_held_for_readers_is_never_handed_out(tmp_path: Path) -> None:
    cache = ChunkCache(tmp_path, max_bytes=64 * CHUNK_SIZE)
    first = os.urandom(CHUNK_SIZE)
    layout, stored = _fetched(cache, first)
    handed = [cache.new_buffer(CHUNK_SIZE) for _ in range(4)]
    assert stored not in {id(buffer) for buffer in handed}
    for buffer in handed:
        memoryview(buffer)[:] = b"\0" * CHUNK_SIZE
    assert cache.read_ready(layout, 0, 0, CHUNK_SIZE) == first
