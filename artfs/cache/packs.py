"""Pack files: many chunks in one cache file.

A file per chunk costs the disk an inode each. On ext4 without a journal that
is dear after many deletions (a bounded cache evicting, a cache wiped): each
create scans past every recently freed inode of its group, a large share of
the daemon's CPU in a cold read and of a walk over many small files. So
chunks fetched together are kept together:

* the small blobs of one batch (``write_pack``: known in full, written at once);
* the chunks of one ranged request (``PackWriter``: written one by one as they
  arrive, each readable as soon as it is written).

Format (big-endian)::

    b"artfspk2" | count (4) | data start (4) |
    count * (sha256 (32) | chunk index (4) | size (8)) | zeros up to data start |
    the chunks, back to back in header order

The data start is a multiple of 4096, so chunks of whole pages can be written
and read with ``O_DIRECT``. A chunk index of ``DROPPED`` marks a chunk found
damaged (``drop_damaged``): no scan lists it again. The first format,
``b"artfspk1"`` (one-chunk blobs right after a header without index or data
start), is still read.

A pack is written under a temporary name and renamed when complete, like a
chunk file; its chunks are verified on first read by each process like any
chunk, so a damaged pack costs a refetch, never wrong bytes.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import mmap
import os
import struct
from collections.abc import Sequence
from typing import Any, BinaryIO

from artfs.fileio import Buffer, write_all_at, write_file

__all__ = [
    "ALIGN",
    "PACK_SUFFIX",
    "PackEntry",
    "PackWriter",
    "drop_damaged",
    "has_hole",
    "punch_hole",
    "read_index",
    "write_pack",
]

PACK_SUFFIX = ".pack"
_MAGIC_V1 = b"artfspk1"
_MAGIC = b"artfspk2"
_HEAD_V1 = struct.Struct(">8sI")
_ENTRY_V1 = struct.Struct(">32sQ")
_HEAD = struct.Struct(">8sII")
_ENTRY = struct.Struct(">32sIQ")
#: More entries than any batch holds: a header claiming more is damaged.
_MAX_ENTRIES = 1 << 16
#: What ``O_DIRECT`` needs offsets and lengths to be multiples of.
ALIGN = 4096
#: The chunk index of a header entry whose chunk was found damaged.
DROPPED = (1 << 32) - 1

PackEntry = tuple[str, int, int, int]  # digest, chunk index, offset in the pack, size
Planned = tuple[str, int, int]  # digest, chunk index, size


def _header(entries: Sequence[Planned], data_start: int | None = None) -> bytes:
    """The header of a pack of ``entries``, zero-padded to its data start."""
    length = _HEAD.size + len(entries) * _ENTRY.size
    if data_start is None:
        data_start = -(-length // ALIGN) * ALIGN
    header = bytearray(_HEAD.pack(_MAGIC, len(entries), data_start))
    for digest, index, size in entries:
        header += _ENTRY.pack(bytes.fromhex(digest), index, size)
    return bytes(header.ljust(data_start, b"\0"))


def write_pack(path: str, tmp: str, blobs: Sequence[tuple[str, Buffer]]) -> list[PackEntry]:
    """Write one-chunk blobs ``(digest, bytes)`` as one pack at ``path`` (through ``tmp``).

    Says where each lies. Raises ``OSError`` (``tmp`` removed) if writing fails.
    """
    header = _header([(digest, 0, len(data)) for digest, data in blobs])
    entries: list[PackEntry] = []
    offset = len(header)
    for digest, data in blobs:
        entries.append((digest, 0, offset, len(data)))
        offset += len(data)
    whole = header + b"".join(data for _, data in blobs)
    try:
        write_file(tmp, whole, os.O_CREAT | os.O_TRUNC)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return entries


class PackWriter:
    """A pack at ``path`` written chunk by chunk, in the order planned.

    Each ``put`` writes the next planned chunk and says where it lies, so the
    chunk can be read from the file at once. ``finish`` rewrites the header
    to the chunks actually put (a download may stop early). Chunks of whole
    pages in page-aligned buffers (``mmap``) go with ``O_DIRECT`` when asked:
    straight to the disk, no copy into the page cache.
    """

    def __init__(self, path: str, planned: Sequence[Planned]) -> None:
        if not 0 < len(planned) <= _MAX_ENTRIES:
            raise ValueError(f"a pack holds 1 to {_MAX_ENTRIES} chunks, not {len(planned)}")
        self.path = path
        self._planned = list(planned)
        self._data_start = len(_header(self._planned))
        self._next_offset = self._data_start
        self._put = 0
        #: Whether the filesystem refused ``O_DIRECT`` (the caller stops asking).
        self.direct_refused = False
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        self._direct = False
        try:
            os.pwrite(self._fd, _header(self._planned), 0)
        except BaseException:
            self.abandon()
            raise

    def put(self, digest: str, index: int, data: Buffer, *, direct: bool) -> int:
        """Write the next planned chunk; its offset in the pack."""
        size = len(data)
        if self._put == len(self._planned) or self._planned[self._put] != (digest, index, size):
            raise ValueError(f"chunk {index} of {digest} ({size} bytes) is not next in the pack")
        offset = self._next_offset
        direct = direct and isinstance(data, mmap.mmap) and size % ALIGN == 0
        self._set_direct(direct)
        try:
            write_all_at(self._fd, data, offset)
        except OSError as exc:
            if not (direct and exc.errno == errno.EINVAL):
                raise
            self.direct_refused = True
            self._set_direct(False)
            write_all_at(self._fd, data, offset)
        self._put += 1
        self._next_offset += size
        return offset

    def finish(self) -> int:
        """Close the pack with the chunks put so far in its header; how many that is.

        A pack with none is removed.
        """
        try:
            if self._put == 0:
                self.abandon()
                return 0
            if self._put < len(self._planned):
                self._set_direct(False)
                header = _header(self._planned[: self._put], self._data_start)
                os.pwrite(self._fd, header, 0)
                os.ftruncate(self._fd, self._next_offset)
        except BaseException:
            self.abandon()
            raise
        os.close(self._fd)
        self._fd = -1
        return self._put

    def abandon(self) -> None:
        """Close and remove the pack, whatever was written."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        with contextlib.suppress(OSError):
            os.unlink(self.path)

    def _set_direct(self, direct: bool) -> None:
        if direct == self._direct or (self.direct_refused and direct):
            return
        flags = fcntl.fcntl(self._fd, fcntl.F_GETFL)
        flags = flags | os.O_DIRECT if direct else flags & ~os.O_DIRECT
        try:
            fcntl.fcntl(self._fd, fcntl.F_SETFL, flags)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            self.direct_refused = True
            return
        self._direct = direct


_libc = ctypes.CDLL(None, use_errno=True)
_fallocate = _libc.fallocate
_fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
_fallocate.restype = ctypes.c_int
_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02


def punch_hole(path: str, offset: int, length: int) -> None:
    """Give the disk space of an evicted chunk back while the rest of its pack stays.

    Without it a pack would hold its space until its last chunk goes, and a
    full disk could not be relieved by evicting chunks of packs still in use.
    Only whole blocks inside the range are punched: zeroing part of a block
    would leave no hole for ``has_hole`` to see. A filesystem that cannot
    punch holes keeps the bytes. (``os`` has no ``fallocate`` with modes.)
    """
    start = -(-offset // ALIGN) * ALIGN
    length = (offset + length) // ALIGN * ALIGN - start
    if length <= 0:
        return
    offset = start
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return  # gone already: the pack was emptied or renamed
    try:
        _fallocate(fd, _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE, offset, length)
    finally:
        os.close(fd)


def drop_damaged(path: str, offset: int, length: int) -> None:
    """Remove a chunk found damaged from its pack for every process: punch its space
    out and mark its header entry ``DROPPED``.

    A hole alone would do for a chunk of whole blocks, but a small one sharing
    blocks with its neighbours leaves none, and the next scan would list its
    bad bytes again. (A pack of the first format has no index to mark.)
    """
    punch_hole(path, offset, length)
    try:
        with open(path, "r+b") as pack:
            is_v2 = pack.read(8) == _MAGIC
            pack.seek(0)
            entries = _read_header(pack)
            if entries is None or not is_v2:
                return
            for position, (_, _, start, _) in enumerate(entries):
                if start == offset:
                    at = _HEAD.size + position * _ENTRY.size + 32  # the index, after the digest
                    os.pwrite(pack.fileno(), struct.pack(">I", DROPPED), at)
                    return
    except OSError:
        return  # gone already: the pack was emptied or renamed


def has_hole(fd: int, offset: int, length: int) -> bool:
    """Whether ``[offset, offset + length)`` of an open pack holds a punched hole.

    Another process sharing the cache may evict a chunk this one verified, and
    punch its hole. A chunk's range is written once, before the chunk is
    listed, so a hole in it is never filled again: if none lies in it right
    after a read, none did during it, and the bytes read are the chunk's.
    """
    try:
        return os.lseek(fd, offset, os.SEEK_HOLE) < offset + length
    except OSError as exc:
        # ENXIO: the range lies past the end; EINVAL: no SEEK_HOLE here (nor holes).
        return exc.errno == errno.ENXIO


def read_index(path: str) -> list[PackEntry] | None:
    """The chunks a pack holds, from its header; ``None`` if the pack is damaged or short.

    A chunk whose space was given back (``punch_hole``: evicted while the pack
    stayed) is no longer held, and left out, as is one marked ``DROPPED``.
    """
    try:
        with open(path, "rb") as pack:
            entries = _read_header(pack)
            if entries is None:
                return None
            _, _, last_offset, last_size = entries[-1]
            if last_offset + last_size != os.fstat(pack.fileno()).st_size:
                return None
            return [
                entry
                for entry in entries
                if entry[1] != DROPPED and not _in_hole(pack.fileno(), entry)
            ]
    except FileNotFoundError:
        return None


def _read_header(pack: BinaryIO) -> list[PackEntry] | None:
    """The entries a pack's header lists, with their offsets; ``None`` if it is damaged."""
    head = pack.read(_HEAD.size)
    listed: list[tuple[str, int, int]]  # digest, chunk index, size
    if head[:8] == _MAGIC and len(head) == _HEAD.size:
        _, count, data_start = _HEAD.unpack(head)
        raw = _read_entries(pack, count, _ENTRY)
        listed = [(digest.hex(), index, size) for digest, index, size in raw]
        if data_start < _HEAD.size + count * _ENTRY.size:
            return None
    elif head[:8] == _MAGIC_V1 and len(head) >= _HEAD_V1.size:
        (count,) = struct.unpack(">I", head[8 : _HEAD_V1.size])
        pack.seek(_HEAD_V1.size)
        raw = _read_entries(pack, count, _ENTRY_V1)
        listed = [(digest.hex(), 0, size) for digest, size in raw]
        data_start = _HEAD_V1.size + count * _ENTRY_V1.size
    else:
        return None
    if not listed or len(listed) != count:
        return None
    entries: list[PackEntry] = []
    offset = data_start
    for digest, index, size in listed:
        entries.append((digest, index, offset, size))
        offset += size
    return entries


def _read_entries(pack: BinaryIO, count: int, entry: struct.Struct) -> list[tuple[Any, ...]]:
    if count > _MAX_ENTRIES:
        return []
    raw = pack.read(count * entry.size)
    if len(raw) != count * entry.size:
        return []
    return list(entry.iter_unpack(raw))


def _in_hole(fd: int, entry: PackEntry) -> bool:
    _, _, offset, size = entry
    return bool(size) and has_hole(fd, offset, size)
