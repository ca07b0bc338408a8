"""``BufferPool``: memory for chunks about to be fetched, reused once no reader holds it.

A chunk is fetched into a buffer the cache can write fastest: a page-aligned
mapping of whole pages, which ``O_DIRECT`` takes. A fresh mapping costs the
kernel page allocation, memory-cgroup charging and clearing, which a
streaming fetch pays for every chunk; so the whole-chunk buffers the fresh
tier lets go of are kept (``retire``) and handed out again (``new``) once
nothing refers to them any more. A reader's view of a buffer holds a
reference to it, so a buffer still being replied from is never reused.

The pool shares the cache's lock: the fresh tier retires a buffer under it,
and a buffer leaves the pool under it, so no reader can take a new view of a
buffer between its reference count being read and its reuse.

With fetch workers, chunks are fetched into slots of the shared ``ChunkArena``
instead (``new_shared``); a slot is reused on the same terms.
"""

from __future__ import annotations

import mmap
import sys
import threading

from artfs.cache.arena import ChunkArena
from artfs.cache.packs import ALIGN
from artfs.digests import CHUNK_SIZE
from artfs.fileio import Buffer

__all__ = ["SPARE_BUFFERS", "BufferPool"]

#: Retired chunk buffers kept for reuse: memory a fetch would map anyway.
SPARE_BUFFERS = 16
# References to a retired buffer nobody else holds: the list, a variable, the call.
_RETIRED_REFERENCES = 3
_PRIVATE_ANONYMOUS = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_POPULATE", 0)


class BufferPool:
    def __init__(self, lock: threading.Lock, arena: ChunkArena | None = None) -> None:
        #: The cache's lock (see the module doc).
        self._lock = lock
        #: Chunk buffers the fresh tier let go of, to be reused once no view of them is left.
        self._retired: list[mmap.mmap] = []
        self.arena = arena
        #: Arena slots not handed out, each reusable once no view of it is left.
        self._free_slots = list(range(len(arena.buffers))) if arena is not None else []

    def new_shared(self, length: int) -> tuple[int, Buffer] | None:
        """A free arena slot for a chunk of ``length`` bytes, and the buffer that is that
        chunk in it; ``None`` if there is no arena or no slot free now."""
        arena = self.arena
        if arena is None or length > arena.slot_bytes:
            return None
        with self._lock:
            for position in range(len(self._free_slots)):
                slot = self._free_slots[position]
                buffer = arena.buffers[slot]
                # Held by the arena's list, this variable and the call: no view is left.
                if sys.getrefcount(buffer) <= _RETIRED_REFERENCES:
                    del self._free_slots[position]
                    whole = length == len(buffer)
                    return slot, buffer if whole else memoryview(buffer)[:length]
        return None

    def release_slot(self, slot: int) -> None:
        """Give back a slot whose chunk was never kept (a failed or refused fetch)."""
        with self._lock:
            self._free_slot(slot)

    def _free_slot(self, slot: int) -> None:
        if slot not in self._free_slots:
            self._free_slots.append(slot)

    def new(self, length: int, *, direct: bool) -> Buffer:
        """A buffer for a chunk of ``length`` bytes; a mapping if the cache writes ``direct``."""
        if direct and length % ALIGN == 0:
            if length == CHUNK_SIZE:
                with self._lock:
                    for position in range(len(self._retired)):  # not enumerate: its tuple
                        buffer = self._retired[position]  # would hold a reference too
                        # Held only by the list, this variable and the call: no reader's
                        # view of it is left (a view holds a reference), and none can
                        # appear, since it left the fresh tier under this lock.
                        if sys.getrefcount(buffer) <= _RETIRED_REFERENCES:
                            del self._retired[position]
                            return buffer
            # Page-aligned, as O_DIRECT wants; private (not shmem) and populated
            # at once, which costs far less than a page fault per page.
            return mmap.mmap(-1, length, flags=_PRIVATE_ANONYMOUS)
        return bytearray(length)

    def retire(self, buffer: Buffer) -> None:
        """Keep a buffer the fresh tier let go of, if it is a whole chunk and there is room.

        Called under the cache's lock (the fresh tier calls it as it drops a chunk).
        """
        if self.arena is not None:
            slot = self.arena.slot_of(buffer)
            if slot is not None:
                self._free_slot(slot)
                return
        if (
            isinstance(buffer, mmap.mmap)
            and len(buffer) == CHUNK_SIZE
            and len(self._retired) < SPARE_BUFFERS
        ):
            self._retired.append(buffer)
