"""safetensors: an 8-byte little-endian header length, a JSON header of tensor offsets, the data.

A loader reads the header, then each tensor; ``safetensors`` walks them in
the order of their offsets, so the plan is the header and then the data in
file order.
"""

from __future__ import annotations

import json
import struct

from artfs.fetch.formats.base import MAX_HEADER, ByteRange, NoPlan, Read

__all__ = ["looks_like", "plan"]


def looks_like(head: bytes, size: int) -> bool:
    if len(head) < 9 or head[8:9] != b"{":
        return False
    length: int = struct.unpack("<Q", head[:8])[0]
    return 2 <= length <= min(MAX_HEADER, size - 8)


def plan(size: int, read: Read) -> list[ByteRange]:
    (length,) = struct.unpack("<Q", read(0, 8))
    if not 2 <= length <= min(MAX_HEADER, size - 8):
        raise NoPlan(f"header length {length} does not fit a file of {size} bytes")
    header = json.loads(read(8, length))
    if not isinstance(header, dict):
        raise NoPlan("the header is not a JSON object")
    data_start = 8 + length
    tensors: list[ByteRange] = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(type(o) is int for o in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= size - data_start
        ):
            raise NoPlan(f"tensor {name!r} has no offsets within the file")
        tensors.append(ByteRange(data_start + offsets[0], data_start + offsets[1]))
    tensors.sort(key=lambda r: r.start)
    return [ByteRange(0, data_start), *tensors]
