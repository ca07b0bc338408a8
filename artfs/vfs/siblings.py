"""``SiblingPrefetch``: noticing a reader walk a directory of small files, and fetching ahead.

``ReadAhead`` does this for bytes within a file; this does it for files within a
directory. Opening a directory's files one after another in listing order (what
``find | xargs cat``, ``cp -r``, ``tar`` and ``rsync`` do) earns a window of the
following small files, fetched with the one being opened in one request
(``SmallBlobBatches``). The window doubles with each batch up to ``max_files``
and is topped up once half of it has been read. Opening any other file resets
it, so a reader that opens files at random fetches only what it opens. A walk
that moves on to the first file of another directory keeps its window.

Files fetched ahead whose inodes the kernel already holds (a listing with
attributes came first, as ``find`` and ``cp -r`` do) and that nobody has open
have their verified bytes handed to the kernel's page cache as they arrive, so
their first read never reaches the daemon (10,000 ``READ`` requests of a
``find | xargs cat`` walk become 2).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass

from cachetools import LRUCache

from artfs.fetch.batch import SmallBlob, SmallBlobBatches
from artfs.vfs.catalog import Catalog
from artfs.vfs.manifest import ManifestIndex
from artfs.vfs.nodes import Node

__all__ = ["SiblingPrefetch"]

DirKey = tuple[str, int, str]  # artifact, version number, directory path


@dataclass
class _Walk:
    last: int  # listing position of the file opened last
    fetched_to: int  # last listing position fetched ahead
    window: int


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
        self._walks: LRUCache[DirKey, _Walk] = LRUCache(maxsize=256)
        self._momentum = 0  # the window of the walk that moved last

    async def before_open(self, node: Node) -> None:
        """Called as ``node`` (a file of a committed version) is opened for reading."""
        if node.digest is None or node.uri is not None or not self.batches.is_small(node.size):
            return
        manifest = await self.catalog.manifest(node.artifact, node.number)
        parent, _, name = node.path.rpartition("/")
        children = manifest.children(parent)
        position = bisect_left(children, (name,))
        key = (node.artifact, node.number, parent)
        walk = self._walks.get(key)
        if walk is not None and walk.last < position <= walk.fetched_to + 1:
            window = walk.window
        elif walk is None and position == _first_file(children):
            window = self._momentum  # a walk moving on to the next directory
        else:
            window = 0  # a seek: fetch only what is opened
        fetched_to = max(walk.fetched_to if walk is not None else position, position)
        first = SmallBlob(node.digest, node.size)
        ahead: list[SmallBlob] = []
        if window and fetched_to - position < window // 2 + 1:
            window = min(max(window * 2, 2), self.max_files)
            found, fetched_to = _small_files(manifest, parent, children, fetched_to + 1, window)
            ahead = [self._with_inode(node, blob, path) for blob, path in found]
        elif walk is None or not window:
            window = 1  # the next open in listing order starts the walk
        self._walks[key] = _Walk(position, fetched_to, window)
        self._momentum = window
        # Also when nothing new is asked for: the file may be in a batch on its way.
        await self.batches.fetch(first, ahead)

    def _with_inode(self, opened: Node, blob: SmallBlob, path: str) -> SmallBlob:
        inode = self.known_inode(opened.artifact, opened.number, path)
        return blob if inode is None else SmallBlob(blob.digest, blob.size, (inode,))


def _first_file(children: list[tuple[str, bool]]) -> int:
    return next((i for i, (_, is_dir) in enumerate(children) if not is_dir), -1)


def _small_files(
    manifest: ManifestIndex,
    parent: str,
    children: list[tuple[str, bool]],
    start: int,
    count: int,
) -> tuple[list[tuple[SmallBlob, str]], int]:
    """Up to ``count`` small files (and their paths) from listing position ``start``, and the
    last position seen."""
    found: list[tuple[SmallBlob, str]] = []
    position = start - 1
    for position in range(start, len(children)):
        name, is_dir = children[position]
        if is_dir:
            continue
        path = manifest.child_path(parent, name)
        entry = manifest.file(path)
        if (
            entry is not None
            and entry.digest
            and entry.uri is None
            and SmallBlobBatches.is_small(entry.size)
        ):
            found.append((SmallBlob(entry.digest, entry.size), path))
        if len(found) >= count:
            break
    return found, position
