"""``SmallBlobBatches``: small blobs fetched many per request, best effort.

A reader walking a directory of small files (``find | xargs cat``, ``cp -r``,
``tar``) would otherwise wait for one HTTP round trip per file. When the mount
sees such a walk it asks for the file being opened together with the next ones
in one batch request (which ones: ``artfs.fetch.readahead``); this module
sends that request to its ``BlobSource`` in a worker thread, verifies each blob
against its digest and keeps it in the chunk cache, where the ordinary read
path then finds it.

Best effort by design: a batch that fails or is late is logged and dropped, and
the files it carried are fetched one by one by ``ChunkFetcher``, which owns the
retry, deadline and ``EIO`` rules. A blob whose bytes do not match its digest
is never stored. Concurrent openers of a blob already in a batch wait for that
batch instead of asking again (``SingleFlight``).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio

from artfs.cache.chunks import ChunkCache
from artfs.cache.layout import ChunkLayout
from artfs.errors import ArtfsError
from artfs.fetch.readahead import MAX_BATCH_BYTES, batch_to_send
from artfs.fetch.singleflight import Flight, SingleFlight

if TYPE_CHECKING:
    from artfs.fetch.sources import BlobSource

__all__ = ["SmallBlob", "SmallBlobBatches"]

#: Blobs stored together (one pack) and announced to the loop at once.
KEEP_EVERY = 32

log = logging.getLogger("artfs.fetch")

#: Told (digest, bytes) of each blob of a batch once it is verified and in the cache,
#: from the worker thread that fetched it.
OnStored = Callable[[str, memoryview], None]
_Flights = dict[str, Flight[None]]


@dataclass(frozen=True, slots=True)
class SmallBlob:
    digest: str
    size: int

    @property
    def layout(self) -> ChunkLayout:
        layout = ChunkLayout.implied(self.digest, self.size)
        if layout is None:
            raise ValueError(f"blob {self.digest} of {self.size} bytes is not small")
        return layout


class SmallBlobBatches:
    def __init__(
        self,
        source: BlobSource,
        cache: ChunkCache,
        *,
        max_bytes: int = MAX_BATCH_BYTES,
        timeout: float = 10.0,
    ) -> None:
        self.source = source
        self.cache = cache
        self.max_bytes = max_bytes
        self.timeout = timeout
        self._flights: SingleFlight[str, None] = SingleFlight()
        #: Requests sent and blob bytes received, for tests and the benchmark.
        self.requests_made = 0
        self.bytes_fetched = 0
        #: Batch requests running now.
        self.running = 0

    def wanted(self, blob: SmallBlob) -> bool:
        """Neither in the cache nor on its way there."""
        return blob.digest not in self._flights.in_flight and not self.cache.has_small(blob.digest)

    async def fetch(
        self, first: SmallBlob, ahead: Sequence[SmallBlob], on_stored: OnStored | None = None
    ) -> None:
        """Bring ``first`` and as many of ``ahead`` as fit into the cache, in one request.

        The request runs in the background; this returns as soon as ``first``
        is present, or its batch gave up (the read path then fetches it), so a
        walker reads on while the rest of the batch arrives. Never raises.
        ``on_stored`` is told of each blob of the batch as it is kept.
        """
        self.send(first, ahead, on_stored)
        await self.arrival(first)

    def send(
        self,
        first: SmallBlob,
        ahead: Sequence[SmallBlob],
        on_stored: OnStored | None = None,
        max_bytes: int | None = None,
    ) -> bool:
        """Start the request ``fetch`` would make (of up to ``max_bytes``, by default
        ``self.max_bytes``), if there is one to make; wait for nothing."""
        batch = batch_to_send(first, ahead, self.wanted, max_bytes or self.max_bytes)
        if not batch:
            return False
        take_off = self._flights.take_off
        flights = {blob.digest: take_off(blob.digest) for blob in batch}
        self.running += 1
        # A system task: it outlives this request and nobody waits for all of it.
        trio.lowlevel.spawn_system_task(self._run, batch, flights, on_stored)
        return True

    async def arrival(self, blob: SmallBlob) -> None:
        """Wait until ``blob``, if a batch carries it, is in the cache or its batch gave up."""
        if (flight := self._flights.in_flight.get(blob.digest)) is not None:
            with trio.move_on_after(self.timeout):
                await flight.done.wait()

    async def _run(
        self, batch: list[SmallBlob], flights: _Flights, on_stored: OnStored | None
    ) -> None:
        self.requests_made += 1
        try:
            with trio.move_on_after(self.timeout):
                token = trio.lowlevel.current_trio_token()
                await trio.to_thread.run_sync(
                    self._download, batch, flights, token, on_stored, abandon_on_cancel=True
                )
        except Exception as exc:  # noqa: BLE001 - a system task must not crash the mount
            log.info("batch of %d small blobs failed (%s); fetching one by one", len(batch), exc)
        finally:
            self.running -= 1
            for digest in flights:
                self._settle(digest, flights)

    def _arrived(self, blobs: list[SmallBlob], flights: _Flights) -> None:
        for blob in blobs:
            self.bytes_fetched += blob.size
            self._settle(blob.digest, flights)

    def _settle(self, digest: str, flights: _Flights) -> None:
        flight = flights.get(digest)
        if flight is not None:
            self._flights.land(digest, flight)

    def _download(
        self,
        batch: list[SmallBlob],
        flights: _Flights,
        token: trio.lowlevel.TrioToken,
        on_stored: OnStored | None,
    ) -> None:
        """Worker thread: one request; each blob verified, then stored and announced in groups.

        The first blob goes alone (its opener is waiting); the others in groups
        of ``KEEP_EVERY``, each stored as one pack (``ChunkCache.store_many``:
        one file, not one per blob) and announced on the loop without waiting
        (``run_sync_soon``), so a batch of 256 files costs a handful of files
        and wake-ups, not 256 of each.
        """
        verified: list[tuple[SmallBlob, memoryview]] = []
        try:
            digests = [blob.digest for blob in batch]
            sizes = [blob.size for blob in batch]
            with self.source.open_batch(digests, sizes, self.timeout) as pieces:
                for position, (blob, data) in enumerate(zip(batch, pieces, strict=False)):
                    if data is None:
                        log.info("blob batch ended early, at blob %s", blob.digest)
                        return
                    if hashlib.sha256(data).hexdigest() != blob.digest:
                        log.error("blob %s in a batch failed verification; dropped", blob.digest)
                        continue
                    verified.append((blob, data))
                    if position == 0 or len(verified) >= KEEP_EVERY:
                        group, verified = verified, []
                        self._keep(group, flights, token, on_stored)
        except (OSError, ArtfsError) as exc:
            log.info("blob batch request failed: %s", exc)
        finally:
            if verified:  # what arrived whole before the batch broke off
                with contextlib.suppress(OSError, ArtfsError, trio.RunFinishedError):
                    self._keep(verified, flights, token, on_stored)

    def _keep(
        self,
        group: list[tuple[SmallBlob, memoryview]],
        flights: _Flights,
        token: trio.lowlevel.TrioToken,
        on_stored: OnStored | None,
    ) -> None:
        self.cache.store_many([(blob.layout, data) for blob, data in group])
        # Only now, with the blobs ready in the cache: handing bytes on (to the
        # kernel's page cache) may wait for a read of the same file in flight, which
        # is then answered from the cache, without this thread.
        if on_stored is not None:
            for blob, data in group:
                on_stored(blob.digest, data)
        token.run_sync_soon(self._arrived, [blob for blob, _ in group], flights)
