"""``FreshChunks``: chunks just fetched or verified, kept in memory for their reader.

A sequential reader asks for a chunk shortly after the read-ahead fetched it;
serving it from memory saves reading back, and verifying again, a file the
cache wrote with ``O_DIRECT`` (so not in the page cache). The tier is bounded by bytes and does
not push out chunks not yet read to make room for newer ones (those are the
ones readers want soonest): a chunk that finds no room is simply not admitted,
and the cache writes it through the page cache instead. Room comes from
readers (``served``: a chunk goes once readers took as many bytes as it holds,
whatever their order, as an ``mmap`` loader reads a chunk's parts out of
order) and from age: an entry
older than ``stale_after`` seconds (a random reader's chunk, read in part) may
be pushed out. A chunk verified from disk for a reader waiting on it may push
out the oldest entries whatever their age (``admit(push=True)``): left out,
it would be read and hashed again.

Not thread-safe: ``ChunkCache`` calls it under its lock.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from artfs.cache.layout import Key
from artfs.fileio import Buffer

__all__ = ["FreshChunks"]


class FreshChunks:
    def __init__(
        self,
        max_bytes: int,
        stale_after: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        on_drop: Callable[[Buffer], None] | None = None,
    ) -> None:
        self.max_bytes = max_bytes
        self._stale_after = stale_after
        self._clock = clock
        #: Given each buffer the tier lets go of (for reuse once nobody holds it).
        self._on_drop = on_drop
        self._entries: OrderedDict[Key, tuple[float, Buffer]] = OrderedDict()  # oldest first
        #: Bytes readers took of each entry; bytes read twice count twice, which
        #: only drops a chunk early (a read back from disk), never keeps one forever.
        self._served: dict[Key, int] = {}
        self.bytes = 0

    def __contains__(self, key: Key) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Key) -> Buffer | None:
        entry = self._entries.get(key)
        return None if entry is None else entry[1]

    def admit(self, key: Key, data: Buffer, *, push: bool = False) -> bool:
        """Keep ``data`` if it fits after dropping stale entries (any entries, oldest first,
        with ``push``); say whether it was kept."""
        self.drop(key)
        if len(data) > self.max_bytes:
            return False  # would push out everything and still not fit
        now = self._clock()
        while self.bytes + len(data) > self.max_bytes and self._entries:
            oldest, (since, _) = next(iter(self._entries.items()))
            if now - since < self._stale_after and not push:
                return False
            self.drop(oldest)
        self._entries[key] = (now, data)
        self.bytes += len(data)
        return True

    def served(self, key: Key, count: int) -> None:
        """Readers took ``count`` more bytes of ``key``; once they took them all, it goes."""
        entry = self._entries.get(key)
        if entry is None:
            return
        total = self._served.get(key, 0) + count
        if total >= len(entry[1]):
            self.drop(key)
        else:
            self._served[key] = total

    def drop(self, key: Key) -> None:
        entry = self._entries.pop(key, None)
        self._served.pop(key, None)
        if entry is not None:
            self.bytes -= len(entry[1])
            if self._on_drop is not None:
                self._on_drop(entry[1])
