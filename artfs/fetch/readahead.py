"""Read-ahead policy: what to fetch before anyone asks for it. Pure decisions, no I/O.

Two readers earn read-ahead (docs/design.md, "A read, traced" and "Small
files: walks and the page cache"):

* ``ReadAhead``, bytes within a file. After Mountpoint-S3's prefetcher: a
  reader that keeps reading where it left off earns a window that doubles with
  each sequential read, up to ``max_chunks``; any seek resets it to nothing, so
  a random reader fetches only the chunks it reads. A read at offset 0 counts
  as sequential from the start, since most readers of a fresh file go on from
  there. The kernel's own read-ahead sends several requests at once, and they
  may be served slightly out of order: a read within ``slack`` bytes of where
  the reader left off keeps the window as it is (neither grows nor resets it),
  so such a reader keeps its window while a random reader that happens to land
  near its last read still earns none.

* ``WalkAhead``, files within a version. Opening its files one after another
  in path order (what ``find | xargs cat``, ``cp -r``, ``tar`` and ``rsync``
  do) earns a window of the following small files, fetched with the one being
  opened in one request (``batch_to_send``). The window doubles with each
  batch up to ``max_files`` and is topped up once half of it has been read. It
  runs on across directories, so a walk entering the next directory finds its
  files fetched already (waiting for a fresh batch at each directory cost a
  round trip per directory). Any other open starts a new walk, so a reader that
  opens files at random fetches only what it opens; a few walks are followed
  at once (parallel copies of several directories).

* ``ScatterSweep``, files within a directory opened in no order (a
  ``DataLoader`` epoch, shuffled). No walk predicts the next open, but a
  reader that has opened ``min_opens`` different files of a directory in no
  order is reading the directory: from then on the directory the scattered
  opens share is fetched whole, in path order, a few batch requests ahead
  of the reader at a time (``artfs.vfs.siblings``), so its opens find their
  files fetched instead of each waiting for a round trip of its own.

The fetch layer carries these decisions out (``ChunkFetcher.prefetch``,
``SmallBlobBatches``); ``artfs.vfs`` feeds them what readers do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from artfs.digests import CHUNK_SIZE

__all__ = [
    "MAX_BATCH_BYTES",
    "ReadAhead",
    "ScatterSweep",
    "WalkAhead",
    "batch_to_send",
    "is_small",
]

#: Bytes of small blobs asked for in one batch request at most.
MAX_BATCH_BYTES = 4 << 20
#: Walks followed at once in one version; the one used longest ago makes room.
WALKS_PER_VERSION = 8

_NOTHING = range(0)


def is_small(size: int) -> bool:
    """A blob of one chunk at most: fetched whole, and worth fetching in batches."""
    return 0 < size <= CHUNK_SIZE


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

    def chunks_after(
        self, offset: int, length: int, stop: int, chunk_count: int, group: int
    ) -> range:
        """Record a read whose chunks end before ``stop``; return the chunks to fetch ahead now.

        A window of more than one chunk is rounded up to whole groups of
        ``group`` chunks (one request's worth): one ranged GET of several chunks
        costs the server far less than one per chunk. Chunks an earlier call
        already returned are not returned again, since they are in flight or
        ready; the reader's own chunks are the reader's business.
        """
        ahead = self.after_read(offset, length)
        if not ahead:
            return _NOTHING
        end = stop + ahead
        if ahead > 1:
            end = -(-end // group) * group
        end = min(end, chunk_count)
        start = max(stop, self.asked_until)
        if start >= end:
            return _NOTHING
        self.asked_until = end
        return range(start, end)


@dataclass
class _Walk:
    last: int  # position of the file opened last
    fetched_to: int  # last position fetched ahead (or looked at for files to fetch)
    window: int


@dataclass
class WalkAhead:
    """The walks through one version's files, by their positions in its path order."""

    max_files: int = 256
    max_walks: int = WALKS_PER_VERSION
    _walks: list[_Walk] = field(default_factory=list)  # the most recently used last

    #: Whether the latest open started a walk of its own (continued none).
    started_walk: bool = False

    def after_open(self, position: int) -> tuple[int, int]:
        """Record an open of the file at ``position``; return where to look for files to
        fetch ahead and how many small files to take from there (0: none now).

        Whoever takes them calls ``fetched_through`` with the last position it looked at.
        """
        walk = self._follow(position)
        self.started_walk = walk.window == 0
        if walk.window and walk.fetched_to - position < walk.window // 2 + 1:
            walk.window = min(walk.window * 2, self.max_files)
            return walk.fetched_to + 1, walk.window
        return walk.fetched_to + 1, 0

    def fetched_through(self, position: int) -> None:
        """The files fetched ahead for the latest open reach to ``position``."""
        self._walks[-1].fetched_to = position

    def _follow(self, position: int) -> _Walk:
        """The walk an open at ``position`` continues, else a new one (a seek, or a walk's start).

        A new walk fetches nothing ahead (window 0): only the next open in
        order makes it a walk, so random opens fetch only what they open.
        """
        walks = self._walks
        walk = next((w for w in walks if w.last < position <= w.fetched_to + 1), None)
        if walk is None:
            walk = _Walk(last=position, fetched_to=position, window=0)
            if len(walks) >= self.max_walks:
                del walks[0]
        else:
            walks.remove(walk)
            walk.last = position
            walk.fetched_to = max(walk.fetched_to, position)
            walk.window = max(walk.window, 1)
        walks.append(walk)
        return walk


@dataclass
class ScatterSweep:
    """The opens of one version's files that continued no walk, and the directory they share."""

    min_opens: int = 32
    #: The directory (a path in the version, "" for its root) the scattered opens share.
    directory: str | None = None
    _opened: set[int] = field(default_factory=set)
    started: bool = False

    def after_scattered_open(self, position: int, path: str) -> str | None:
        """Record an open of the file at ``position`` (``path``) that started a walk of its
        own; return the directory to sweep, once, when ``min_opens`` different files were
        opened so."""
        if self.started:
            return None
        parent = path.rpartition("/")[0]
        self.directory = (
            parent if self.directory is None else common_directory(self.directory, parent)
        )
        self._opened.add(position)
        if len(self._opened) < self.min_opens:
            return None
        self.started = True
        self._opened.clear()
        return self.directory


def common_directory(a: str, b: str) -> str:
    """The deepest directory both paths (directories, "" the root) lie in."""
    shared: list[str] = []
    for x, y in zip(a.split("/"), b.split("/"), strict=False):
        if x != y:
            break
        shared.append(x)
    return "/".join(shared)


class _Blob(Protocol):
    @property
    def digest(self) -> str: ...

    @property
    def size(self) -> int: ...


B = TypeVar("B", bound=_Blob)


def batch_to_send(
    first: B,
    ahead: Iterable[B],
    wanted: Callable[[B], bool],
    max_bytes: int = MAX_BATCH_BYTES,
) -> list[B]:
    """The blobs to ask for in one batch with ``first`` being opened; empty: no batch.

    Each digest once and only if ``wanted`` (neither cached nor on its way), in
    order, up to ``max_bytes``. A batch of ``first`` alone is no batch: the
    read path fetches a lone file itself.
    """
    batch: list[B] = []
    seen: set[str] = set()
    total = 0
    for blob in (first, *ahead):
        if blob.digest in seen or not wanted(blob):
            continue
        if batch and total + blob.size > max_bytes:
            break
        seen.add(blob.digest)
        batch.append(blob)
        total += blob.size
    if len(batch) > 1 or (batch and batch[0] is not first):
        return batch
    return []
