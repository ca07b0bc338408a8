"""``audit_cache``: re-hash every chunk of a cache directory, removing the damaged ones.

What ``artfs cache verify`` runs. Each listed chunk is read back from disk and
verified against its blob's layout, exactly as a mount's read does
(``ChunkCache.verify_on_disk``), so a damaged one is removed the same way: its
file deleted, or its range of a pack punched out; the next read fetches it
again. A chunk whose blob has no layout record here (lost with a damaged
layout file) cannot be checked offline and is left for a mount, which fetches
the layout and verifies the chunk when it reads it. A blob of one chunk needs
no record: its digest is its chunk's.
"""

from __future__ import annotations

from dataclasses import dataclass

from artfs.cache.chunks import ChunkCache, Verdict
from artfs.cache.layout import ChunkLayout

__all__ = ["CacheAudit", "audit_cache"]


@dataclass(frozen=True)
class CacheAudit:
    """What ``audit_cache`` found: chunks (and their bytes) checked, and of those damaged."""

    checked: int
    checked_bytes: int
    bad: int
    #: Chunks whose blob's layout is not recorded here: not checked, left in place.
    unchecked: int

    @property
    def intact(self) -> bool:
        return self.bad == 0


def audit_cache(cache: ChunkCache) -> CacheAudit:
    checked = checked_bytes = bad = unchecked = 0
    layouts: dict[str, ChunkLayout | None] = {}
    # In blob and chunk order: the chunks of one download lie together in a pack.
    for (digest, index), size in sorted(cache.listed()):
        if digest not in layouts:
            layouts[digest] = cache.layout(digest) or (
                ChunkLayout.implied(digest, size) if index == 0 else None
            )
        layout = layouts[digest]
        if layout is None or index >= layout.chunk_count:
            unchecked += 1
            continue
        verdict = cache.verify_on_disk(layout, index)
        if verdict is Verdict.GONE:
            continue  # evicted meanwhile by a mount sharing the cache
        checked += 1
        checked_bytes += size
        bad += verdict is Verdict.DAMAGED
    return CacheAudit(checked, checked_bytes, bad, unchecked)
