"""``SiblingPrefetch``: noticing a reader walk a tree of small files, and fetching ahead.

``ReadAhead`` does this for bytes within a file; this does it for files within a
version. Each open of a version's small file is told to that version's
``WalkAhead`` (``artfs.fetch.readahead`` decides whether it continues a walk and
how many files to fetch ahead); the files it asks for are found here, in the
version's manifest in path order (what ``find``, ``cp -r``, ``tar`` and
``rsync`` follow: a directory's entries in listing order, each subdirectory's
where it is listed), and fetched with the one being opened in one request
(``SmallBlobBatches``).

A version's files opened in no order (a shuffled ``DataLoader`` epoch) continue
no walk; once a reader has opened enough of them (``ScatterSweep``), the
directory they share is swept: its small files, in path order, a few batch
requests ahead at a time, topped up at each open, within a share of the cache.

Files fetched ahead that the kernel already holds (a listing with attributes
came first, as ``find`` and ``cp -r`` do) and that nobody has open have their
verified bytes handed to ``on_prefetched`` as they arrive: the fs layer puts
them in the kernel's page cache, so their first read never reaches the daemon.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cachetools import LRUCache

from artfs.fetch.batch import OnStored, SmallBlob, SmallBlobBatches
from artfs.fetch.readahead import ScatterSweep, WalkAhead, is_small
from artfs.vfs.catalog import Catalog
from artfs.vfs.manifest import ManifestIndex
from artfs.vfs.nodes import Node

__all__ = ["OnPrefetched", "SiblingPrefetch"]

VersionKey = tuple[str, int]  # artifact, version number
#: Given a file fetched ahead and its verified bytes (the whole file), from a worker thread.
OnPrefetched = Callable[[Node, memoryview], None]

#: Batch requests (of every kind) running at once, below which a sweep sends another.
SWEEP_REQUESTS = 3
#: Bytes a sweep asks for in one batch request (16 MiB was no faster here).
SWEEP_BATCH_BYTES = 4 << 20
#: The share of the cache one sweep may fill: the rest is for what readers hold.
SWEEP_SHARE = 0.5


@dataclass
class _Sweep:
    """A directory being fetched ahead of a reader that opens its files in no order."""

    positions: range  # the directory's files in the manifest
    cursor: int  # the next position to look at
    budget: int  # bytes it may still ask for


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
        self._scatters: LRUCache[VersionKey, ScatterSweep] = LRUCache(maxsize=64)
        self._sweeps: LRUCache[VersionKey, _Sweep] = LRUCache(maxsize=8)

    async def before_open(self, node: Node) -> None:
        """Called as ``node`` (a file of a committed version) is opened for reading."""
        if node.digest is None or node.uri is not None or not is_small(node.size):
            return
        manifest = await self.catalog.manifest(node.artifact, node.number)
        first = SmallBlob(node.digest, node.size)
        position = manifest.position(node.path)
        ahead: list[SmallBlob] = []
        on_stored = None
        key = (node.artifact, node.number)
        if position is not None:
            walks = self._walks.get(key)
            if walks is None:
                walks = self._walks[key] = WalkAhead(self.max_files)
            start, count = walks.after_open(position)
            if count:
                found, last = _small_files(manifest, start, count)
                walks.fetched_through(last)
                ahead = [blob for blob, _ in found]
                on_stored = self._handing_on(node, first, found)
            elif walks.started_walk:
                self._scattered(key, manifest, position, node.path)
        self.batches.send(first, ahead, on_stored)
        self._sweep(key, manifest, node, first)
        # Also when nothing new is asked for: the file may be in a batch on its way.
        await self.batches.arrival(first)

    def _scattered(
        self, key: VersionKey, manifest: ManifestIndex, position: int, path: str
    ) -> None:
        """An open that continued no walk: enough of them start a sweep of their directory."""
        scatter = self._scatters.get(key)
        if scatter is None:
            scatter = self._scatters[key] = ScatterSweep()
        directory = scatter.after_scattered_open(position, path)
        if directory is not None:
            files = manifest.subtree(directory)
            budget = int(self.batches.cache.max_bytes * SWEEP_SHARE)
            self._sweeps[key] = _Sweep(files, files.start, budget)

    def _sweep(
        self, key: VersionKey, manifest: ManifestIndex, opened: Node, first: SmallBlob
    ) -> None:
        """Top a sweep of this version up to ``SWEEP_REQUESTS`` batch requests running.

        ``first``, the file being opened, leads each request if it is wanted, so
        an open never waits behind the sweep for a file of its own.
        """
        sweep = self._sweeps.get(key)
        if sweep is None:
            return
        batches = self.batches
        while batches.running < SWEEP_REQUESTS and sweep.budget > 0:
            room = SWEEP_BATCH_BYTES - (first.size if batches.wanted(first) else 0)
            found, sweep.cursor = _wanted_files(manifest, sweep, batches.wanted, room)
            if not found:
                del self._sweeps[key]  # swept to its end
                return
            sweep.budget -= sum(blob.size for blob, _ in found)
            ahead = [blob for blob, _ in found]
            batches.send(first, ahead, self._handing_on(opened, first, found), SWEEP_BATCH_BYTES)

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


def _wanted_files(
    manifest: ManifestIndex, sweep: _Sweep, wanted: Callable[[SmallBlob], bool], room: int
) -> tuple[list[tuple[SmallBlob, str]], int]:
    """The next small files of ``sweep`` neither cached nor on their way, up to ``room``
    bytes (at least one), and the position after the last one taken."""
    found: list[tuple[SmallBlob, str]] = []
    seen: set[str] = set()
    total = 0
    position = sweep.cursor
    while position < sweep.positions.stop:
        entry = manifest.entry_at(position)
        if entry.digest and entry.uri is None and is_small(entry.size):
            blob = SmallBlob(entry.digest, entry.size)
            if blob.digest not in seen and wanted(blob):
                if found and total + blob.size > room:
                    break
                seen.add(blob.digest)
                found.append((blob, entry.path))
                total += blob.size
        position += 1
    return found, position
