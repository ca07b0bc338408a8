"""Writing whole buffers to files: ``os.write`` and ``os.pwrite`` may write less than given."""

from __future__ import annotations

import mmap
import os

__all__ = ["Buffer", "write_all", "write_all_at", "write_file"]

#: What a chunk or a blob may be held in: bytes, or a (mapped) buffer.
Buffer = bytes | bytearray | memoryview | mmap.mmap


def write_all(fd: int, data: Buffer) -> None:
    """Write every byte of ``data`` to ``fd``, however many calls that takes."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_all_at(fd: int, data: Buffer, offset: int) -> None:
    """``write_all`` at ``offset`` (``pwrite``), leaving the file position alone."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def write_file(path: str | os.PathLike[str], data: Buffer, flags: int) -> None:
    """Open ``path`` for writing with ``flags`` (``O_CREAT``… as the caller needs), write, close."""
    fd = os.open(path, os.O_WRONLY | flags, 0o644)
    try:
        write_all(fd, data)
    finally:
        os.close(fd)
