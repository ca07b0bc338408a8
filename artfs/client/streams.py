"""Reading exact lengths from a streamed HTTP response."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

__all__ = ["fill", "read_exactly", "split_into"]

#: Blobs that fit together in this many bytes are read from the stream in one call.
GROUP_BYTES = 128 << 10


def fill(raw: Any, view: memoryview) -> bool:
    """Fill ``view`` from ``raw`` (a file-like with ``readinto``); ``False`` if it ends first."""
    got = 0
    while got < len(view):
        n = raw.readinto(view[got:])
        if not n:
            return False
        got += n
    return True


def read_exactly(raw: Any, length: int) -> bytearray | None:
    """The next ``length`` bytes of ``raw`` (a file-like with ``readinto``); ``None`` if it ends."""
    buffer = bytearray(length)
    return buffer if fill(raw, memoryview(buffer)) else None


def split_into(
    raw: Any, sizes: Sequence[int], group_bytes: int = GROUP_BYTES
) -> Iterator[memoryview | None]:
    """Each of the back-to-back pieces of ``sizes`` bytes in ``raw``, in order; ``None`` (and
    stop) if the stream ends first.

    The first piece comes alone (someone is usually waiting for it); after that,
    pieces that fit together in ``group_bytes`` are read in one call. Per-call
    overhead in urllib3 and ``http.client`` was most of the cost of a batch of
    small blobs read one by one.
    """
    start = 0
    while start < len(sizes):
        end, total = start + 1, sizes[start]
        if start:
            while end < len(sizes) and total + sizes[end] <= group_bytes:
                total += sizes[end]
                end += 1
        buffer = read_exactly(raw, total)
        if buffer is None:
            yield None
            return
        view = memoryview(buffer)
        offset = 0
        for size in sizes[start:end]:
            yield view[offset : offset + size]
            offset += size
        start = end
