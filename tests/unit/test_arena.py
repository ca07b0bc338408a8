"""The chunk arena and its slots: shared with another mapping, never reused under a view."""

from __future__ import annotations

import threading

import pytest

from artfs.cache.arena import ArenaView, ChunkArena
from artfs.cache.buffers import BufferPool

SLOT = 64 << 10


def test_a_worker_mapping_sees_what_the_daemon_serves() -> None:
    arena = ChunkArena(4, SLOT)
    try:
        view = ArenaView(arena.path, arena.size, SLOT)
        written = view.buffer(2, SLOT)
        written[:5] = b"hello"
        short = view.buffer(3, 10)
        assert len(short) == 10
        short[:] = b"0123456789"
        assert arena.buffers[2][:5] == b"hello"
        assert arena.buffers[3][:10] == b"0123456789"
    finally:
        arena.close()


def test_an_arena_view_refuses_slots_outside_the_arena() -> None:
    arena = ChunkArena(2, SLOT)
    try:
        view = ArenaView(arena.path, arena.size, SLOT)
        with pytest.raises(ValueError, match="outside the arena"):
            view.buffer(2, SLOT)
        with pytest.raises(ValueError, match="outside the arena"):
            view.buffer(0, SLOT + 1)
    finally:
        arena.close()


def test_a_slot_is_not_handed_out_again_while_a_view_of_it_is_held() -> None:
    arena = ChunkArena(2, SLOT)
    pool = BufferPool(threading.Lock(), arena)
    first = pool.new_shared(SLOT)
    second = pool.new_shared(100)  # a short last chunk: a view of its slot
    assert first is not None
    assert second is not None
    assert pool.new_shared(SLOT) is None  # both taken
    slot, buffer = first
    assert len(second[1]) == 100
    assert arena.slot_of(second[1]) == second[0]
    reader_view = memoryview(buffer)[10:20]  # a reply still being sent
    pool.retire(buffer)
    del first, buffer
    assert pool.new_shared(SLOT) is None  # freed, but a reader still holds a view
    reader_view.release()
    del reader_view
    again = pool.new_shared(SLOT)
    assert again is not None
    assert again[0] == slot
    assert pool.new_shared(SLOT + 1) is None  # larger than a slot


def test_a_released_slot_comes_back_once() -> None:
    arena = ChunkArena(1, SLOT)
    pool = BufferPool(threading.Lock(), arena)
    taken = pool.new_shared(SLOT)
    assert taken is not None
    slot = taken[0]
    del taken
    pool.release_slot(slot)
    pool.release_slot(slot)
    assert pool.new_shared(SLOT) is not None
    assert pool.new_shared(SLOT) is None


def test_no_arena_no_shared_buffers() -> None:
    assert BufferPool(threading.Lock()).new_shared(SLOT) is None
