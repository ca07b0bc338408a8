"""``Places``: where each chunk the cache lists lies, and which packs still hold some.

A chunk lies in a file of its own unless it was fetched with others and lies
in a pack (``artfs.cache.packs``), at an offset. A chunk evicted from a pack
gives its space back at once (a hole punched in the pack); the pack is
deleted with its last listed chunk. So the listed chunks of each pack are
counted, plus one while a download is still writing it (``hold``), lest
evicting the chunks it stored so far delete the pack under the writer.

Not thread-safe: ``ChunkCache`` calls it under its lock.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Sequence

from artfs.cache.layout import Key
from artfs.cache.ondisk import chunk_path

__all__ = ["Place", "Places"]

log = logging.getLogger("artfs.cache")

#: A pack, and where in it a chunk starts.
Place = tuple[str, int]


class Places:
    def __init__(self, chunks_root: str, packed: dict[Key, Place]) -> None:
        self._chunks_root = chunks_root
        #: Chunks that lie in a pack rather than in a file of their own: (pack, offset).
        self._packed = packed
        #: Listed chunks per pack; a pack whose count falls to 0 is deleted.
        self._live = Counter(path for path, _ in packed.values())

    def chunk_file(self, key: Key) -> str:
        """The file of its own that holds a chunk not packed."""
        return chunk_path(self._chunks_root, *key)

    def where(self, key: Key) -> Place:
        """The file holding a chunk, and where in it the chunk starts."""
        return self._packed.get(key) or (chunk_path(self._chunks_root, *key), 0)

    def place(self, key: Key, packed: Place | None) -> str | None:
        """Record where a chunk just stored lies (``None``: a file of its own), in place of
        any older copy; the pack, if any, that the older copy left empty (to delete)."""
        emptied = self.unpack(key)
        if packed is not None:
            self._packed[key] = packed
            self._live[packed[0]] += 1
        return emptied

    def unpack(self, key: Key) -> str | None:
        """Stop counting ``key`` in its pack; the pack, if that left it empty."""
        where = self._packed.pop(key, None)
        if where is None:
            return None
        self._live[where[0]] -= 1
        if self._live[where[0]] > 0:
            return None
        del self._live[where[0]]
        return where[0]

    def evict(
        self, key: Key, size: int, doomed: list[str], holes: list[tuple[str, int, int]]
    ) -> None:
        """Give up a chunk of ``size`` bytes: add the file it frees to ``doomed`` (its own,
        or a pack it leaves empty), or else the range of its pack to punch to ``holes``."""
        where = self._packed.get(key)
        if where is None:
            doomed.append(chunk_path(self._chunks_root, *key))
        elif (emptied := self.unpack(key)) is not None:
            doomed.append(emptied)
        else:
            holes.append((where[0], where[1], size))

    def hold(self, pack: str) -> None:
        """Count a download's hold on the pack it is writing (``release`` drops it)."""
        self._live[pack] += 1

    def release(self, part: str, final: str, keys: Sequence[Key]) -> str | None:
        """A download finished writing its pack ``part``, which held ``keys``: drop its
        hold and rename the pack to ``final``; the pack to delete if none is listed."""
        self._live[part] -= 1
        if self._live[part] <= 0:
            del self._live[part]
            return part
        try:
            # Under the cache's lock, so that a reader who finds the old name gone
            # finds the new one listed (``ChunkCache._open_chunk``).
            os.replace(part, final)
        except OSError as exc:
            log.warning("cannot rename cache pack %s into place: %s", part, exc)
            return None
        self._live[final] = self._live.pop(part)
        for key in keys:
            where = self._packed.get(key)
            if where is not None and where[0] == part:
                self._packed[key] = (final, where[1])
        return None
