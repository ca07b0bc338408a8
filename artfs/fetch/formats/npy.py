"""NumPy ``.npy``: magic, version, a header length, a Python-literal header, then the array.

``numpy.load`` (and ``mmap_mode``) reads the header and then the array from
its start to the end of the file.
"""

from __future__ import annotations

import struct

from artfs.fetch.formats.base import MAX_HEADER, ByteRange, NoPlan, Read

__all__ = ["MAGIC", "plan"]

MAGIC = b"\x93NUMPY"


def plan(size: int, read: Read) -> list[ByteRange]:
    prefix = read(0, 8)
    if prefix[:6] != MAGIC:
        raise NoPlan("not an .npy file")
    major = prefix[6]
    if major == 1:
        (length,) = struct.unpack("<H", read(8, 2))
        data_start = 10 + length
    elif major in (2, 3):
        (length,) = struct.unpack("<I", read(8, 4))
        data_start = 12 + length
    else:
        raise NoPlan(f"unknown .npy version {major}")
    if length > MAX_HEADER or data_start > size:
        raise NoPlan(f"header length {length} does not fit a file of {size} bytes")
    # The header is a dict literal ending in a newline; numpy refuses any other.
    header = read(data_start - length, length)
    if not header.lstrip(b" ").startswith(b"{") or not header.endswith(b"\n"):
        raise NoPlan("the header is not a dict literal")
    return [ByteRange(0, data_start), ByteRange(data_start, size)]
