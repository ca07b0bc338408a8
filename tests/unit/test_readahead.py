"""``ReadAhead``: windows for sequential readers, none for random ones."""

from __future__ import annotations

from artfs.fetch.readahead import ReadAhead

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
