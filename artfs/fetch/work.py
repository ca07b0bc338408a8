"""What a fetch worker process does, and the messages it exchanges with the daemon.

The daemon (``artfs.fetch.workers``) owns every decision: which chunks to
fetch, single flight, where they will lie in the cache, the cache's lists and
its bound. A worker only carries out one ``FetchTask`` at a time per thread:
one ranged request read chunk by chunk into the arena slots the daemon chose,
each chunk verified where it lies against the digest the daemon sent, then
written to the cache's disk (a pack the daemon named, or a chunk file of its
own), and reported with ``Stored``: "chunk N is verified in its slot and lies
at offset O". ``Finished`` ends a task, with the error it ended on, if any. A
chunk that fails verification is never reported stored, so its slot's bytes
are never served. docs/design.md, "Fetch workers".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from artfs.cache.arena import ArenaView
from artfs.cache.layout import DIGEST_BYTES, chunk_matches
from artfs.cache.packs import PackWriter
from artfs.cache.writes import ChunkWriter, full_disk_is_no_space
from artfs.client.ranged import RangeReader
from artfs.config import ClientConfig
from artfs.errors import ArtfsError, Corrupt, Transient

__all__ = ["FetchTask", "Finished", "Stored", "run_fetch"]

log = logging.getLogger("artfs.fetch")


@dataclass(frozen=True)
class FetchTask:
    """Chunks ``first``… of one blob, in one ranged request, into ``slots`` (one each)."""

    task_id: int
    digest: str
    chunk_size: int
    chunk_hash: str
    first: int
    lengths: tuple[int, ...]
    #: The digest of each chunk, back to back.
    chunk_digests: bytes
    slots: tuple[int, ...]
    #: The pack to write the chunks into (``None``: one chunk, a file of its own).
    pack: str | None
    direct: bool


@dataclass(frozen=True)
class Stored:
    """Chunk ``index`` of the task's blob is verified in its slot and written to disk."""

    task_id: int
    index: int
    #: Where in the task's pack it lies; ``None`` for a chunk file of its own.
    offset: int | None


@dataclass(frozen=True)
class Finished:
    """A task is over; ``error`` is the ``(code, message)`` it ended on, if any."""

    task_id: int
    error: tuple[str, str] | None = None


Reply = Stored | Finished


@dataclass(frozen=True)
class WorkerSetup:
    """What a worker needs to start: sent as its first message (``worker_main``)."""

    config: ClientConfig
    range_timeout: float
    arena_path: str
    arena_size: int
    slot_bytes: int
    cache_root: str
    threads: int
    log_file: str | None


def run_fetch(
    task: FetchTask,
    arena: ArenaView,
    ranges: RangeReader,
    writer: ChunkWriter,
    send: Callable[[Reply], None],
) -> None:
    """Carry out ``task``, reporting each chunk stored and then the end (never raises)."""
    try:
        _fetch(task, arena, ranges, writer, send)
    except ArtfsError as exc:
        send(Finished(task.task_id, (exc.code, exc.message)))
    except Exception as exc:  # a worker must answer every task, whatever went wrong
        log.exception("fetch task %d failed", task.task_id)
        send(Finished(task.task_id, (Transient.code, f"fetch worker failed: {exc}")))
    else:
        send(Finished(task.task_id))


def _fetch(
    task: FetchTask,
    arena: ArenaView,
    ranges: RangeReader,
    writer: ChunkWriter,
    send: Callable[[Reply], None],
) -> None:
    start = task.first * task.chunk_size
    end = start + sum(task.lengths)
    pack: PackWriter | None = None
    with ranges.open(task.digest, start, end) as body:
        try:
            for position, length in enumerate(task.lengths):
                index = task.first + position
                buffer = arena.buffer(task.slots[position], length)
                if not body.read_into(memoryview(buffer)):
                    raise Transient(f"blob {task.digest} ended early at chunk {index}")
                expected = task.chunk_digests[
                    position * DIGEST_BYTES : (position + 1) * DIGEST_BYTES
                ]
                if not chunk_matches(task.chunk_hash, expected, buffer):
                    log.error(
                        "chunk %d of blob %s failed verification; refusing its bytes",
                        index,
                        task.digest,
                    )
                    raise Corrupt(f"chunk {index} of blob {task.digest} is corrupt")
                offset: int | None = None
                direct = task.direct and writer.direct
                with full_disk_is_no_space(writer.root):
                    if task.pack is None:
                        writer.write_chunk(task.digest, index, buffer, direct=direct)
                    else:
                        if pack is None:
                            planned = [
                                (task.digest, task.first + i, n) for i, n in enumerate(task.lengths)
                            ]
                            pack = PackWriter(task.pack, planned)
                        offset = pack.put(task.digest, index, buffer, direct=direct)
                        if pack.direct_refused:
                            writer.direct = False  # learnt once for every later task
                send(Stored(task.task_id, index, offset))
        finally:
            if pack is not None:
                # The daemon renames it into place, under its lock (``Places.release``).
                pack.finish()
