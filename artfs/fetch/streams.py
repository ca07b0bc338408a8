"""Reading exact lengths from a streamed HTTP response."""

from __future__ import annotations

from typing import Any

__all__ = ["read_exactly"]


def read_exactly(raw: Any, length: int) -> bytearray | None:
    """The next ``length`` bytes of ``raw`` (a file-like with ``readinto``); ``None`` if it ends."""
    buffer = bytearray(length)
    view = memoryview(buffer)
    got = 0
    while got < length:
        n = raw.readinto(view[got:])
        if not n:
            return None
        got += n
    return buffer
