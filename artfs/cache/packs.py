"""Pack files: many small blobs in one cache file.

A walk over small files (``find | xargs cat`` of 10,000 files of 4 KiB) stores
one blob per file opened; a file per blob cost ext4 an inode allocation each,
the largest single cost of the fetch thread (perf). Blobs fetched together in
a batch are therefore written together, as one pack::

    b"artfspk1" | count (4 bytes) | count * (sha256 (32 bytes) | size (8 bytes)) | the blobs

big-endian, the blobs back to back in header order. A pack is written to a
temporary name and renamed, like a chunk file; its blobs are verified on first
read by each process like any chunk, so a damaged pack costs a refetch, never
wrong bytes.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Sequence

from artfs.cache.fresh import Buffer
from artfs.fileio import write_file

__all__ = ["PACK_SUFFIX", "PackEntry", "read_index", "write_pack"]

PACK_SUFFIX = ".pack"
_MAGIC = b"artfspk1"
_HEAD = struct.Struct(">8sI")
_ENTRY = struct.Struct(">32sQ")
#: More entries than any batch holds: a header claiming more is damaged.
_MAX_ENTRIES = 1 << 16

PackEntry = tuple[str, int, int]  # digest, offset in the pack, size


def write_pack(path: str, tmp: str, blobs: Sequence[tuple[str, Buffer]]) -> list[PackEntry]:
    """Write ``(digest, bytes)`` pairs as one pack at ``path`` (through ``tmp``); say where each is.

    Raises ``OSError`` (``tmp`` removed) if writing fails.
    """
    header = bytearray(_HEAD.pack(_MAGIC, len(blobs)))
    for digest, data in blobs:
        header += _ENTRY.pack(bytes.fromhex(digest), len(data))
    entries: list[PackEntry] = []
    offset = len(header)
    for digest, data in blobs:
        entries.append((digest, offset, len(data)))
        offset += len(data)
    whole = bytes(header) + b"".join(data for _, data in blobs)
    try:
        write_file(tmp, whole, os.O_CREAT | os.O_TRUNC)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return entries


def read_index(path: str) -> list[PackEntry] | None:
    """The blobs a pack holds, from its header; ``None`` if the pack is damaged or short."""
    try:
        with open(path, "rb") as pack:
            head = pack.read(_HEAD.size)
            if len(head) != _HEAD.size:
                return None
            magic, count = _HEAD.unpack(head)
            if magic != _MAGIC or count > _MAX_ENTRIES:
                return None
            raw = pack.read(count * _ENTRY.size)
            if len(raw) != count * _ENTRY.size:
                return None
            length = os.fstat(pack.fileno()).st_size
    except FileNotFoundError:
        return None
    entries: list[PackEntry] = []
    offset = _HEAD.size + count * _ENTRY.size
    for digest, size in _ENTRY.iter_unpack(raw):
        entries.append((digest.hex(), offset, size))
        offset += size
    return entries if offset == length else None
