"""``BlobReads``: open handles on committed blobs, and reads served from the chunk cache.

A read asks the fetcher for read-ahead (how much: each handle's ``ReadAhead``,
``artfs.fetch.readahead``; the first read of an ML file also starts the plan
its format announces, ``artfs.fetch.planned``), then copies its
bytes out of the cache at once if every chunk it covers is ready (verified and
held in memory, which read-ahead sees to): that fast path awaits nothing, so a
warm or streamed read costs a copy and no trip through the scheduler.
Otherwise it asks the fetcher for its chunks (fetched, or read from disk and
verified, in worker threads), waits for them within
``read_timeout`` and copies. A blob is pinned in the cache while a handle on it is open, so its
chunks are never evicted under a reader. Runs on the trio thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import trio

from artfs.cache.chunks import ChunkCache
from artfs.cache.layout import ChunkLayout
from artfs.errors import ArtfsError, Transient
from artfs.fetch.fetcher import ChunkFetcher
from artfs.fetch.planned import FormatPrefetch
from artfs.vfs.nodes import Node, OpenFile, TreeSettings
from artfs.vfs.trace import ReadTrace

__all__ = ["BlobReads"]

log = logging.getLogger("artfs.vfs")

#: Blobs up to this size are verified on the trio thread when first read here.
INLINE_CHECK_BYTES = 64 << 10


class BlobReads:
    def __init__(
        self,
        fetcher: ChunkFetcher,
        cache: ChunkCache,
        settings: TreeSettings,
        next_fh: Callable[[], int],
    ) -> None:
        self.fetcher = fetcher
        self.cache = cache
        self.settings = settings
        self._next_fh = next_fh
        #: Read-ahead windows grow in whole requests of this many chunks.
        self._group = fetcher.chunks_per_request
        self.handles: dict[int, OpenFile] = {}
        #: ``artfs mount --trace``: where the ranges readers ask for are recorded.
        self.trace: ReadTrace | None = None
        #: Files whose format announces what a loader reads get it fetched ahead.
        self.formats = FormatPrefetch(fetcher, cache)

    async def open(self, node: Node, digest: str, size: int) -> OpenFile:
        layout = await self.fetcher.layout(digest, size)
        handle = OpenFile(self._next_fh(), node, layout)
        self.handles[handle.fh] = handle
        self.cache.pin(layout.digest)
        return handle

    def release(self, fh: int) -> OpenFile | None:
        handle = self.handles.pop(fh, None)
        if handle is not None:
            self.cache.unpin(handle.layout.digest)
        return handle

    async def read(
        self, handle: OpenFile, offset: int, size: int
    ) -> bytes | bytearray | memoryview:
        layout = handle.layout
        if offset >= layout.size or size <= 0:
            return b""
        size = min(size, layout.size - offset)
        needed = layout.chunks_for(offset, size)
        if self.trace is not None:
            node = handle.node
            self.trace.record(
                node.artifact,
                f"v{node.number}",
                node.path,
                layout.digest,
                layout.size,
                offset,
                size,
            )
        self.formats.on_read(layout, needed)
        self._read_ahead(handle, needed, offset, size)
        # Fast path: every chunk verified and in memory already, so nothing to await.
        data = self._copy_ready(layout, needed, offset, size)
        if data is not None:
            return data
        if layout.size <= INLINE_CHECK_BYTES and self.cache.check(layout, 0):
            # A small file cached by an earlier process: hashing a few KiB here costs
            # less than the worker-thread round trip that spares the loop a big chunk.
            data = self._copy_ready(layout, needed, offset, size)
            if data is not None:
                return data
        with trio.move_on_after(self.settings.read_timeout):
            return await self._wait_and_copy(layout, needed, offset, size)
        log.error(
            "read of %s at %d timed out after %.1fs",
            handle.node.path,
            offset,
            self.settings.read_timeout,
        )
        raise Transient(f"read of {handle.node.path} timed out")

    def _read_ahead(self, handle: OpenFile, needed: range, offset: int, size: int) -> None:
        layout = handle.layout
        ahead = handle.readahead.chunks_after(
            offset, size, needed.stop, layout.chunk_count, self._group
        )
        if ahead:
            self.fetcher.prefetch(layout, ahead)

    def _copy_ready(
        self, layout: ChunkLayout, needed: range, offset: int, size: int
    ) -> bytes | bytearray | memoryview | None:
        """The bytes if every chunk is ready (verified, in memory); ``None`` otherwise."""
        chunk_size = layout.chunk_size
        if len(needed) == 1:
            index = needed.start
            return self.cache.read_ready(layout, index, offset - index * chunk_size, size)
        absent, on_disk = self.cache.pending(layout, needed)
        if absent or on_disk:
            # Copy nothing yet: reading a chunk's tail lets the cache drop it
            # from memory, and this read will come back for it.
            return None
        buffer = bytearray(size)
        view = memoryview(buffer)
        position = 0
        for index in needed:
            inner = max(offset - index * chunk_size, 0)
            want = min(layout.chunk_length(index) - inner, size - position)
            got = self.cache.read_ready_into(layout, index, inner, view[position : position + want])
            if got != want:
                return None
            position += got
        return buffer

    async def _wait_and_copy(
        self, layout: ChunkLayout, needed: range, offset: int, size: int
    ) -> bytes | bytearray | memoryview:
        for _attempt in range(3):
            await self.fetcher.ensure(layout, needed)
            data = self._copy_ready(layout, needed, offset, size)
            if data is not None and len(data) == size:
                return data
            # An external copy, a chunk pushed out of memory, evicted or found
            # corrupt since: the careful path (the cache verifies what it reads).
            data = await self._copy_careful(layout, needed, offset, size)
            if data is not None:
                return data
        raise ArtfsError(f"chunks of {layout.digest} cannot be kept in the cache")

    async def _copy_careful(
        self, layout: ChunkLayout, needed: range, offset: int, size: int
    ) -> bytearray | None:
        buffer = bytearray(size)
        view = memoryview(buffer)
        position = 0
        for index in needed:
            inner = max(offset - index * layout.chunk_size, 0)
            want = min(layout.chunk_length(index) - inner, size - position)
            got = self.cache.read(layout, index, inner, view[position : position + want])
            if got is None:
                return None
            position += got
        await trio.lowlevel.checkpoint()
        return buffer
