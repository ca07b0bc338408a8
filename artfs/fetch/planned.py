"""``FormatPrefetch``: on a file's first read, fetch what its format says a loader will read.

A loader of a safetensors, GGUF, ``.npy``, PyTorch zip, Parquet or Arrow file
reads its header or footer and then jumps straight to the bytes it wants;
through ``mmap`` it does so in small page faults scattered over the file,
each of which would earn no read-ahead (``ReadAhead`` resets on a seek). So
on the first read of such a file this reads its header through the cache,
asks the format's planner (``artfs.fetch.formats``) for the ranges the loader
will read, and fetches their chunks in that order, in runs of whole requests,
a few requests at once: the plan, not the faults, decides the request size
(docs/design.md, "Prefetch that knows ML files").

Bounds: at most ``share`` of the cache's size per file, so a plan never
pushes out more than that; and the blob being read is pinned while a handle
is open, so nothing a reader holds is evicted for it. A failed fetch ends the
plan quietly: the reader's own read asks again and reports its own error.
"""

from __future__ import annotations

import logging

import trio
from cachetools import LRUCache

from artfs.cache.chunks import ChunkCache
from artfs.cache.layout import ChunkLayout
from artfs.errors import ArtfsError
from artfs.fetch.fetcher import ChunkFetcher
from artfs.fetch.formats import MAX_HEADER, Missing, plan_for
from artfs.fetch.formats.base import NoPlan

__all__ = ["FormatPrefetch"]

log = logging.getLogger("artfs.fetch")

#: Requests of one plan in flight at once; the fetcher's limiter bounds them all.
LANES = 8
#: Rounds of "the planner needs more bytes" before a header counts as hostile.
MAX_ROUNDS = 12


class FormatPrefetch:
    def __init__(self, fetcher: ChunkFetcher, cache: ChunkCache, *, share: float = 0.25) -> None:
        self.fetcher = fetcher
        self.cache = cache
        self.share = share
        #: Blobs planned already (or being planned): a second reader finds their chunks.
        self._planned: LRUCache[str, bool] = LRUCache(maxsize=4096)
        #: Plans being fetched: each planned chunk's run, by blob.
        self._active: dict[str, dict[int, range]] = {}
        #: Plans begun by reads, plans carried out, and chunks they asked for: for tests
        #: and the benchmark.
        self.plans_started = 0
        self.plans_made = 0
        self.chunks_planned = 0

    def on_read(self, layout: ChunkLayout, needed: range) -> None:
        """A read of ``needed`` chunks: plan the blob on its first read of its first or
        last chunk, if it is big enough.

        A read that gets ahead of a plan being carried out starts the planned
        run its chunks lie in at once, so it too comes as a whole request
        rather than a one-chunk request and the rest of its run later.
        """
        runs = self._active.get(layout.digest)
        if runs is not None:
            for index in (needed.start, needed.stop - 1):
                run = runs.get(index)
                if run is not None:
                    self.fetcher.prefetch(layout, run)
            return
        if layout.chunk_count < 3 or layout.digest in self._planned:
            return  # a file of two chunks: ordinary read-ahead fetches it in one request
        if needed.start != 0 and needed.stop != layout.chunk_count:
            # A loader reads a header (at the start) or a footer (Parquet, a zip's
            # directory, at the end) first: a read anywhere else is a random reader's,
            # which must not pay for the head chunk the sniff reads.
            return
        self._planned[layout.digest] = True
        self.plans_started += 1
        self.fetcher.start_soon(self.carry_out, layout)

    async def carry_out(self, layout: ChunkLayout) -> None:
        """Plan ``layout``'s blob and fetch the plan; errors end it quietly (see above)."""
        try:
            order = await self._plan(layout)
            if order:
                self.plans_made += 1
                self.chunks_planned += len(order)
                await self._fetch_in_order(layout, order)
        except ArtfsError as exc:
            log.info("prefetch plan of %s stopped: %s", layout.digest[:12], exc)
        except Exception:
            # Best effort in the fetcher's nursery: a bug here must not take the
            # mount down with it; the reader's own read goes on regardless.
            log.exception("prefetch plan of %s failed", layout.digest[:12])

    async def _plan(self, layout: ChunkLayout) -> list[int]:
        """The chunks the plan touches, each once, in the order the loader reads them."""
        chunks: dict[int, bytes] = {}
        # A lying header costs at most this many chunks, within the cache's share too.
        most = min(MAX_HEADER, int(self.cache.max_bytes * self.share)) // layout.chunk_size + 2
        for _round in range(MAX_ROUNDS):
            try:
                # In a worker thread: a GGUF header of a large vocabulary is many
                # thousand small reads, and a JSON header may be megabytes.
                ranges = await trio.to_thread.run_sync(
                    plan_for, layout.size, lambda o, n: _read(layout, chunks, o, n)
                )
            except Missing as missing:
                wanted = layout.chunks_for(missing.offset, missing.length)
                # Doubling what was read: a long header takes a few rounds, not one per chunk.
                wanted = range(
                    wanted.start,
                    min(max(wanted.stop, wanted.start + len(chunks)), layout.chunk_count),
                )
                if len(chunks) + len(wanted) > most:
                    return []
                await self.fetcher.ensure(layout, wanted)
                for index in wanted:
                    chunks[index] = self._chunk(layout, index)
                continue
            if ranges is None:
                return []
            budget = max(1, int(self.cache.max_bytes * self.share) // layout.chunk_size)
            # Chunks ready already (the header's, a reader's) are left out, so that
            # the runs around them are whole requests.
            absent, on_disk = self.cache.pending(layout, range(layout.chunk_count))
            todo = {*absent, *on_disk}
            order = dict.fromkeys(
                index
                for r in ranges
                for index in layout.chunks_for(r.start, r.end - r.start)
                if index in todo
            )
            log.debug("prefetch plan of %s: %d ranges", layout.digest[:12], len(ranges))
            return list(order)[:budget]
        return []

    def _chunk(self, layout: ChunkLayout, index: int) -> bytes:
        buffer = bytearray(layout.chunk_length(index))
        if self.cache.read(layout, index, 0, memoryview(buffer)) != len(buffer):
            raise ArtfsError(f"chunk {index} of {layout.digest} left the cache while planning")
        return bytes(buffer)

    async def _fetch_in_order(self, layout: ChunkLayout, order: list[int]) -> None:
        """Fetch ``order`` in runs of whole requests, ``LANES`` at a time, front first.

        Runs are handed out one by one as lanes free up, so the front of the
        plan is fetched first whatever order trio starts tasks in.
        """
        planned = _runs_in_order(order, self.fetcher.chunks_per_request)
        runs = iter(planned)

        async def lane() -> None:
            try:
                for run in runs:
                    await self.fetcher.ensure(layout, run)
            except ArtfsError as exc:
                log.info("prefetch plan of %s stopped: %s", layout.digest[:12], exc)
                nursery.cancel_scope.cancel()

        self._active[layout.digest] = {index: run for run in planned for index in run}
        try:
            async with trio.open_nursery() as nursery:
                for _ in range(LANES):
                    nursery.start_soon(lane)
        finally:
            del self._active[layout.digest]


def _read(layout: ChunkLayout, chunks: dict[int, bytes], offset: int, length: int) -> bytes:
    """``length`` bytes at ``offset`` from the chunks fetched so far, or ``Missing``."""
    if offset < 0 or length < 0 or offset + length > layout.size:
        raise NoPlan(f"{length} bytes at {offset} lie past the file")
    wanted = layout.chunks_for(offset, length) if length else range(0)
    if any(index not in chunks for index in wanted):
        raise Missing(offset, length)
    # Only the bytes asked for are copied: a header is read a few bytes at a time.
    parts = []
    for index in wanted:
        inner = max(offset - index * layout.chunk_size, 0)
        end = min(offset + length - index * layout.chunk_size, layout.chunk_length(index))
        parts.append(chunks[index][inner:end])
    return b"".join(parts)


def _runs_in_order(order: list[int], longest: int) -> list[range]:
    """Consecutive stretches of ``order`` (kept in its order), each at most ``longest`` chunks."""
    runs: list[range] = []
    for index in order:
        last = runs[-1] if runs else None
        if last is not None and last.stop == index and len(last) < longest:
            runs[-1] = range(last.start, index + 1)
        else:
            runs.append(range(index, index + 1))
    return runs
