from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from artfs.server.batching import GroupCommit


def test_a_lone_caller_is_flushed_at_once() -> None:
    flushed: list[list[int]] = []
    group = GroupCommit(flushed.append)
    group.submit(1)
    group.submit(2)
    assert flushed == [[1], [2]]


def test_callers_arriving_during_a_flush_share_the_next_one() -> None:
    flushed: list[list[int]] = []
    first_started, release_first = threading.Event(), threading.Event()

    def flush(items: list[int]) -> None:
        if not flushed:
            first_started.set()
            assert release_first.wait(10)
        flushed.append(sorted(items))

    group = GroupCommit(flush)
    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(group.submit, 0)
        assert first_started.wait(10)
        rest = [pool.submit(group.submit, n) for n in range(1, 8)]
        # Nobody else may flush while the first flush runs; wait until all queued.
        while len(group._queue) < 7:
            threading.Event().wait(0.001)
        release_first.set()
        for done in [first, *rest]:
            done.result(timeout=10)
    assert flushed == [[0], list(range(1, 8))]


def test_a_failed_flush_fails_exactly_its_callers() -> None:
    def flush(items: list[int]) -> None:
        if 13 in items:
            raise OSError("disk on fire")

    group = GroupCommit(flush)
    with pytest.raises(OSError, match="disk on fire"):
        group.submit(13)
    group.submit(14)  # the next flush starts clean


def test_batches_are_bounded_and_every_item_is_flushed_once() -> None:
    flushed: list[int] = []
    sizes: list[int] = []
    lock = threading.Lock()

    def flush(items: list[int]) -> None:
        with lock:
            flushed.extend(items)
            sizes.append(len(items))
        threading.Event().wait(0.002)  # long enough for batches to form

    group = GroupCommit(flush, max_batch=3)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(group.submit, range(200)))
    assert sorted(flushed) == list(range(200))
    assert max(sizes) <= 3
