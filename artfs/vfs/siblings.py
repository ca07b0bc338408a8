"""``SiblingPrefetch``: noticing a reader walk a tree of small files, and fetching ahead.

``ReadAhead`` does this for bytes within a file; this does it for files within a
version. Each open of a version's small file is told to that version's
``WalkAhead`` (``artfs.fetch.readahead`` decides whether it continues a walk and
how many files to fetch ahead); the files it asks for are found here, in the
version's manifest in path order (what ``find``, ``cp -r``, ``tar`` and
``rsync`` follow: a directory's entries in listing order, each subdirectory's
where it is listed), and fetched with the one being opened in one request
(``SmallBlobBatches``).

Files fetched ahead that the kernel already holds (a listing with attributes
came first, as ``find`` and ``cp -r`` do) and that nobody has open have their
verified bytes handed to ``on_prefetched`` as they arrive: the fs layer puts
them in the kernel's page cache, so their first read never reaches the daemon.
"""

from __future__ import annotations

from collections.abc import Callable

from cachetools import LRUCache

from artfs.fetch.batch import OnStored, SmallBlob, SmallBlobBatches
from artfs.fetch.readahead import WalkAhead, is_small
from artfs.vfs.catalog import Catalog
from artfs.vfs.manifest import ManifestIndex
from artfs.vfs.nodes import Node

__all__ = ["OnPrefetched", "SiblingPrefetch"]

VersionKey = tuple[str, int]  # artifact, version number
#: Given a file fetched ahead and its verified bytes (the whole file), from a worker thread.
OnPrefetched = Callable[[Node, memoryview], None]


class SiblingPrefetch:
    def __init__(
        self,
        catalog: Catalog,
        batches: SmallBlobBatches,
        idle_file: Callable[[str, int, str], Node | None],
        on_prefetched: OnPrefetched | None = None,
        max_files: int = 256,
    ) -> None:
        self.catalog = catalog
        self.batches = batches
        #: (artifact, version number, path) -> the file's node if the kernel holds it
        #: and nobody has it open; such files get their bytes handed to ``on_prefetched``.
        self.idle_file = idle_file
        self.on_prefetched = on_prefetched
        self.max_files = max_files
        self._walks: LRUCache[VersionKey, WalkAhead] = LRUCache(maxsize=64)

    async def before_open(self, node: Node) -> None:
        """Called as ``node`` (a file of a committed version) is opened for reading."""
        if node.digest is None or node.uri is not None or not is_small(node.size):
            return
        manifest = await self.catalog.manifest(node.artifact, node.number)
        first = SmallBlob(node.digest, node.size)
        position = manifest.position(node.path)
        ahead: list[SmallBlob] = []
        on_stored = None
        if position is not None:
            key = (node.artifact, node.number)
            walks = self._walks.get(key)
            if walks is None:
                walks = self._walks[key] = WalkAhead(self.max_files)
            start, count = walks.after_open(position)
            if count:
                found, last = _small_files(manifest, start, count)
                walks.fetched_through(last)
                ahead = [blob for blob, _ in found]
                on_stored = self._handing_on(node, first, found)
        # Also when nothing new is asked for: the file may be in a batch on its way.
        await self.batches.fetch(first, ahead, on_stored)

    def _handing_on(
        self, opened: Node, first: SmallBlob, found: list[tuple[SmallBlob, str]]
    ) -> OnStored | None:
        """What hands the bytes of the idle files among ``found`` to ``on_prefetched``."""
        on_prefetched = self.on_prefetched
        if on_prefetched is None:
            return None
        # A batch carries each digest once, for the first file that has it: that
        # file alone is handed the bytes.
        seen = {first.digest}
        idle: dict[str, Node] = {}
        for blob, path in found:
            if blob.digest in seen:
                continue
            seen.add(blob.digest)
            file = self.idle_file(opened.artifact, opened.number, path)
            if file is not None:
                idle[blob.digest] = file
        if not idle:
            return None

        def on_stored(digest: str, data: memoryview) -> None:
            # A worker thread: ``idle`` is only read from here on.
            file = idle.get(digest)
            if file is not None:
                on_prefetched(file, data)

        return on_stored


def _small_files(
    manifest: ManifestIndex, start: int, count: int
) -> tuple[list[tuple[SmallBlob, str]], int]:
    """Up to ``count`` small files (and their paths) from manifest position ``start`` on,
    and the last position seen."""
    found: list[tuple[SmallBlob, str]] = []
    position = start - 1
    for position in range(start, len(manifest)):
        entry = manifest.entry_at(position)
        if entry.digest and entry.uri is None and is_small(entry.size):
            found.append((SmallBlob(entry.digest, entry.size), entry.path))
            if len(found) >= count:
                break
    return found, position
