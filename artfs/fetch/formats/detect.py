"""Which format a file is, from its first bytes, and its plan."""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable

from artfs.fetch.formats import arrow, gguf, npy, parquet, safetensors, torchzip
from artfs.fetch.formats.base import ByteRange, Missing, NoPlan, Read

__all__ = ["HEAD_BYTES", "plan_for"]

log = logging.getLogger("artfs.fetch")

#: Bytes at the start of a file that tell its format.
HEAD_BYTES = 16

_BY_MAGIC: list[tuple[bytes, Callable[[int, Read], list[ByteRange]]]] = [
    (npy.MAGIC, npy.plan),
    (gguf.MAGIC, gguf.plan),
    (torchzip.MAGIC, torchzip.plan),
    (parquet.MAGIC, parquet.plan),
    (arrow.MAGIC, arrow.plan),
]


def plan_for(size: int, read: Read) -> list[ByteRange] | None:
    """The ranges a loader of this file will read, in order; ``None``: no format known.

    Every range lies within the file and none is empty. Raises only ``Missing``.
    """
    if size < HEAD_BYTES:
        return None
    try:
        head = read(0, HEAD_BYTES)
        planner = next((p for magic, p in _BY_MAGIC if head.startswith(magic)), None)
        if planner is None and safetensors.looks_like(head, size):
            planner = safetensors.plan
        if planner is None:
            return None
        ranges = planner(size, read)
    except Missing:
        raise
    except NoPlan as exc:
        log.debug("no prefetch plan: %s", exc)
        return None
    except (
        ValueError,
        TypeError,
        KeyError,
        AttributeError,
        RecursionError,
        OverflowError,
        EOFError,
        NotImplementedError,
        struct.error,
    ) as exc:
        # A hostile or broken header (JSON, struct, zip): the reader reads as usual.
        log.debug("no prefetch plan: %r", exc)
        return None
    if any(not 0 <= r.start <= r.end <= size for r in ranges):
        return None
    return [r for r in ranges if r.end > r.start]
