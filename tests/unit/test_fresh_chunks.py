"""``FreshChunks``: bounded, never pushing out unread chunks for newer ones, except stale ones."""

from __future__ import annotations

from artfs.cache.fresh import FreshChunks


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_full_tier_refuses_newcomers_until_a_reader_drops_one() -> None:
    clock = Clock()
    fresh = FreshChunks(max_bytes=3, stale_after=5.0, clock=clock)
    assert fresh.admit(("d", 0), b"a")
    assert fresh.admit(("d", 1), b"b")
    assert fresh.admit(("d", 2), b"c")
    assert not fresh.admit(("d", 3), b"d")  # the unread ones stay
    assert fresh.get(("d", 0)) == b"a"
    assert ("d", 3) not in fresh
    fresh.drop(("d", 0))  # read to its end
    assert fresh.admit(("d", 3), b"d")
    assert fresh.bytes == 3
    assert len(fresh) == 3


def test_stale_entries_make_room_and_oversized_ones_never_enter() -> None:
    clock = Clock()
    fresh = FreshChunks(max_bytes=4, stale_after=5.0, clock=clock)
    assert fresh.admit(("d", 0), b"aa")
    clock.now = 3.0
    assert fresh.admit(("d", 1), b"bb")
    clock.now = 6.0
    assert fresh.admit(("d", 2), b"cc")  # pushes out only the stale first one
    assert ("d", 0) not in fresh
    assert ("d", 1) in fresh
    assert not fresh.admit(("d", 9), b"x" * 5)
    assert fresh.bytes == 4


def test_a_pushed_admission_makes_room_from_the_oldest_whatever_their_age() -> None:
    clock = Clock()
    fresh = FreshChunks(max_bytes=4, stale_after=5.0, clock=clock)
    assert fresh.admit(("d", 0), b"aa")
    assert fresh.admit(("d", 1), b"bb")
    assert not fresh.admit(("d", 2), b"cc")  # nothing is stale
    assert fresh.admit(("d", 2), b"cc", push=True)  # verified for a waiting reader
    assert ("d", 0) not in fresh
    assert fresh.get(("d", 1)) == b"bb"
    # One that could never fit pushes nothing out.
    assert not fresh.admit(("d", 9), b"x" * 5, push=True)
    assert fresh.bytes == 4
    assert len(fresh) == 2


def test_a_chunk_stays_until_readers_took_all_its_bytes_in_any_order() -> None:
    fresh = FreshChunks(max_bytes=8, clock=Clock())
    assert fresh.admit(("d", 0), b"abcd")
    fresh.served(("d", 0), 1)  # its last byte first, as an mmap read-around does
    fresh.served(("d", 0), 2)
    assert fresh.get(("d", 0)) == b"abcd"  # one byte still to come
    fresh.served(("d", 0), 1)
    assert ("d", 0) not in fresh
    assert fresh.bytes == 0
    # Once admitted anew, the count starts again.
    assert fresh.admit(("d", 0), b"abcd")
    fresh.served(("d", 0), 3)
    assert ("d", 0) in fresh
    fresh.served(("d", 9), 4)  # not held: nothing happens
    assert fresh.bytes == 4
