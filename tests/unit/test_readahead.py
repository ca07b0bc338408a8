"""Read-ahead policy: windows for sequential readers and walks, none for random ones."""

from __future__ import annotations

from dataclasses import dataclass

from artfs.fetch.readahead import (
    ReadAhead,
    ScatterSweep,
    WalkAhead,
    batch_to_send,
    common_directory,
    is_small,
)

MiB = 1 << 20


def test_sequential_reader_doubles_its_window_up_to_the_cap() -> None:
    ahead = ReadAhead(max_chunks=8)
    windows = [ahead.after_read(i * MiB, MiB) for i in range(6)]
    assert windows == [1, 2, 4, 8, 8, 8]


def test_out_of_order_kernel_reads_keep_the_window() -> None:
    ahead = ReadAhead(max_chunks=64)
    for i in range(4):
        ahead.after_read(i * MiB, MiB)
    assert ahead.window == 8
    # Requests 5 and 4 served in the wrong order: neither grows nor resets.
    assert ahead.after_read(5 * MiB, MiB) == 8
    assert ahead.after_read(4 * MiB, MiB) == 8
    assert ahead.after_read(6 * MiB, MiB) == 16


def test_a_seek_resets_and_random_readers_never_earn_a_window() -> None:
    ahead = ReadAhead()
    ahead.after_read(0, MiB)
    ahead.after_read(MiB, MiB)
    assert ahead.after_read(500 * MiB, 4096) == 0
    assert ahead.asked_until == 0
    # Landing near the last random read keeps "no window", it does not grow one.
    assert ahead.after_read(500 * MiB + 3 * MiB, 4096) == 0
    assert ahead.after_read(100 * MiB, 4096) == 0


def test_a_growing_window_is_asked_for_in_whole_requests_and_never_twice() -> None:
    ahead = ReadAhead()
    # The first read earns one chunk; then the window rounds up to groups of 8.
    assert ahead.chunks_after(0, MiB, 1, 100, 8) == range(1, 2)
    assert ahead.chunks_after(MiB, MiB, 2, 100, 8) == range(2, 8)
    assert ahead.chunks_after(2 * MiB, MiB, 3, 100, 8) == range(8, 8)  # nothing new yet
    assert ahead.chunks_after(3 * MiB, MiB, 4, 100, 8) == range(8, 16)
    # Never past the blob's last chunk.
    assert ahead.chunks_after(4 * MiB, MiB, 5, 20, 8) == range(16, 20)


def test_a_seek_asks_for_nothing_ahead_and_forgets_what_was_asked() -> None:
    ahead = ReadAhead()
    ahead.chunks_after(0, MiB, 1, 100, 8)
    assert not ahead.chunks_after(50 * MiB, MiB, 51, 100, 8)
    assert ahead.asked_until == 0


def test_a_walk_earns_a_window_that_doubles_up_to_the_cap() -> None:
    walks = WalkAhead(max_files=8)
    assert walks.after_open(0) == (1, 0)  # a first open is no walk yet
    asked = []
    for position in range(1, 40):
        start, count = walks.after_open(position)
        if count:
            asked.append((position, start, count))
            walks.fetched_through(start + count - 1)
    assert asked[:4] == [(1, 2, 2), (2, 4, 4), (5, 8, 8), (11, 16, 8)]
    assert all(count == 8 for _, _, count in asked[3:])
    # Topped up once half the window is read: never more than a window ahead.
    assert all(start - position <= 8 for position, start, _ in asked)


def test_random_opens_start_walks_that_fetch_nothing() -> None:
    walks = WalkAhead()
    assert [walks.after_open(p)[1] for p in (40, 3, 25, 10, 55, 31)] == [0] * 6


def test_only_opens_that_start_a_walk_count_as_scattered() -> None:
    walks = WalkAhead()
    started = []
    for position in (40, 41, 7):  # 41 continues the walk at 40
        walks.after_open(position)
        started.append(walks.started_walk)
    assert started == [True, False, True]


def test_enough_scattered_opens_sweep_the_directory_they_share_once() -> None:
    scatter = ScatterSweep(min_opens=4)
    opened = [(9, "train/b/x9"), (2, "train/a/x2"), (9, "train/b/x9"), (5, "train/a/x5")]
    assert [scatter.after_scattered_open(p, path) for p, path in opened] == [None] * 4
    assert scatter.after_scattered_open(7, "train/b/x7") == "train"  # 4 different files
    assert scatter.after_scattered_open(8, "train/b/x8") is None  # once
    assert ScatterSweep(min_opens=1).after_scattered_open(0, "top.bin") == ""


def test_the_common_directory_is_cut_at_whole_names() -> None:
    assert common_directory("train/ab", "train/a") == "train"
    assert common_directory("a/b/c", "a/b/c") == "a/b/c"
    assert common_directory("x", "y") == ""
    assert common_directory("", "a/b") == ""


def test_a_few_walks_are_followed_at_once_and_the_oldest_makes_room() -> None:
    walks = WalkAhead(max_walks=2)
    walks.after_open(0)
    walks.after_open(100)
    assert walks.after_open(1)[1] == 2  # the first walk goes on
    walks.fetched_through(3)
    walks.after_open(200)  # a third walk: the one at 100, used longest ago, is dropped
    assert walks.after_open(101)[1] == 0
    assert walks.after_open(2)[1] == 0  # still the first walk, its window not yet half read


def test_small_means_one_chunk_at_most_and_not_empty() -> None:
    assert [is_small(size) for size in (0, 1, MiB, MiB + 1)] == [False, True, True, False]


@dataclass(frozen=True)
class Blob:
    digest: str
    size: int


def test_a_batch_holds_each_wanted_digest_once_within_its_bytes() -> None:
    first = Blob("a", 10)
    ahead = [Blob("b", 10), Blob("a", 10), Blob("c", 10), Blob("d", 10), Blob("e", 10)]
    batch = batch_to_send(first, ahead, lambda blob: blob.digest != "c", max_bytes=30)
    assert [blob.digest for blob in batch] == ["a", "b", "d"]


def test_a_batch_of_the_opened_file_alone_is_not_sent() -> None:
    first = Blob("a", 10)
    assert batch_to_send(first, [], lambda _blob: True) == []
    assert batch_to_send(first, [Blob("b", 10)], lambda blob: blob is first) == []
    # Only files ahead still wanted: a batch all the same (they are on no one's way).
    assert batch_to_send(first, [Blob("b", 10)], lambda blob: blob is not first) == [Blob("b", 10)]
