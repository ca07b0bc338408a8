"""Prefetch plans for files whose format announces its layout. Pure: no I/O, no FUSE.

A planner reads a few bytes of a file (a header or a footer) through ``read``
and returns the byte ranges a loader will read, in the order it reads them
(docs/design.md, "Prefetch that knows ML files"). ``read`` raises ``Missing``
for bytes its caller has not fetched yet; the caller fetches them and asks
again. Whatever a file says, ``plan_for`` returns a plan or ``None``, never
an exception other than ``Missing``: a hostile header costs a reader nothing.
"""

from __future__ import annotations

from artfs.fetch.formats.base import MAX_HEADER, ByteRange, Missing, Read, bytes_reader
from artfs.fetch.formats.detect import plan_for

__all__ = ["MAX_HEADER", "ByteRange", "Missing", "Read", "bytes_reader", "plan_for"]
