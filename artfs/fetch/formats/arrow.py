"""Arrow IPC file (Feather v2): ``ARROW1``, schema and record batches, a footer, its length.

A reader opens the footer (the schema and where each batch lies), then reads
the batches in order, so the plan is the footer and then the body in file order.
"""

from __future__ import annotations

from artfs.fetch.formats.base import ByteRange, Read, footer_length

__all__ = ["MAGIC", "plan"]

MAGIC = b"ARROW1"


def plan(size: int, read: Read) -> list[ByteRange]:
    footer_start = size - 10 - footer_length(size, read, MAGIC, 18)
    return [ByteRange(footer_start, size), ByteRange(8, footer_start)]
