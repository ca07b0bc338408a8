"""``SiblingPrefetch``: noticing a reader walk a tree of small files, and fetching ahead.

``ReadAhead`` does this for bytes within a file; this does it for files within a
version. Each open of a version's small file is told to that version's
``WalkAhead`` (``artfs.fetch.readahead`` decides whether it continues a walk and
how many files to fetch ahead); the files it asks for are found here, in the
version's manifest in path order (what ``find``, ``cp -r``, ``tar`` and
``rsync`` follow: a directory's entries in listing order, each subdirectory's
where it is listed), and fetched with the one being opened in one request
(``SmallBlobBatches``).

Files fetched ahead whose inodes the kernel already holds (a listing with
attributes came first, as ``find`` and ``cp -r`` do) and that nobody has open
have their verified bytes handed to the kernel's page cache as they arrive, so
their first read never reaches the daemon.
"""

from __future__ import annotations

from collections.abc import Callable

from cachetools import LRUCache

from artfs.fetch.batch import SmallBlob, SmallBlobBatches
from artfs.fetch.readahead import WalkAhead, is_small
from artfs.vfs.catalog import Catalog
from artfs.vfs.manifest import ManifestIndex
from artfs.vfs.nodes import Node

__all__ = ["SiblingPrefetch"]

VersionKey = tuple[str, int]  # artifact, version number


class SiblingPrefetch:
    def __init__(
        self,
        catalog: Catalog,
        batches: SmallBlobBatches,
        known_inode: Callable[[str, int, str], int | None],
        max_files: int = 256,
    ) -> None:
        self.catalog = catalog
        self.batches = batches
        #: (artifact, version number, path) -> the file's inode if the kernel holds it
        #: and nobody has it open; such files get their bytes pushed to the kernel.
        self.known_inode = known_inode
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
        if position is not None:
            key = (node.artifact, node.number)
            walks = self._walks.get(key)
            if walks is None:
                walks = self._walks[key] = WalkAhead(self.max_files)
            start, count = walks.after_open(position)
            if count:
                found, last = _small_files(manifest, start, count)
                walks.fetched_through(last)
                ahead = [self._with_inode(node, blob, path) for blob, path in found]
        # Also when nothing new is asked for: the file may be in a batch on its way.
        await self.batches.fetch(first, ahead)

    def _with_inode(self, opened: Node, blob: SmallBlob, path: str) -> SmallBlob:
        inode = self.known_inode(opened.artifact, opened.number, path)
        return blob if inode is None else SmallBlob(blob.digest, blob.size, (inode,))


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
