"""Parquet: ``PAR1``, column chunks, a Thrift footer, its 4-byte length and ``PAR1``.

A reader reads the footer first and then only the column chunks of the
columns it asked for; which those are is the reader's choice, not the
file's, so the plan is the footer alone (prefetching every column would fetch
ten times the bytes of a reader of two columns out of twenty).
"""

from __future__ import annotations

from artfs.fetch.formats.base import ByteRange, Read, footer_length

__all__ = ["MAGIC", "plan"]

MAGIC = b"PAR1"


def plan(size: int, read: Read) -> list[ByteRange]:
    length = footer_length(size, read, MAGIC, 12)
    return [ByteRange(size - 8 - length, size)]
