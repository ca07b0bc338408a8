"""``ChunkFetcher``: makes chunks of a blob ready in the cache, fetching each once.

*Ready* means present in the cache and verified by this process. Every chunk
that is not is made ready by a background task in the fetcher's own nursery,
not by the reader that asked for it. So:

* many readers of one chunk share one fetch (``SingleFlight``: a table of
  flights in progress, each landed with its error, if any, for every waiter);
* a reader whose deadline passes gets ``Transient`` (EIO above) while the fetch
  goes on for the next reader — a cancelled reader never cancels shared work;
* read-ahead is just a fetch nobody waits for yet;
* a chunk already on disk from an earlier process is verified (hashed) in a
  worker thread ahead of its reader, the same way, so warm reads stream too.

Contiguous missing chunks go out as one ranged request of at most
``max_request_bytes`` to the fetcher's ``BlobSource`` (read straight into chunk
buffers; the registry's is ``RegistrySource``); each
chunk is verified against the layout's digest as it arrives, stored (the
chunks of one request in one pack file: ``ChunkCache.storing_run``), and
announced at once, so a reader waits for its own chunk, not for the whole
request. Requests run in worker threads, at most ``max_parallel`` at a time. A
failed request is retried with backoff until ``fetch_timeout`` after its flight
began, and a request still waiting then is abandoned (its thread's late answer
is dropped): the mount makes that its read timeout, so a reader's deadline and
the fetch's are one, and nothing is retried after its reader had its answer. A
chunk whose fetch failed so fails again at once, once, within
``FAILURE_MEMORY`` seconds: the kernel asks again for a page whose read-ahead
failed, and that second read must not wait a second deadline; the reader after
it asks afresh, so a registry that is back is used at once. A chunk that fails
verification is an error at once (with a log line), never bytes handed out.

Concurrency: all bookkeeping (``_flights``) happens on the trio thread; worker
threads only download, verify and write chunk files, and announce each stored
chunk with ``TrioToken.run_sync_soon`` — queued, not waited for, so a busy
trio loop never stalls a download.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import trio
from cachetools import LRUCache

from artfs.cache.chunks import ChunkCache
from artfs.cache.layout import DIGEST_BYTES, ChunkLayout
from artfs.client.models import ChunkList
from artfs.digests import CHUNK_SIZE
from artfs.errors import ArtfsError, Corrupt, NoSpace, Transient
from artfs.fetch.singleflight import Flight, SingleFlight
from artfs.fetch.work import FetchTask, Stored
from artfs.fileio import Buffer

if TYPE_CHECKING:
    from artfs.fetch.sources import BlobSource
    from artfs.fetch.workers import FetchWorkers

__all__ = ["ChunkFetcher", "layout_from_answer"]

log = logging.getLogger("artfs.fetch")

Key = tuple[str, int]
_Flight = Flight[None]

#: Seconds a chunk whose fetch ran out of time or could not reach its source
#: fails at once, instead of waiting another deadline (see above).
FAILURE_MEMORY = 1.0


class ChunkFetcher:
    def __init__(
        self,
        source: BlobSource,
        cache: ChunkCache,
        nursery: trio.Nursery,
        *,
        max_parallel: int = 16,
        max_request_bytes: int = 8 << 20,
        fetch_timeout: float = 60.0,
        workers: FetchWorkers | None = None,
    ) -> None:
        self.source = source
        self.cache = cache
        #: Worker processes for ranged fetches (``None``: worker threads of this process).
        self.workers = workers
        self._nursery = nursery
        self._token = trio.lowlevel.current_trio_token()
        self._limiter = trio.CapacityLimiter(max_parallel)
        self._max_request_bytes = max_request_bytes
        self._fetch_timeout = fetch_timeout
        self._flights: SingleFlight[Key, None] = SingleFlight()
        self._layouts: LRUCache[str, ChunkLayout] = LRUCache(maxsize=4096)
        self._layout_flights: SingleFlight[str, ChunkLayout] = SingleFlight()
        #: Chunks whose fetch failed as ``Transient`` lately: when, and the error.
        self._failures: dict[Key, tuple[float, ArtfsError]] = {}
        #: Bytes and requests sent to the network, for tests and the benchmark.
        self.bytes_fetched = 0
        self.requests_made = 0

    # -- layouts ----------------------------------------------------------------

    @property
    def chunks_per_request(self) -> int:
        return max(1, self._max_request_bytes // CHUNK_SIZE)

    async def layout(self, digest: str, size: int | None = None) -> ChunkLayout:
        """The chunk digests of a blob: from memory, the disk cache, or the source.

        A blob of at most one chunk needs no lookup at all (``ChunkLayout.implied``).
        """
        if size is not None and (implied := ChunkLayout.implied(digest, size)) is not None:
            if not self.cache.has(digest, 0):
                # An external copy only matters for bytes not cached: a walk whose
                # batches brought every file skips a file lookup per open.
                self.cache.load_external(digest)
            return implied
        cached = self._layouts.get(digest)
        if cached is not None:
            return cached
        return await self._layout_flights.do(digest, lambda: self._load_layout(digest))

    async def _load_layout(self, digest: str) -> ChunkLayout:
        layout = self.cache.layout(digest)
        if layout is None:
            with trio.CancelScope(shield=True), trio.move_on_after(self._fetch_timeout):
                layout = await trio.to_thread.run_sync(
                    self.source.chunk_layout, digest, limiter=self._limiter, abandon_on_cancel=True
                )
            if layout is None:
                raise Transient(
                    f"the chunk list of blob {digest} did not come within {self._fetch_timeout}s"
                )
            self.cache.store_layout(layout)
        self._layouts[digest] = layout
        return layout

    def start_soon(self, task: Callable[..., Awaitable[object]], *args: object) -> None:
        """Run ``task`` in the fetcher's nursery: work that outlives the read that began it."""
        self._nursery.start_soon(task, *args)

    # -- chunks -----------------------------------------------------------------

    def prefetch(self, layout: ChunkLayout, indexes: range) -> None:
        """Start making ready whichever of ``indexes`` are neither ready nor in flight.

        An absent chunk is fetched; a chunk present only on disk is read and
        verified in a worker thread (the cache verifies every read from disk),
        so that a reader never hashes on the trio thread.
        """
        indexes = range(max(indexes.start, 0), min(indexes.stop, layout.chunk_count))
        if not indexes:
            return
        absent, on_disk = self.cache.pending(layout, indexes)
        flights = self._flights.in_flight
        digest = layout.digest
        per_request = max(1, self._max_request_bytes // layout.chunk_size)
        if absent:
            todo = [i for i in absent if (digest, i) not in flights]
            for run in _runs(todo, per_request):
                self._nursery.start_soon(self._fetch_run, layout, self._take_off(layout, run))
        if on_disk:
            todo = [i for i in on_disk if (digest, i) not in flights]
            for run in _runs(todo, per_request):
                self._nursery.start_soon(self._check_run, layout, self._take_off(layout, run))

    def _take_off(self, layout: ChunkLayout, run: list[int]) -> dict[int, _Flight]:
        take_off, digest = self._flights.take_off, layout.digest
        return {i: take_off((digest, i)) for i in run}

    async def ensure(self, layout: ChunkLayout, indexes: range) -> None:
        """Return once every chunk of ``indexes`` is in the cache, found intact.

        Chunks found on disk were verified by the checks this waited on; the
        cache verifies them again whenever it reads them from disk, and may
        hold fewer in memory than ``indexes`` spans.
        """
        in_flight = self._flights.in_flight
        if self._failures:
            self._fail_fast(layout.digest, indexes)
        for _attempt in range(3):
            self.prefetch(layout, indexes)
            # Every flight is taken before the first wait: one that lands while
            # this waits on another leaves ``in_flight``, and its error must still
            # reach this reader rather than start a second fetch.
            flights = [in_flight.get((layout.digest, i)) for i in indexes]
            for flight in flights:
                if flight is not None:
                    # The flight's fields, not ``SingleFlight.do``: a chunk's waiter
                    # takes no extra await.
                    await flight.done.wait()
                    if flight.error is not None:
                        raise flight.error
            absent, _ = self.cache.pending(layout, indexes)
            if not absent:
                return
            # Evicted between arrival and now (a tiny cache under pressure), or
            # found corrupt on disk: fetch again.
        raise Transient(f"chunks of blob {layout.digest} keep vanishing from the cache")

    def _fail_fast(self, digest: str, indexes: range) -> None:
        """Raise the error of a chunk of ``indexes`` whose fetch failed just now."""
        now = trio.current_time()
        for index in indexes:
            failure = self._failures.get((digest, index))
            if failure is None or self.cache.has(digest, index):
                continue  # never failed, or its late answer came after all
            when, error = failure
            del self._failures[(digest, index)]
            if now - when < FAILURE_MEMORY:
                raise error  # once: the next reader after this one asks afresh

    async def _fetch_run(self, layout: ChunkLayout, owned: dict[int, _Flight]) -> None:
        deadline = trio.current_time() + self._fetch_timeout
        delay = 0.1
        try:
            while owned:
                try:
                    # Past the deadline the request is abandoned, not awaited: one to a
                    # registry that stopped answering hangs until its socket timeout.
                    # Shielded: an outer cancellation (unmount) still waits for it,
                    # so no chunk is left half-written by this process.
                    with trio.CancelScope(shield=True), trio.move_on_at(deadline) as attempt:
                        if not await self._download_in_worker(layout, sorted(owned), owned):
                            await trio.to_thread.run_sync(
                                self._download_run,
                                layout,
                                sorted(owned),
                                owned,
                                limiter=self._limiter,
                                abandon_on_cancel=True,
                            )
                    if attempt.cancelled_caught:
                        raise Transient(
                            f"chunks of blob {layout.digest} did not come "
                            f"within {self._fetch_timeout}s"
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

    async def _check_run(self, layout: ChunkLayout, owned: dict[int, _Flight]) -> None:
        try:
            failed = await trio.to_thread.run_sync(
                self._check_chunks, layout, sorted(owned), limiter=self._limiter
            )
        except OSError as exc:
            log.warning("cannot verify cached chunks of %s: %s", layout.digest[:12], exc)
            failed = sorted(owned)
        finally:
            # Settled either way: a reader re-asks, and a failed chunk is fetched.
            for index, flight in list(owned.items()):
                self._flights.land((layout.digest, index), flight)
            owned.clear()
        for run in _runs(failed, self.chunks_per_request):
            self.prefetch(layout, range(run[0], run[-1] + 1))

    def _check_chunks(self, layout: ChunkLayout, run: list[int]) -> list[int]:
        """Worker thread: verify present chunks; return those that turned out absent or bad."""
        return [index for index in run if not self.cache.check(layout, index)]

    def _fail(self, layout: ChunkLayout, owned: dict[int, _Flight], error: ArtfsError) -> None:
        now = trio.current_time()
        for index, flight in list(owned.items()):
            if isinstance(error, Transient):
                self._failures[(layout.digest, index)] = (now, error)
            self._flights.land((layout.digest, index), flight, error)
        owned.clear()
        if len(self._failures) > 4096:
            self._failures = {
                key: failure
                for key, failure in self._failures.items()
                if now - failure[0] < FAILURE_MEMORY
            }

    def _arrived(self, layout: ChunkLayout, owned: dict[int, _Flight], index: int) -> None:
        # Runs on the trio thread, queued by a worker that does not wait for it.
        self.bytes_fetched += layout.chunk_length(index)
        flight = owned.pop(index, None)
        self._failures.pop((layout.digest, index), None)
        if flight is not None:
            # Only the run that took a flight off lands it: a newer flight for the
            # same chunk (after an eviction) belongs to another run.
            self._flights.land((layout.digest, index), flight)

    def _count_request(self) -> None:
        self.requests_made += 1

    def _download_run(self, layout: ChunkLayout, run: list[int], owned: dict[int, _Flight]) -> None:
        """Worker thread: one ranged request for the chunks still owed, each verified and stored.

        Each stored chunk is announced to the trio thread without waiting for
        it to listen, so the download goes on while readers are woken.
        """
        start = run[0] * layout.chunk_size
        end = min((run[-1] + 1) * layout.chunk_size, layout.size)
        announce = self._token.run_sync_soon
        announce(self._count_request)
        indexes = range(run[0], run[-1] + 1)
        with (
            self.source.open_range(layout.digest, start, end) as body,
            self.cache.storing_run(layout, indexes) as store,
        ):
            for index in indexes:
                buffer = self.cache.new_buffer(layout.chunk_length(index))
                view = memoryview(buffer)
                if not body.read_into(view):
                    raise Transient(f"blob {layout.digest} ended early at chunk {index}")
                if not layout.verify(index, view):
                    log.error(
                        "chunk %d of blob %s failed verification; refusing its bytes",
                        index,
                        layout.digest,
                    )
                    raise Corrupt(f"chunk {index} of blob {layout.digest} is corrupt")
                try:
                    store(index, buffer)
                except OSError as exc:
                    raise Transient(
                        f"cannot store chunk {index} of {layout.digest}: {exc}"
                    ) from exc
                announce(self._arrived, layout, owned, index)

    async def _download_in_worker(
        self, layout: ChunkLayout, run: list[int], owned: dict[int, _Flight]
    ) -> bool:
        """``_download_run`` in a worker process, into arena slots; ``False`` if it cannot
        be (no workers, not a registry blob, no slot free now): the caller uses a thread.

        The task's bookkeeping ends in its ``on_end`` callback, not here: a task
        abandoned at its deadline still gives back its slots and its pack when it ends.
        """
        workers = self.workers
        if workers is None or not workers.usable or not self.source.in_workers(layout.digest):
            return False
        indexes = range(run[0], run[-1] + 1)
        borrower = object()
        await self._limiter.acquire_on_behalf_of(borrower)
        slots: dict[int, tuple[int, Buffer]] = {}
        for index in indexes:
            shared = self.cache.shared_buffer(layout.chunk_length(index))
            if shared is None:
                for slot, _ in slots.values():
                    self.cache.release_slot(slot)
                self._limiter.release_on_behalf_of(borrower)
                return False
            slots[index] = shared
        # An error raised below keeps this frame in its traceback, which a failed flight
        # keeps for a while: no slot's buffer may stay referenced from it.
        del shared
        pack = self.cache.begin_worker_run(layout, indexes) if len(indexes) > 1 else None
        size = layout.chunk_size
        task = FetchTask(
            task_id=0,
            digest=layout.digest,
            chunk_size=size,
            chunk_hash=layout.chunk_hash,
            first=indexes.start,
            lengths=tuple(layout.chunk_length(i) for i in indexes),
            chunk_digests=layout.chunk_digests[
                indexes.start * DIGEST_BYTES : indexes.stop * DIGEST_BYTES
            ],
            slots=tuple(slot for slot, _ in slots.values()),
            pack=None if pack is None else pack.part,
            direct=self.cache.fresh_room() >= len(indexes) * size,
        )
        ended = trio.Event()
        outcome: list[ArtfsError | None] = []

        def on_stored(reply: Stored) -> None:
            taken = slots.pop(reply.index, None)
            if taken is None:
                return
            self.cache.adopt(layout, reply.index, taken[1], pack, reply.offset)
            self._arrived(layout, owned, reply.index)

        def on_end(error: ArtfsError | None) -> None:
            for slot, _ in slots.values():
                self.cache.release_slot(slot)
            slots.clear()
            if pack is not None:
                self.cache.end_worker_run(pack)
            self._limiter.release_on_behalf_of(borrower)
            outcome.append(error)
            ended.set()

        self.requests_made += 1
        workers.submit(task, on_stored, on_end)
        await ended.wait()
        error = outcome[0]
        if isinstance(error, NoSpace) and self.cache.relieve_full_disk():
            raise Transient(f"cache disk was full; retrying chunks of {layout.digest}")
        if error is not None:
            raise error
        return True

    def close(self) -> None:
        """Let go of the source's connections."""
        self.source.close()


def layout_from_answer(digest: str, answer: ChunkList) -> ChunkLayout:
    """A blob's chunk layout from the registry's chunk list of it."""
    try:
        return ChunkLayout(
            digest=digest,
            size=answer.size,
            chunk_size=answer.chunk_size,
            chunk_digests=answer.chunk_digests,
            chunk_hash=answer.chunk_hash,
        )
    except (TypeError, ValueError) as exc:
        raise Corrupt(f"the registry's chunk list of blob {digest} is malformed: {exc}") from exc


def _runs(indexes: list[int], longest: int) -> list[list[int]]:
    """Split sorted indexes into runs of consecutive numbers, each at most ``longest``."""
    runs: list[list[int]] = []
    for i in indexes:
        if runs and runs[-1][-1] == i - 1 and len(runs[-1]) < longest:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs
