"""``ChunkCache``: blob bytes on local disk, in verified chunks; the cache's front.

What a crash or a disk can still do to a chunk file (torn pages after power
loss, bit rot, a user's stray write, a tool writing into the cache) is caught
by verification: every time chunk bytes are read from the cache's disk files,
the whole chunk is hashed against the layout's digest before a byte of it is
handed on (docs/design.md, "The cache": what that costs). A chunk failing it is
logged, removed for every process (its file deleted, or in a pack its range
punched out and its entry marked dropped) and reported absent, so the caller
fetches it again.

What a reader wants next is usually what just arrived, so the chunks this
process stored or verified lately also stay in memory, the *fresh tier*
(``FreshChunks``): at most ``fresh_bytes``, each chunk dropped as soon as
readers have taken as many bytes as it holds, in whatever order (the kernel's
page cache of the mount holds them from then on). Bytes in the fresh tier
were verified before they entered it and are served from there as they are:
the rule is about the disk, which other processes, tools and hardware can
change under the daemon; its own memory they cannot. So a chunk is *ready*
(served without waiting) exactly when it is in the fresh tier; one that is
only on disk is verified first.

An *external copy* is a file an SDK pull wrote for the user: rather than write
every byte twice, the pull records where the blob now lies
(``artfs.cache.externals``). Reads from it are verified against the layout
like any chunk read from disk, every time; a copy whose size or mtime changed,
or that was moved or deleted, simply stops counting and the bytes are fetched
again. External copies take no space in the bound.

The rest is done by parts this class calls under its one lock: the cache
directory's names and its scan (``artfs.cache.ondisk``), the writes
(``artfs.cache.writes``), where each listed chunk lies
(``artfs.cache.places``), recency, the bound and the pins
(``artfs.cache.eviction``), and the buffers chunks are fetched into
(``artfs.cache.buffers``). docs/design.md, "The cache", says how they fit.

This module does no network I/O and knows nothing of FUSE; it is thread-safe.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import logging
import mmap
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

from artfs.cache.arena import ChunkArena
from artfs.cache.buffers import BufferPool
from artfs.cache.eviction import NO_SPACE_RELIEF, Lru
from artfs.cache.externals import ExternalCopies, ExternalCopy
from artfs.cache.fresh import FreshChunks
from artfs.cache.layout import ChunkLayout, Key
from artfs.cache.ondisk import layout_path, make_dirs, remove, scan
from artfs.cache.packs import drop_damaged, has_hole, punch_hole
from artfs.cache.places import Place, Places
from artfs.cache.writes import ChunkWriter, Run, full_disk_is_no_space
from artfs.errors import Corrupt, NoSpace
from artfs.fileio import Buffer

__all__ = ["FRESH_BYTES", "ChunkCache", "Verdict"]

log = logging.getLogger("artfs.cache")

T = TypeVar("T")
#: Chunks just stored or verified stay in memory up to this many bytes (see the module
#: doc): room for four readers' read-ahead windows (32 chunks and a request each), since
#: a chunk left out is read back from disk and hashed again (docs/benchmarks.md).
FRESH_BYTES = 256 << 20


class Verdict(enum.Enum):
    """What reading a listed chunk back from disk found."""

    INTACT = "intact"
    #: Its bytes did not match: removed, to be fetched again.
    DAMAGED = "damaged"
    #: Evicted meanwhile (by this or another process sharing the cache).
    GONE = "gone"


class ChunkCache:
    def __init__(
        self,
        root: Path,
        max_bytes: int,
        fresh_bytes: int = FRESH_BYTES,
        arena: ChunkArena | None = None,
    ) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._writer = ChunkWriter(root)
        self._buffers = BufferPool(self._lock, arena)
        #: Chunks stored by this process lately, kept in memory, oldest first.
        self._fresh = FreshChunks(fresh_bytes, on_drop=self._buffers.retire)
        make_dirs(root)
        self._external = ExternalCopies(root)
        found, packed = scan(root)
        self._lru = Lru(max_bytes, found)
        self._places = Places(str(root / "chunks"), packed)

    # -- layouts --------------------------------------------------------------

    def layout(self, digest: str, size: int | None = None) -> ChunkLayout | None:
        """The blob's layout if known; a blob of one chunk needs no record (see ``implied``)."""
        self.load_external(digest)
        if size is not None and (implied := ChunkLayout.implied(digest, size)) is not None:
            return implied
        try:
            return ChunkLayout.decode(digest, layout_path(self.root, digest).read_bytes())
        except FileNotFoundError:
            return None
        except Corrupt:
            log.warning("dropping damaged cached layout of blob %s", digest)
            layout_path(self.root, digest).unlink(missing_ok=True)
            return None

    def store_layout(self, layout: ChunkLayout) -> None:
        self._writer.write_atomically(layout_path(self.root, layout.digest), layout.encode())

    # -- what is at hand ------------------------------------------------------

    def has(self, digest: str, index: int) -> bool:
        with self._lock:
            return (digest, index) in self._lru

    def has_small(self, digest: str) -> bool:
        """A one-chunk blob is at hand: cached, or a known external copy (``missing``, cheaper)."""
        with self._lock:
            return (digest, 0) in self._lru or digest in self._external

    def missing(self, layout: ChunkLayout, indexes: range) -> list[int]:
        with self._lock:
            if layout.digest in self._external:
                return []  # checked, and given up on if stale, when read
            return [i for i in indexes if (layout.digest, i) not in self._lru]

    def pending(self, layout: ChunkLayout, indexes: range) -> tuple[list[int], list[int]]:
        """Of ``indexes``: the chunks absent, and those present only on disk (not ready:
        verified when read)."""
        absent: list[int] = []
        on_disk: list[int] = []
        digest = layout.digest
        with self._lock:
            if digest in self._external:
                return absent, on_disk  # checked, and given up on if stale, when read
            lru, fresh = self._lru, self._fresh
            for i in indexes:
                key = (digest, i)
                if key not in lru:
                    absent.append(i)
                elif key not in fresh:
                    on_disk.append(i)
        return absent, on_disk

    # -- verified reads -------------------------------------------------------

    def check(self, layout: ChunkLayout, index: int) -> bool:
        """Make a present chunk ready ahead of its reader (worker threads); ``False``: it is
        gone.

        The chunk is read from disk and verified, and its bytes are kept in the
        fresh tier, pushing out its oldest entries if need be: a chunk checked
        is wanted soon, and one left out would be read and hashed again by the
        next read-ahead. A chunk failing verification is removed, so that it is
        fetched again.
        """
        key = (layout.digest, index)
        with self._lock:
            if key in self._fresh:
                return True
            if key not in self._lru:
                return False
        data = self._read_verified(layout, index)
        if isinstance(data, Verdict):
            return False
        with self._lock:
            if key in self._lru:
                self._fresh.admit(key, data, push=True)
        return True

    def verify_on_disk(self, layout: ChunkLayout, index: int) -> Verdict:
        """Read a listed chunk back from disk and verify it, as every read does; a damaged
        chunk is removed (``artfs cache verify``)."""
        data = self._read_verified(layout, index)
        return data if isinstance(data, Verdict) else Verdict.INTACT

    def read(self, layout: ChunkLayout, index: int, offset: int, view: memoryview) -> int | None:
        """Copy chunk bytes from ``offset`` into ``view``; ``None`` when the chunk is absent.

        Bytes not in memory are read from disk and the whole chunk verified
        first; a damaged chunk is removed and reported absent, to be fetched
        again. A chunk read only in part is kept in memory for the rest.
        """
        key = (layout.digest, index)
        with self._lock:
            known = key in self._lru
            if known:
                self._lru.touch(key)
            fresh = self._fresh.get(key) if known else None
        if not known:
            return self._read_external(layout, index, offset, view)
        if fresh is not None:
            return self._copy_fresh(key, fresh, offset, view)
        data = self._read_verified(layout, index)
        if isinstance(data, Verdict):
            return None
        got = max(min(len(view), len(data) - offset), 0)
        view[:got] = memoryview(data)[offset : offset + got]
        if offset + got < len(data):
            with self._lock:
                if key in self._lru and self._fresh.admit(key, data, push=True):
                    self._fresh.served(key, got)  # its reader comes back for the rest
        return got

    def read_ready(
        self, layout: ChunkLayout, index: int, offset: int, length: int
    ) -> bytes | memoryview | None:
        """Bytes of a chunk held in memory (verified), without waiting for anything.

        ``None`` when the chunk is not in memory: take the slow path, which
        verifies it from disk. The bytes come as a view, not a copy: chunks
        are never changed once stored, and the view keeps its buffer alive
        after the cache lets go of it.
        """
        key = (layout.digest, index)
        source = self._ready_source(key)
        if source is None:
            return None
        view = memoryview(source)[offset : offset + length]
        self._consumed(key, len(view))
        return view

    def read_ready_into(
        self, layout: ChunkLayout, index: int, offset: int, view: memoryview
    ) -> int | None:
        """``read_ready`` into a caller's buffer."""
        key = (layout.digest, index)
        source = self._ready_source(key)
        if source is None:
            return None
        return self._copy_fresh(key, source, offset, view)

    def _ready_source(self, key: Key) -> Buffer | None:
        """A listed chunk's verified bytes in memory; ``None``: not ready."""
        with self._lock:
            if key not in self._lru:
                return None  # not stored yet, or gone
            self._lru.touch(key)
            return self._fresh.get(key)

    def _copy_fresh(self, key: Key, source: Buffer, offset: int, view: memoryview) -> int:
        got = max(min(len(view), len(source) - offset), 0)
        view[:got] = memoryview(source)[offset : offset + got]
        self._consumed(key, got)
        return got

    def _open_chunk(self, key: Key) -> tuple[int, int] | None:
        """A read-only fd on a listed chunk's file and where the chunk starts in it;
        ``None`` if it has vanished."""
        with self._lock:
            where = self._places.where(key)
        while True:
            try:
                return os.open(where[0], os.O_RDONLY), where[1]
            except FileNotFoundError:
                with self._lock:
                    moved = self._places.where(key)
                if moved == where:
                    break
                where = moved  # a pack renamed into place as it was finished
        self._forget(key)  # evicted by another process sharing the cache
        return None

    def _read_verified(self, layout: ChunkLayout, index: int) -> Buffer | Verdict:
        """A listed chunk's bytes, read from disk and verified; else why not (a damaged
        chunk is unlisted and its bad copy removed)."""
        key = (layout.digest, index)
        opened = self._open_chunk(key)
        if opened is None:
            return Verdict.GONE
        fd, base = opened
        try:
            data = self._read_chunk_file(layout, index, fd, base)
            if data is not None and layout.verify(index, data):
                with contextlib.suppress(OSError):
                    os.utime(fd)  # recency for the next process's scan
                return data
            length = layout.chunk_length(index)
            if base and has_hole(fd, base, length):
                # Evicted by another process sharing the cache, its space given back.
                log.info("chunk %d of %s was evicted by another process", index, layout.digest[:12])
                self._forget(key)
                return Verdict.GONE
        finally:
            os.close(fd)
        path = self._places.where(key)[0] if base else self._places.chunk_file(key)
        log.warning(
            "cached chunk %d of blob %s is corrupt (%s at offset %d); removed, to be fetched again",
            index,
            layout.digest,
            path,
            base,
        )
        self._forget(key)
        if base:
            drop_damaged(path, base, length)  # gone for every process
        else:
            remove(path)
        return Verdict.DAMAGED

    def _read_chunk_file(
        self, layout: ChunkLayout, index: int, fd: int, base: int
    ) -> Buffer | None:
        """A chunk's bytes, into a reused buffer; ``None`` if its file's size is wrong."""
        length = layout.chunk_length(index)
        if not base and os.fstat(fd).st_size != length:
            return None
        buffer = self._buffers.new(length, direct=self._writer.direct)
        if isinstance(buffer, mmap.mmap) and self._writer.direct and not base:
            # A file of its own: straight from the disk into the buffer. The bytes
            # are held in memory for their reader, so a page-cache copy would only
            # cost a second copy. A chunk in a pack goes through the page cache
            # instead: reading it starts the kernel's read-ahead over the pack's
            # next chunks, which a warm read wants next (faster than O_DIRECT there).
            with contextlib.suppress(OSError):
                direct = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_DIRECT)
                try:
                    got = os.preadv(direct, [buffer], 0)
                finally:
                    os.close(direct)
                return buffer if got == length else None
        if os.preadv(fd, [buffer], base) != length:
            return None
        return buffer

    # -- external copies ------------------------------------------------------

    def add_external(self, layout: ChunkLayout, path: Path) -> None:
        """Record that ``path`` holds the whole blob, verified by the caller just now."""
        stat = path.stat()
        external = ExternalCopy(str(path.absolute()), stat.st_size, stat.st_mtime_ns)
        if ChunkLayout.implied(layout.digest, layout.size) is None:
            self.store_layout(layout)  # a one-chunk blob's layout is implied by its digest
        with full_disk_is_no_space(self.root):
            self._external.add(layout.digest, external)

    def load_external(self, digest: str) -> None:
        """Learn of an external copy another process (a pull) may have recorded for ``digest``."""
        if digest not in self._external:
            self._external.refresh()

    def _read_external(
        self, layout: ChunkLayout, index: int, offset: int, view: memoryview
    ) -> int | None:
        key = (layout.digest, index)
        with self._lock:
            fresh = self._fresh.get(key)  # verified from the copy by an earlier read
        if fresh is not None:
            return self._copy_fresh(key, fresh, offset, view)
        external = self._external.get(layout.digest)
        if external is None:
            return None
        try:
            fd = os.open(external.path, os.O_RDONLY)
        except OSError:
            self._external.drop(layout.digest)
            return None
        try:
            stat = os.fstat(fd)
            if (stat.st_size, stat.st_mtime_ns) != (external.size, external.mtime_ns):
                self._external.drop(layout.digest)  # the user changed their copy
                return None
            data = os.pread(fd, layout.chunk_length(index), index * layout.chunk_size)
        finally:
            os.close(fd)
        if not layout.verify(index, data):
            log.warning(
                "external copy %s of blob %s differs; refetching", external.path, layout.digest
            )
            self._external.drop(layout.digest)
            return None
        got = max(min(len(view), len(data) - offset), 0)
        view[:got] = data[offset : offset + got]
        if offset + got < len(data):
            with self._lock:
                if self._fresh.admit(key, data, push=True):
                    self._fresh.served(key, got)  # its reader comes back for the rest
        return got

    # -- storing --------------------------------------------------------------

    def new_buffer(self, length: int) -> Buffer:
        """A buffer for a chunk about to be fetched, one ``store`` can write fastest."""
        return self._buffers.new(length, direct=self._writer.direct)

    def store(self, layout: ChunkLayout, index: int, data: Buffer) -> None:
        """Keep a chunk the caller has verified against ``layout`` (and will not change).

        A chunk the fresh tier admits is written with ``O_DIRECT`` when its
        buffer allows (its reader will be served from memory); one it does not
        goes through the page cache, where its reader will find it instead.
        """
        self._keep(
            (layout.digest, index),
            data,
            lambda direct: self._writer.write_chunk(layout.digest, index, data, direct=direct),
        )

    def store_many(self, blobs: Sequence[tuple[ChunkLayout, Buffer]]) -> None:
        """Keep several one-chunk blobs the caller has verified, written together as one pack."""
        if len(blobs) < 2:
            for layout, data in blobs:
                self.store(layout, 0, data)
            return
        keys = [(layout.digest, 0) for layout, _ in blobs]
        with self._lock:
            for key, (_, data) in zip(keys, blobs, strict=True):
                self._fresh.admit(key, data)
        path = self._writer.new_pack_path()
        named = [(layout.digest, data) for layout, data in blobs]
        try:
            entries = self._making_room(lambda: self._writer.write_pack(path, named))
        except BaseException:
            with self._lock:
                for key in keys:
                    self._fresh.drop(key)
            raise
        with self._lock:
            emptied = [
                self._list(key, size, (path, offset))
                for key, (_, _, offset, size) in zip(keys, entries, strict=True)
            ]
        remove(*emptied)
        self._evict_if_needed()

    @contextlib.contextmanager
    def storing_run(
        self, layout: ChunkLayout, indexes: range
    ) -> Iterator[Callable[[int, Buffer], None]]:
        """``store`` for the consecutive chunks of one download, which keeps them in one pack.

        Yields ``store(index, data)``, to be called for ``indexes`` in order as
        each chunk arrives (verified); each is readable at once. Leaving the
        block closes the pack with the chunks stored so far and renames it into
        place, or deletes it if none of them is listed any more. A run of one
        chunk is a file of its own, as ``store`` keeps it.
        """
        if len(indexes) < 2:
            yield functools.partial(self.store, layout)
            return
        run = self._writer.start_run(layout, indexes)
        try:
            yield functools.partial(self._store_in_run, run)
        finally:
            if self._writer.finish_run(run):
                with self._lock:
                    doomed = self._places.release(run.part, run.final, run.keys)
                remove(doomed)

    def _store_in_run(self, run: Run, index: int, data: Buffer) -> None:
        key = (run.layout.digest, index)
        self._keep(
            key, data, lambda direct: (run.part, self._put_in_run(run, index, data, direct=direct))
        )
        run.keys.append(key)

    def _put_in_run(self, run: Run, index: int, data: Buffer, *, direct: bool) -> int:
        if run.writer is None:
            self._writer.open_run(run)
            with self._lock:
                self._places.hold(run.part)
        return self._writer.put_in_run(run, index, data, direct=direct)

    def _keep(self, key: Key, data: Buffer, write: Callable[[bool], Place | None]) -> None:
        """Store a verified chunk with ``write(direct)``, list it, and make room for it.

        ``write`` says where in a pack the chunk now lies (``None``: a file of its own).
        """
        with self._lock:
            # Invisible to readers until verified-and-listed below.
            kept = self._fresh.admit(key, data)
        try:
            packed = self._making_room(lambda: write(kept))
        except BaseException:
            with self._lock:
                self._fresh.drop(key)
            raise
        with self._lock:
            emptied = self._list(key, len(data), packed)
        remove(emptied)
        self._evict_if_needed()

    # -- chunks stored by fetch workers (``artfs.fetch.workers``) -------------

    def fresh_room(self) -> int:
        """Bytes the fresh tier holds no chunk in now."""
        with self._lock:
            return self._fresh.max_bytes - self._fresh.bytes

    def shared_buffer(self, length: int) -> tuple[int, Buffer] | None:
        """An arena slot for a chunk a worker will fetch, and the chunk's buffer in it."""
        return self._buffers.new_shared(length)

    def release_slot(self, slot: int) -> None:
        """Give back a slot whose chunk a worker did not store."""
        self._buffers.release_slot(slot)

    def begin_worker_run(self, layout: ChunkLayout, indexes: range) -> Run:
        """The pack a worker will write the chunks of one download into; held (not deleted)
        until ``end_worker_run``."""
        run = self._writer.start_run(layout, indexes)
        with self._lock:
            self._places.hold(run.part)
        return run

    def adopt(
        self, layout: ChunkLayout, index: int, data: Buffer, run: Run | None, offset: int | None
    ) -> None:
        """List a chunk a worker verified in ``data`` (an arena slot) and wrote to disk: in
        ``run``'s pack at ``offset``, or (``run`` is ``None``) in a file of its own."""
        key = (layout.digest, index)
        packed = None if run is None or offset is None else (run.part, offset)
        arena = self._buffers.arena
        slot = None if arena is None else arena.slot_of(data)
        if arena is not None and slot is not None:
            arena.populate(slot)
        with self._lock:
            if not self._fresh.admit(key, data):
                self._buffers.retire(data)  # no room in memory: read from disk instead
            emptied = self._list(key, len(data), packed)
        if run is not None:
            run.keys.append(key)
        remove(emptied)
        self._evict_if_needed()

    def end_worker_run(self, run: Run) -> None:
        """A worker is done with ``run``'s pack: rename it into place, or delete it if none
        of its chunks is listed."""
        with self._lock:
            doomed = self._places.release(run.part, run.final, run.keys)
        remove(doomed)

    def relieve_full_disk(self) -> bool:
        """A worker found the disk full below our bound: give up our own oldest chunks
        for room, as ``_making_room`` does; whether anything went."""
        relieved = self.evict_to(self.total_bytes - NO_SPACE_RELIEF, pressed=True) > 0
        if relieved:
            log.warning("cache disk full at %s; evicted chunks below the bound", self.root)
        return relieved

    def _making_room(self, write: Callable[[], T]) -> T:
        """Run a cache write; if the disk filled up below our bound (other files grew),
        give up our own oldest chunks for room, once, before failing."""
        try:
            return write()
        except NoSpace:
            if not self.evict_to(self.total_bytes - NO_SPACE_RELIEF, pressed=True):
                raise
            log.warning("cache disk full at %s; evicted chunks below the bound", self.root)
            return write()

    def _list(self, key: Key, size: int, packed: Place | None) -> str | None:
        """List a chunk just stored and verified, in place of any older copy (under the lock).

        Says which pack, if any, that older copy emptied (to delete).
        """
        self._lru.add(key, size)
        return self._places.place(key, packed)

    # -- pins and eviction ----------------------------------------------------

    def pin(self, digest: str) -> None:
        with self._lock:
            self._lru.pin(digest)

    def unpin(self, digest: str) -> None:
        with self._lock:
            self._lru.unpin(digest)

    @property
    def max_bytes(self) -> int:
        return self._lru.max_bytes

    @property
    def total_bytes(self) -> int:
        with self._lock:
            return self._lru.total

    def evict_to(self, target: int, *, pressed: bool = False) -> int:
        """Drop least-recently-used chunks until at most ``target`` bytes remain; how many.

        Which chunks go, and which never do: ``Lru.choose`` (``pressed``: the
        disk itself is full). A chunk in a pack gives its space back at once,
        a hole punched; the pack goes with its last chunk.
        """
        doomed: list[str] = []
        holes: list[tuple[str, int, int]] = []
        with self._lock:
            victims, sizes = self._lru.choose(target, pressed=pressed, in_memory=self._fresh)
            for key, size in zip(victims, sizes, strict=True):
                self._fresh.drop(key)
                self._places.evict(key, size, doomed, holes)
        remove(*doomed)
        for hole in holes:
            punch_hole(*hole)
        return len(victims)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return self._lru.stats()

    def listed(self) -> list[tuple[Key, int]]:
        """Every chunk listed now, with its size."""
        with self._lock:
            return self._lru.sizes()

    def _evict_if_needed(self) -> None:
        with self._lock:
            target = self._lru.eviction_target()
        if target is not None:
            self.evict_to(target)

    def _consumed(self, key: Key, count: int) -> None:
        # Once readers took all of a chunk's bytes they are done with it (the
        # kernel's page cache has them now): it makes room for chunks read ahead.
        with self._lock:
            if key not in self._fresh:
                return
            self._fresh.served(key, count)
            if key in self._fresh:
                return
        # Chunks read ahead were spared by the evictions their own stores ran;
        # once read, they may go, or a finished stream would stay above the bound.
        self._evict_if_needed()

    def _forget(self, key: Key) -> None:
        """Unlist a chunk found damaged or gone."""
        with self._lock:
            self._lru.discard(key)
            self._fresh.drop(key)
            emptied = self._places.unpack(key)
        remove(emptied)
