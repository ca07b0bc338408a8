"""``ChunkArena``: chunk buffers in memory the mount daemon shares with its fetch workers.

A fetch worker (``artfs.fetch.workers``) downloads a chunk, verifies it and
writes it to the cache's disk in a process of its own, away from the FUSE
process's interpreter lock. The bytes must still end up in the daemon's
memory, verified, for its readers (the cache's fresh tier). So they are
downloaded straight into a *slot* of this arena: one anonymous shared memory
file (``memfd``), cut into chunk-sized slots, mapped by the daemon and by each
worker it starts. A worker verifies the bytes where they lie, so what the
daemon serves from a slot is exactly what was verified, and no copy is made
between the processes. The memory belongs to the daemon and the workers it
started: no name in any filesystem, nothing another process can open unless
it can already read the daemon's memory (``/proc/PID/fd`` of the same user).

Each slot is its own ``mmap`` object in the daemon, so a reader's view of a
slot holds a reference to it, and a slot is handed out again only once no view
of it is left (``BufferPool``, as for the daemon's private buffers). docs/design.md,
"Fetch workers", says how the parts fit.
"""

from __future__ import annotations

import contextlib
import mmap
import os

from artfs.digests import CHUNK_SIZE

__all__ = ["ArenaView", "ChunkArena"]

#: ``madvise`` advice (Linux 5.14) that maps every page of a range at once.
_MADV_POPULATE_READ = 22


class ChunkArena:
    """The daemon's side: the memory file and one mapping per slot."""

    def __init__(self, slots: int, slot_bytes: int = CHUNK_SIZE) -> None:
        if slots <= 0:
            raise ValueError(f"an arena needs at least one slot, not {slots}")
        self.slot_bytes = slot_bytes
        # Not inherited by any child: a worker opens it through /proc (see ``ArenaView``).
        self.fd = os.memfd_create("artfs-chunks", os.MFD_CLOEXEC)
        os.ftruncate(self.fd, slots * slot_bytes)
        self.buffers = [
            mmap.mmap(self.fd, slot_bytes, mmap.MAP_SHARED, offset=slot * slot_bytes)
            for slot in range(slots)
        ]
        self._slot_of = {id(buffer): slot for slot, buffer in enumerate(self.buffers)}
        self._populated: set[int] = set()

    def populate(self, slot: int) -> None:
        """Map a slot's pages in, once, as its first chunk arrives: a page at a time (a
        fault each) cost more than the chunk's hash. The worker that wrote it first
        allocated them all at once (``ArenaView``); slots never used take no memory."""
        if slot in self._populated:
            return
        self._populated.add(slot)
        with contextlib.suppress(OSError, ValueError):  # older kernels: fault page by page
            self.buffers[slot].madvise(_MADV_POPULATE_READ)

    @property
    def path(self) -> str:
        """Where a worker of this process opens the memory file."""
        return f"/proc/{os.getpid()}/fd/{self.fd}"

    @property
    def size(self) -> int:
        return len(self.buffers) * self.slot_bytes

    def slot_of(self, buffer: object) -> int | None:
        """The slot ``buffer`` is (or is a view of), if it is one of this arena's."""
        owner = buffer.obj if isinstance(buffer, memoryview) else buffer
        return self._slot_of.get(id(owner))

    def close(self) -> None:
        # The mappings stay valid until the last view of them goes; the file then with them.
        os.close(self.fd)


class ArenaView:
    """A worker's side: the whole arena mapped once, with a buffer per slot on demand."""

    def __init__(self, path: str, size: int, slot_bytes: int) -> None:
        self.slot_bytes = slot_bytes
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        try:
            self._slots: dict[int, mmap.mmap] = {}
            self._fd = os.dup(fd)
            self._size = size
        finally:
            os.close(fd)

    def buffer(self, slot: int, length: int) -> mmap.mmap | memoryview:
        """Slot ``slot``'s first ``length`` bytes: the slot's own mapping when whole (which
        ``O_DIRECT`` writes take), a view of it when shorter."""
        if not 0 <= slot < self._size // self.slot_bytes or not 0 < length <= self.slot_bytes:
            raise ValueError(f"slot {slot} of {length} bytes is outside the arena")
        mapped = self._slots.get(slot)
        if mapped is None:
            # Populated: the slot's pages allocated and mapped at once, not a fault per page.
            mapped = mmap.mmap(
                self._fd,
                self.slot_bytes,
                mmap.MAP_SHARED | mmap.MAP_POPULATE,
                offset=slot * self.slot_bytes,
            )
            self._slots[slot] = mapped
        return mapped if length == self.slot_bytes else memoryview(mapped)[:length]
