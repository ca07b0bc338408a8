"""The machine's chunk cache as a source and a witness of downloads.

A download first tries to assemble its file from cached chunks; a file fetched
from the registry is then recorded in the cache as an external copy of its
blob, so a mount or the next pull reads it from there.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from artfs.cache.chunks import ChunkCache
from artfs.cache.layout import ChunkLayout
from artfs.errors import NoSpace
from artfs.fileio import write_all
from artfs.transfer.progress import Progress

__all__ = ["copy_from_cache", "is_cached", "record_external"]

log = logging.getLogger("artfs.transfer")


def record_external(cache: ChunkCache | None, layout: ChunkLayout, target: Path) -> None:
    """Tell the machine cache that ``target`` now holds the (verified) blob."""
    if cache is None:
        return
    try:
        cache.add_external(layout, target)
    except (NoSpace, OSError) as exc:
        log.warning("could not record %s in the cache: %s", target.name, exc)


def is_cached(cache: ChunkCache, digest: str, size: int) -> bool:
    """Whether every chunk of the blob is in the cache (as far as its index knows)."""
    layout = cache.layout(digest, size)
    return layout is not None and not cache.missing(layout, range(layout.chunk_count))


def copy_from_cache(
    cache: ChunkCache, digest: str, size: int, target: Path, progress: Progress | None = None
) -> bool:
    """Assemble ``target`` from cached chunks; False (and nothing written) if any is missing."""
    layout = cache.layout(digest, size)
    if layout is None or cache.missing(layout, range(layout.chunk_count)):
        return False
    part = target.with_name(f".{target.name}.{digest[:16]}.artfs-cache")
    buffer = bytearray(min(layout.chunk_size, size))
    placed = False
    # Plain descriptors, not ``open()``: a pull of 1,000 cached small files is
    # mostly file creation, and a buffered file object adds three system calls
    # (fstat, ioctl, lseek) to each.
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    try:
        try:
            for index in range(layout.chunk_count):
                view = memoryview(buffer)[: layout.chunk_length(index)]
                # Verified by the cache against the chunk's digest as it reads it
                # from disk: hashing the whole again would only repeat that.
                if cache.read(layout, index, 0, view) != len(view):
                    return False  # evicted or found corrupt meanwhile: use the network
                write_all(fd, view)
        finally:
            os.close(fd)
        os.replace(part, target)
        placed = True
    finally:
        if not placed:
            part.unlink(missing_ok=True)
    if progress is not None:
        progress.update(size)
    return True
