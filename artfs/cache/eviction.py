"""``Lru``: the chunks the cache lists by recency, the bound on their size, and the pins.

Size is bounded by ``max_bytes``: least-recently-used chunks are evicted,
never those of a blob that is pinned (open by a reader) while others can go
(``choose``). Recency survives restarts as the files' mtimes, which the cache
renews as it verifies a chunk. Several processes may share the directory;
each keeps its own accounting (forgetting a chunk it finds gone), so the
bound holds approximately across processes and exactly within one.

Not thread-safe: ``ChunkCache`` calls it under its lock.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Sequence

from artfs.cache.fresh import FreshChunks
from artfs.cache.layout import Key
from artfs.digests import CHUNK_SIZE

__all__ = ["NO_SPACE_RELIEF", "Lru"]

#: Bytes of its own chunks the cache gives up when the disk is full.
NO_SPACE_RELIEF = 64 * CHUNK_SIZE


class Lru:
    def __init__(self, max_bytes: int, found: Sequence[tuple[float, Key, int]]) -> None:
        """``found``: (mtime, chunk, size) of the chunks on disk, oldest first."""
        self.max_bytes = max_bytes
        self._sizes: OrderedDict[Key, int] = OrderedDict((key, size) for _, key, size in found)
        #: Bytes of the chunks listed.
        self.total = sum(size for *_, size in found)
        self._pins: Counter[str] = Counter()

    def __contains__(self, key: object) -> bool:
        return key in self._sizes

    def touch(self, key: Key) -> None:
        """A listed chunk was used: the last to go."""
        self._sizes.move_to_end(key)

    def add(self, key: Key, size: int) -> None:
        """List a chunk, in place of any older copy, as the most recently used."""
        if key in self._sizes:
            self.total -= self._sizes.pop(key)
        self._sizes[key] = size
        self.total += size

    def discard(self, key: Key) -> None:
        size = self._sizes.pop(key, None)
        if size is not None:
            self.total -= size

    def pin(self, digest: str) -> None:
        self._pins[digest] += 1

    def unpin(self, digest: str) -> None:
        self._pins[digest] -= 1
        if self._pins[digest] <= 0:
            del self._pins[digest]

    def eviction_target(self) -> int | None:
        """How many bytes to evict down to, once the bound is crossed; ``None`` within it."""
        if self.total <= self.max_bytes:
            return None
        # Some room below the bound, so that a streaming reader pays for one
        # eviction scan per few dozen chunks, not one per chunk.
        return self.max_bytes - min(self.max_bytes // 16, 64 * CHUNK_SIZE)

    def choose(
        self, target: int, *, pressed: bool, in_memory: FreshChunks
    ) -> tuple[list[Key], list[int]]:
        """Unlist least-recently-used chunks until at most ``target`` bytes remain; say
        which, and their sizes.

        Chunks of blobs nobody has open go first. If that is not enough, an open
        blob gives up its older chunks too — a file streamed through a small
        cache must not fill the disk — but never its most recently used ones
        (``_recent_pinned``), nor those held in memory for a reader right now
        (``in_memory``). When the disk itself is full (``pressed``), only the
        two most recent.
        """
        victims: list[Key] = []
        for key, size in self._sizes.items():
            if self.total <= target:
                break
            if key[0] in self._pins:
                continue
            victims.append(key)
            self.total -= size
        if self.total > target and self._pins:
            keep = self._recent_pinned(2 if pressed else None)
            chosen = set(victims)
            for key, size in self._sizes.items():
                if self.total <= target:
                    break
                if key in chosen or key in keep or (key in in_memory and not pressed):
                    continue
                victims.append(key)
                self.total -= size
        return victims, [self._sizes.pop(key) for key in victims]

    def _recent_pinned(self, keep: int | None = None) -> set[Key]:
        """Each open blob's most recently used chunks."""
        if keep is None:
            keep = max(2, min(64, self.max_bytes // (4 * CHUNK_SIZE)))
        counts: Counter[str] = Counter()
        recent: set[Key] = set()
        for key in reversed(self._sizes):
            if key[0] in self._pins and counts[key[0]] < keep:
                counts[key[0]] += 1
                recent.add(key)
        return recent

    def sizes(self) -> list[tuple[Key, int]]:
        """Every chunk listed, with its size, least recently used first."""
        return list(self._sizes.items())

    def stats(self) -> dict[str, int]:
        return {
            "bytes": self.total,
            "max_bytes": self.max_bytes,
            "chunks": len(self._sizes),
            "blobs": len({digest for digest, _ in self._sizes}),
            "pinned_blobs": len(self._pins),
        }
