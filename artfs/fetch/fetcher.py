"""``ChunkFetcher``: makes chunks of a blob present in the cache, fetching each once.

Every missing chunk is fetched by a background task in the fetcher's own
nursery, not by the reader that asked for it. So:

* many readers of one chunk share one fetch (single flight: an in-flight table
  of ``_Flight`` records, each with an event and an error slot);
* a reader whose deadline passes gets ``Transient`` (EIO above) while the fetch
  goes on for the next reader — a cancelled reader never cancels shared work;
* read-ahead is just a fetch nobody waits for yet.

Contiguous missing chunks go out as one HTTP ``Range`` request of at most
``max_request_bytes``; each chunk is verified against the layout's sha256 as it
arrives, stored, and announced at once, so a reader waits for its own chunk,
not for the whole request. Requests run in worker threads (``requests`` is
blocking), at most ``max_parallel`` at a time. A failed request is retried with
backoff until ``fetch_timeout``; a chunk that fails verification is an error
at once (with a log line), never bytes handed out.

Concurrency: all bookkeeping (``_flights``) happens on the trio thread; worker
threads only download, verify and write chunk files, and report back with
``trio.from_thread.run_sync``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import requests
import trio
from cachetools import LRUCache

from artfs.cache.chunks import ChunkCache, ChunkLayout
from artfs.client.http import RegistryClient
from artfs.digests import CHUNK_SIZE
from artfs.errors import ArtfsError, Corrupt, Transient

__all__ = ["ChunkFetcher"]

log = logging.getLogger("artfs.fetch")

Key = tuple[str, int]


@dataclass
class _Flight:
    event: trio.Event = field(default_factory=trio.Event)
    error: ArtfsError | None = None


class ChunkFetcher:
    def __init__(
        self,
        client: RegistryClient,
        cache: ChunkCache,
        nursery: trio.Nursery,
        *,
        max_parallel: int = 16,
        max_request_bytes: int = 8 << 20,
        fetch_timeout: float = 60.0,
    ) -> None:
        self.client = client
        self.cache = cache
        self._nursery = nursery
        self._limiter = trio.CapacityLimiter(max_parallel)
        self._max_request_bytes = max_request_bytes
        self._fetch_timeout = fetch_timeout
        self._flights: dict[Key, _Flight] = {}
        self._layouts: LRUCache[str, ChunkLayout] = LRUCache(maxsize=4096)
        self._layout_flights: dict[str, _Flight] = {}
        #: Bytes and requests sent to the network, for tests and the benchmark.
        self.bytes_fetched = 0
        self.requests_made = 0

    # -- layouts ----------------------------------------------------------------

    @property
    def chunks_per_request(self) -> int:
        return max(1, self._max_request_bytes // CHUNK_SIZE)

    async def layout(self, digest: str, size: int | None = None) -> ChunkLayout:
        """The chunk digests of a blob: from memory, the disk cache, or the registry.

        A blob of at most one chunk needs no lookup at all (``ChunkLayout.implied``).
        """
        if size is not None and (implied := ChunkLayout.implied(digest, size)) is not None:
            self.cache.load_external(digest)
            return implied
        while (cached := self._layouts.get(digest)) is None:
            flight = self._layout_flights.get(digest)
            if flight is None:
                return await self._load_layout(digest)
            await flight.event.wait()
            if flight.error is not None:
                raise flight.error
        return cached

    async def _load_layout(self, digest: str) -> ChunkLayout:
        flight = self._layout_flights[digest] = _Flight()
        try:
            layout = self.cache.layout(digest)
            if layout is None:
                layout = await trio.to_thread.run_sync(
                    self._fetch_layout, digest, limiter=self._limiter
                )
                self.cache.store_layout(layout)
            self._layouts[digest] = layout
        except ArtfsError as exc:
            flight.error = exc
            raise
        finally:
            del self._layout_flights[digest]
            flight.event.set()
        return layout

    def _fetch_layout(self, digest: str) -> ChunkLayout:
        answer = self.client.blob_chunks(digest)
        return ChunkLayout(
            digest=digest,
            size=int(answer["size"]),
            chunk_size=int(answer["chunk_size"]),
            chunk_digests=bytes.fromhex(answer["chunk_digests"]),
        )

    # -- chunks -----------------------------------------------------------------

    def prefetch(self, layout: ChunkLayout, indexes: range) -> None:
        """Start fetching whichever of ``indexes`` are neither cached nor in flight."""
        indexes = range(max(indexes.start, 0), min(indexes.stop, layout.chunk_count))
        todo = [
            i
            for i in self.cache.missing(layout, indexes)
            if (layout.digest, i) not in self._flights
        ]
        per_request = max(1, self._max_request_bytes // layout.chunk_size)
        for run in _runs(todo, per_request):
            owned = {i: _Flight() for i in run}
            for i, flight in owned.items():
                self._flights[(layout.digest, i)] = flight
            self._nursery.start_soon(self._fetch_run, layout, owned)

    async def ensure(self, layout: ChunkLayout, indexes: range) -> None:
        """Return once every chunk of ``indexes`` is in the cache; raise if one cannot be."""
        for _attempt in range(3):
            self.prefetch(layout, indexes)
            for i in indexes:
                flight = self._flights.get((layout.digest, i))
                if flight is not None:
                    await flight.event.wait()
                    if flight.error is not None:
                        raise flight.error
            if not self.cache.missing(layout, indexes):
                return
            # Evicted between arrival and now (a tiny cache under pressure): fetch again.
        raise Transient(f"chunks of blob {layout.digest} keep vanishing from the cache")

    async def _fetch_run(self, layout: ChunkLayout, owned: dict[int, _Flight]) -> None:
        deadline = trio.current_time() + self._fetch_timeout
        delay = 0.1
        try:
            while owned:
                try:
                    await trio.to_thread.run_sync(
                        self._download_run, layout, owned, limiter=self._limiter
                    )
                except Transient as exc:
                    if trio.current_time() + delay > deadline:
                        self._fail(layout, owned, exc)
                        return
                    log.info("retrying chunks of %s in %.1fs: %s", layout.digest[:12], delay, exc)
                    await trio.sleep(delay)
                    delay = min(delay * 2, 2.0)
                except ArtfsError as exc:
                    self._fail(layout, owned, exc)
                    return
        finally:
            # Whatever happened, nobody may wait forever on these chunks.
            self._fail(layout, owned, Transient(f"fetch of blob {layout.digest} was abandoned"))

    def _settle(self, layout: ChunkLayout, index: int, flight: _Flight) -> None:
        # Only the run that created a flight settles it: a newer flight for the
        # same chunk (after an eviction) belongs to another run.
        if self._flights.get((layout.digest, index)) is flight:
            del self._flights[(layout.digest, index)]
        flight.event.set()

    def _fail(self, layout: ChunkLayout, owned: dict[int, _Flight], error: ArtfsError) -> None:
        for index, flight in list(owned.items()):
            flight.error = error
            self._settle(layout, index, flight)
        owned.clear()

    def _arrived(self, layout: ChunkLayout, owned: dict[int, _Flight], index: int) -> None:
        self.bytes_fetched += layout.chunk_length(index)
        flight = owned.pop(index, None)
        if flight is not None:
            self._settle(layout, index, flight)

    def _count_request(self) -> None:
        self.requests_made += 1

    def _download_run(self, layout: ChunkLayout, owned: dict[int, _Flight]) -> None:
        """Worker thread: one ranged GET for the chunks still owed, each verified and stored."""
        run = sorted(owned)
        start = run[0] * layout.chunk_size
        end = min((run[-1] + 1) * layout.chunk_size, layout.size)
        trio.from_thread.run_sync(self._count_request)
        try:
            with self.client.open_blob(layout.digest, start, end) as response:
                for index in range(run[0], run[-1] + 1):
                    buffer = _read_exactly(response.raw, layout.chunk_length(index))
                    if buffer is None:
                        raise Transient(f"blob {layout.digest} ended early at chunk {index}")
                    if not layout.verify(index, buffer):
                        log.error(
                            "chunk %d of blob %s failed verification; refusing its bytes",
                            index,
                            layout.digest,
                        )
                        raise Corrupt(f"chunk {index} of blob {layout.digest} is corrupt")
                    self.cache.store(layout, index, buffer)
                    trio.from_thread.run_sync(self._arrived, layout, owned, index)
        except (requests.RequestException, OSError) as exc:
            raise Transient(f"fetch of blob {layout.digest} failed: {exc}") from exc


def _read_exactly(raw: Any, length: int) -> bytearray | None:
    buffer = bytearray(length)
    view = memoryview(buffer)
    got = 0
    while got < length:
        n = raw.readinto(view[got:])
        if not n:
            return None
        got += n
    return buffer


def _runs(indexes: list[int], longest: int) -> list[list[int]]:
    """Split sorted indexes into runs of consecutive numbers, each at most ``longest``."""
    runs: list[list[int]] = []
    for i in indexes:
        if runs and runs[-1][-1] == i - 1 and len(runs[-1]) < longest:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs
