"""``ReadAhead``: how far ahead of one reader to fetch, learnt from its offsets.

After Mountpoint-S3's prefetcher: a reader that keeps reading where it left off
earns a window that doubles with each sequential read, up to ``max_chunks``;
any seek resets it to nothing, so a random reader fetches only the chunks it
reads. A read at offset 0 counts as sequential from the start, since most
readers of a fresh file go on from there.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ReadAhead"]


@dataclass
class ReadAhead:
    max_chunks: int = 64
    window: int = 0
    next_offset: int | None = None

    def after_read(self, offset: int, length: int) -> int:
        """Record a read and return how many chunks past it to fetch ahead."""
        sequential = offset == self.next_offset or (offset == 0 and self.next_offset is None)
        if sequential:
            self.window = min(max(self.window * 2, 1), self.max_chunks)
        else:
            self.window = 0
        self.next_offset = offset + length
        return self.window
