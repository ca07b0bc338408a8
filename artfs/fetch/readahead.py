"""``ReadAhead``: how far ahead of one reader to fetch, learnt from its offsets.

After Mountpoint-S3's prefetcher: a reader that keeps reading where it left off
earns a window that doubles with each sequential read, up to ``max_chunks``;
any seek resets it to nothing, so a random reader fetches only the chunks it
reads. A read at offset 0 counts as sequential from the start, since most
readers of a fresh file go on from there.

The kernel's own read-ahead sends several requests at once, and they may be
served slightly out of order: a read within ``slack`` bytes of where the reader
left off keeps the window as it is (neither grows nor resets it), so such a
reader keeps its window while a random reader that happens to land near its
last read still earns none.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ReadAhead"]


@dataclass
class ReadAhead:
    max_chunks: int = 32
    slack: int = 8 << 20
    window: int = 0
    next_offset: int | None = None
    #: Chunks before this index were already asked for by an earlier read-ahead.
    asked_until: int = 0

    def after_read(self, offset: int, length: int) -> int:
        """Record a read and return how many chunks past it to fetch ahead."""
        end = offset + length
        if offset == self.next_offset or (offset == 0 and self.next_offset is None):
            self.window = min(max(self.window * 2, 1), self.max_chunks)
            self.next_offset = end
        elif self.next_offset is not None and abs(offset - self.next_offset) <= self.slack:
            self.next_offset = max(self.next_offset, end)
        else:
            self.window = 0
            self.next_offset = end
            self.asked_until = 0
        return self.window
