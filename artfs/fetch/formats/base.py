"""What every planner shares: the byte range, the reader it reads through, its limits."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "MAX_HEADER",
    "ByteRange",
    "Cursor",
    "Missing",
    "NoPlan",
    "Read",
    "bytes_reader",
    "footer_length",
]

#: Bytes of header or footer a planner may read at most: more is no plan (a
#: lying length must not make the mount fetch gigabytes before the reader's bytes).
MAX_HEADER = 32 << 20


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # exclusive


class Missing(Exception):
    """The planner needs ``length`` bytes at ``offset`` that its caller has not fetched yet."""

    def __init__(self, offset: int, length: int) -> None:
        super().__init__(f"{length} bytes at {offset}")
        self.offset = offset
        self.length = length


class NoPlan(Exception):
    """This file is not of the planner's format, or its layout does not hold together."""


#: ``read(offset, length)``: exactly ``length`` bytes, or ``Missing``.
Read = Callable[[int, int], bytes]


class Cursor:
    """Reads little-endian fields one after another, within ``limit`` bytes of the file."""

    def __init__(self, read: Read, offset: int, limit: int) -> None:
        self._read = read
        self.offset = offset
        self._limit = limit

    def take(self, length: int) -> bytes:
        if length < 0 or self.offset + length > self._limit:
            raise NoPlan(f"{length} bytes at {self.offset} run past the header's bound")
        data = self._read(self.offset, length)
        self.offset += length
        return data

    def unpack(self, fmt: str) -> int:
        value: int = struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))[0]
        return value


def bytes_reader(data: bytes | bytearray | memoryview, start: int, size: int) -> Read:
    """``read`` over ``data``, the bytes of a file of ``size`` bytes from ``start`` on.

    Bytes past the file are no plan; bytes of the file outside ``data`` are ``Missing``.
    """

    def read(offset: int, length: int) -> bytes:
        if offset < 0 or length < 0 or offset + length > size:
            raise NoPlan(f"{length} bytes at {offset} lie past the file")
        if offset < start or offset + length > start + len(data):
            raise Missing(offset, length)
        return bytes(data[offset - start : offset - start + length])

    return read


def footer_length(size: int, read: Read, magic: bytes, overhead: int) -> int:
    """The length of a footer stored as a little-endian int32 before ``magic`` at the end.

    ``magic`` must also open the file; ``overhead`` is the bytes that are not
    footer at least (both magics, the length, padding).
    """
    if size < overhead or read(0, len(magic)) != magic:
        raise NoPlan(f"no {magic!r} at the start")
    tail = read(size - len(magic) - 4, len(magic) + 4)
    if tail[4:] != magic:
        raise NoPlan(f"no {magic!r} at the end")
    length: int = struct.unpack("<i", tail[:4])[0]
    if not 0 < length <= min(MAX_HEADER, size - overhead):
        raise NoPlan(f"footer length {length} does not fit a file of {size} bytes")
    return length
