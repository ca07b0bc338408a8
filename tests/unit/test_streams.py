"""Splitting a stream of back-to-back blobs: every piece exact, grouped reads, early ends."""

from __future__ import annotations

import io
import os

from artfs.client.streams import split_into


class _Trickle(io.RawIOBase):
    """A stream that hands out at most ``step`` bytes per call, as a socket may."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = memoryview(data)
        self._step = step
        self.calls = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        self.calls += 1
        n = min(len(buffer), self._step, len(self._data))
        buffer[:n] = self._data[:n]
        self._data = self._data[n:]
        return n


def test_pieces_come_out_exact_and_in_order() -> None:
    sizes = [1, 4096, 0, 70000, 3, 200000, 12]
    data = os.urandom(sum(sizes))
    pieces = [bytes(p) for p in split_into(io.BytesIO(data), sizes) if p is not None]
    assert b"".join(pieces) == data
    assert [len(p) for p in pieces] == sizes


def test_small_pieces_are_read_many_per_call() -> None:
    sizes = [4096] * 256
    stream = _Trickle(os.urandom(sum(sizes)), step=1 << 20)
    assert sum(1 for _ in split_into(stream, sizes, group_bytes=64 << 10)) == 256
    # The first alone, then 16 per call: 1 + 16 calls (one read per group here).
    assert stream.calls == 1 + 16


def test_a_stream_ending_early_yields_none_and_stops() -> None:
    sizes = [10, 10, 10]
    got = list(split_into(_Trickle(os.urandom(25), step=7), sizes))
    assert [None if p is None else len(p) for p in got] == [10, None]
