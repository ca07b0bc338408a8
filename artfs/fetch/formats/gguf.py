"""GGUF: magic, version, counts, key-value metadata, tensor infos, then aligned tensor data.

llama.cpp and the ``gguf`` package read the header, then each tensor in the
order of the tensor infos, so the plan is the header and then each tensor's
bytes in that order (a tensor ends where the next one by offset begins).
"""

from __future__ import annotations

import itertools

from artfs.fetch.formats.base import MAX_HEADER, ByteRange, Cursor, NoPlan, Read

__all__ = ["MAGIC", "plan"]

MAGIC = b"GGUF"
#: Bytes of each fixed-size value type; 8 is a string, 9 an array.
_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY = 8, 9
_MAX_COUNT = 1 << 20
_MAX_DIMS = 8


def plan(size: int, read: Read) -> list[ByteRange]:
    head = Cursor(read, 0, min(size, MAX_HEADER))
    if head.take(4) != MAGIC:
        raise NoPlan("not a GGUF file")
    if head.unpack("I") not in (2, 3):
        raise NoPlan("unknown GGUF version")
    tensor_count, kv_count = head.unpack("Q"), head.unpack("Q")
    if tensor_count > _MAX_COUNT or kv_count > _MAX_COUNT:
        raise NoPlan("more entries than any model has")
    alignment = 32
    for _ in range(kv_count):
        key = _string(head)
        kind = head.unpack("I")
        if key == b"general.alignment" and kind == 4:
            alignment = head.unpack("I")
            if alignment == 0 or alignment & (alignment - 1):
                raise NoPlan(f"alignment {alignment} is not a power of two")
        else:
            _skip_value(head, kind, depth=0)
    offsets: list[int] = []
    for _ in range(tensor_count):
        _string(head)
        dims = head.unpack("I")
        if dims > _MAX_DIMS:
            raise NoPlan(f"a tensor of {dims} dimensions")
        head.take(8 * dims)
        head.unpack("I")  # the tensor's type
        offsets.append(head.unpack("Q"))
    data_start = -(-head.offset // alignment) * alignment
    if any(data_start + offset > size for offset in offsets):
        raise NoPlan("a tensor starts past the end of the file")
    ends = sorted({*offsets, size - data_start})
    following = dict(itertools.pairwise(ends))
    tensors = [
        ByteRange(data_start + o, data_start + following.get(o, size - data_start)) for o in offsets
    ]
    return [ByteRange(0, data_start), *tensors]


def _string(cursor: Cursor) -> bytes:
    return cursor.take(cursor.unpack("Q"))


def _skip_value(cursor: Cursor, kind: int, depth: int) -> None:
    if kind in _FIXED:
        cursor.take(_FIXED[kind])
    elif kind == _STRING:
        _string(cursor)
    elif kind == _ARRAY and depth < 4:
        item, count = cursor.unpack("I"), cursor.unpack("Q")
        if item in _FIXED:
            cursor.take(_FIXED[item] * count)
        else:
            if count > _MAX_COUNT:
                raise NoPlan(f"an array of {count} entries")
            for _ in range(count):
                _skip_value(cursor, item, depth + 1)
    else:
        raise NoPlan(f"unknown GGUF value type {kind}")
