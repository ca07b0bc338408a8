"""``ChunkCache``: blob bytes on local disk, one file per verified chunk.

Layout under the cache dir::

    chunks/<d[:2]>/<digest>/<index>      one chunk's bytes (the last one may be short)
    layouts/<d[:2]>/<digest>             the blob's size, chunk size and chunk sha256s
    external/<d[:2]>/<digest>            where a verified whole copy lies outside the cache

An *external copy* is a file an SDK pull wrote for the user: rather than write
every byte twice, the pull records where the blob now lies. Reads from it are
verified against the layout like any chunk, again whenever the file's size or
mtime change; a copy that was edited, moved or deleted simply stops counting
and the bytes are fetched again. External copies take no space in the bound.

A chunk file is written to a temporary name and renamed, so it is either absent
or complete under its name. What a crash or a disk can still do to it (torn
pages after power loss, bit rot, a user's stray write) is caught by
verification: the first time this process reads a chunk file, it hashes it
against the layout's digest and drops it on mismatch, so the caller fetches it
again. Chunks this process wrote itself were verified before writing.

Size is bounded by ``max_bytes``: least-recently-used chunks are evicted, never
those of a blob that is pinned (open by a reader). Recency survives restarts as
the files' mtimes. Several processes may share the directory; each keeps its
own accounting and rescans when its bound is crossed, so the bound holds
approximately across processes and exactly within one.

This module does no network I/O and knows nothing of FUSE; it is thread-safe.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
import uuid
from collections import Counter, OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path

import platformdirs

from artfs.digests import CHUNK_SIZE
from artfs.errors import Corrupt, NoSpace

__all__ = ["ChunkCache", "ChunkLayout", "default_cache_dir"]

log = logging.getLogger("artfs.cache")

DIGEST_BYTES = 32
_LAYOUT_HEADER = 16  # size (8 bytes) + chunk size (8 bytes), big-endian


def default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("artfs"))


@dataclass(frozen=True)
class ChunkLayout:
    """How a blob splits into chunks, with the sha256 of each (recorded at commit)."""

    digest: str
    size: int
    chunk_size: int
    chunk_digests: bytes

    @property
    def chunk_count(self) -> int:
        return -(-self.size // self.chunk_size)

    def chunk_digest(self, index: int) -> bytes:
        return self.chunk_digests[index * DIGEST_BYTES : (index + 1) * DIGEST_BYTES]

    def chunk_length(self, index: int) -> int:
        return min(self.chunk_size, self.size - index * self.chunk_size)

    def chunks_for(self, offset: int, length: int) -> range:
        """Indexes of the chunks holding bytes ``[offset, offset + length)``."""
        end = min(offset + length, self.size)
        if length <= 0 or offset >= end:
            return range(0)
        return range(offset // self.chunk_size, (end - 1) // self.chunk_size + 1)

    def verify(self, index: int, data: bytes | bytearray | memoryview) -> bool:
        return len(data) == self.chunk_length(index) and (
            hashlib.sha256(data).digest() == self.chunk_digest(index)
        )

    @classmethod
    def implied(cls, digest: str, size: int) -> ChunkLayout | None:
        """A blob of at most one chunk: its one chunk digest is the blob's own digest."""
        if size > CHUNK_SIZE:
            return None
        return cls(digest, size, CHUNK_SIZE, bytes.fromhex(digest) if size else b"")

    def encode(self) -> bytes:
        return (
            self.size.to_bytes(8, "big") + self.chunk_size.to_bytes(8, "big") + self.chunk_digests
        )

    @classmethod
    def decode(cls, digest: str, raw: bytes) -> ChunkLayout:
        size = int.from_bytes(raw[:8], "big")
        chunk_size = int.from_bytes(raw[8:_LAYOUT_HEADER], "big")
        layout = cls(digest, size, chunk_size, raw[_LAYOUT_HEADER:])
        if chunk_size <= 0 or len(layout.chunk_digests) != layout.chunk_count * DIGEST_BYTES:
            raise Corrupt(f"cached layout of blob {digest} is damaged")
        return layout


Key = tuple[str, int]


@dataclass(frozen=True)
class _External:
    path: str
    size: int
    mtime_ns: int


class ChunkCache:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._lru: OrderedDict[Key, int] = OrderedDict()  # oldest first
        self._total = 0
        self._pins: Counter[str] = Counter()
        self._verified: set[Key] = set()
        self._external: dict[str, _External] = {}
        self._external_verified: set[tuple[str, int, int]] = set()  # digest, index, mtime_ns
        (root / "chunks").mkdir(parents=True, exist_ok=True)
        (root / "layouts").mkdir(parents=True, exist_ok=True)
        (root / "tmp").mkdir(parents=True, exist_ok=True)
        (root / "external").mkdir(parents=True, exist_ok=True)
        self._scan()

    # -- paths ----------------------------------------------------------------

    def _chunk_path(self, digest: str, index: int) -> Path:
        return self.root / "chunks" / digest[:2] / digest / str(index)

    def _layout_path(self, digest: str) -> Path:
        return self.root / "layouts" / digest[:2] / digest

    def _external_path(self, digest: str) -> Path:
        return self.root / "external" / digest[:2] / digest

    def _scan(self) -> None:
        """Rebuild the LRU from the files on disk, oldest mtime first."""
        found: list[tuple[float, Key, int]] = []
        for shard in (self.root / "chunks").iterdir():
            for blob in shard.iterdir():
                for chunk in blob.iterdir():
                    if not chunk.name.isdigit():
                        continue
                    stat = chunk.stat()
                    found.append((stat.st_mtime, (blob.name, int(chunk.name)), stat.st_size))
        found.sort()
        with self._lock:
            self._lru = OrderedDict((key, size) for _, key, size in found)
            self._total = sum(size for *_, size in found)

    # -- layouts --------------------------------------------------------------

    def layout(self, digest: str, size: int | None = None) -> ChunkLayout | None:
        """The blob's layout if known; a blob of one chunk needs no record (see ``implied``)."""
        self.load_external(digest)
        if size is not None and (implied := ChunkLayout.implied(digest, size)) is not None:
            return implied
        try:
            return ChunkLayout.decode(digest, self._layout_path(digest).read_bytes())
        except FileNotFoundError:
            return None
        except Corrupt:
            log.warning("dropping damaged cached layout of blob %s", digest)
            self._layout_path(digest).unlink(missing_ok=True)
            return None

    def store_layout(self, layout: ChunkLayout) -> None:
        self._write_atomically(self._layout_path(layout.digest), layout.encode())

    # -- chunks ---------------------------------------------------------------

    def has(self, digest: str, index: int) -> bool:
        with self._lock:
            return (digest, index) in self._lru

    def missing(self, layout: ChunkLayout, indexes: range) -> list[int]:
        with self._lock:
            if layout.digest in self._external:
                return []  # checked, and given up on if stale, when read
            return [i for i in indexes if (layout.digest, i) not in self._lru]

    # -- external copies ------------------------------------------------------

    def add_external(self, layout: ChunkLayout, path: Path) -> None:
        """Record that ``path`` holds the whole blob, verified by the caller just now."""
        stat = path.stat()
        external = _External(str(path.absolute()), stat.st_size, stat.st_mtime_ns)
        self.store_layout(layout)
        self._write_atomically(
            self._external_path(layout.digest), json.dumps(asdict(external)).encode()
        )
        with self._lock:
            self._external[layout.digest] = external
            self._external_verified.update(
                (layout.digest, index, stat.st_mtime_ns) for index in range(layout.chunk_count)
            )

    def load_external(self, digest: str) -> None:
        """Learn of an external copy another process (a pull) recorded for ``digest``."""
        with self._lock:
            if digest in self._external:
                return
        try:
            raw = json.loads(self._external_path(digest).read_bytes())
            external = _External(str(raw["path"]), int(raw["size"]), int(raw["mtime_ns"]))
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError):
            self._drop_external(digest)
            return
        with self._lock:
            self._external[digest] = external

    def _drop_external(self, digest: str) -> None:
        with self._lock:
            self._external.pop(digest, None)
        self._external_path(digest).unlink(missing_ok=True)

    def _read_external(
        self, layout: ChunkLayout, index: int, offset: int, view: memoryview
    ) -> int | None:
        with self._lock:
            external = self._external.get(layout.digest)
        if external is None:
            return None
        try:
            fd = os.open(external.path, os.O_RDONLY)
        except OSError:
            self._drop_external(layout.digest)
            return None
        try:
            stat = os.fstat(fd)
            if (stat.st_size, stat.st_mtime_ns) != (external.size, external.mtime_ns):
                self._drop_external(layout.digest)  # the user changed their copy
                return None
            start = index * layout.chunk_size
            check = (layout.digest, index, stat.st_mtime_ns)
            with self._lock:
                trusted = check in self._external_verified
            if trusted:
                return os.preadv(fd, [view], start + offset)
            data = os.pread(fd, layout.chunk_length(index), start)
            if not layout.verify(index, data):
                log.warning(
                    "external copy %s of blob %s differs; refetching", external.path, layout.digest
                )
                self._drop_external(layout.digest)
                return None
            with self._lock:
                self._external_verified.add(check)
            got = min(len(view), len(data) - offset)
            view[:got] = data[offset : offset + got]
            return got
        finally:
            os.close(fd)

    def store(self, layout: ChunkLayout, index: int, data: bytes | bytearray | memoryview) -> None:
        """Keep a chunk the caller has verified against ``layout``."""
        self._write_atomically(self._chunk_path(layout.digest, index), data)
        key = (layout.digest, index)
        with self._lock:
            if key in self._lru:
                self._total -= self._lru.pop(key)
            self._lru[key] = len(data)
            self._total += len(data)
            self._verified.add(key)
        self._evict_if_needed()

    def read(self, layout: ChunkLayout, index: int, offset: int, view: memoryview) -> int | None:
        """Copy chunk bytes from ``offset`` into ``view``; ``None`` when the chunk is absent.

        The first read of a chunk in this process verifies the whole chunk; a
        damaged chunk is removed and reported absent, to be fetched again.
        """
        key = (layout.digest, index)
        path = self._chunk_path(layout.digest, index)
        with self._lock:
            known = key in self._lru
            verified = key in self._verified
            if known:
                self._lru.move_to_end(key)
        if not known:
            return self._read_external(layout, index, offset, view)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            self._forget(key)  # evicted by another process sharing the cache
            return None
        try:
            if not verified:
                data = _read_all(fd)
                if not layout.verify(index, data):
                    log.warning(
                        "cached chunk %d of blob %s is corrupt; refetching", index, layout.digest
                    )
                    self._forget(key)
                    path.unlink(missing_ok=True)
                    return None
                with self._lock:
                    self._verified.add(key)
                with contextlib.suppress(OSError):
                    os.utime(fd)  # recency for the next process's scan
                got = min(len(view), len(data) - offset)
                view[:got] = data[offset : offset + got]
                return got
            return os.preadv(fd, [view], offset)
        finally:
            os.close(fd)

    def _forget(self, key: Key) -> None:
        with self._lock:
            size = self._lru.pop(key, None)
            if size is not None:
                self._total -= size
            self._verified.discard(key)

    # -- pins and eviction ----------------------------------------------------

    def pin(self, digest: str) -> None:
        with self._lock:
            self._pins[digest] += 1

    def unpin(self, digest: str) -> None:
        with self._lock:
            self._pins[digest] -= 1
            if self._pins[digest] <= 0:
                del self._pins[digest]

    @property
    def total_bytes(self) -> int:
        with self._lock:
            return self._total

    def _evict_if_needed(self) -> None:
        with self._lock:
            if self._total <= self.max_bytes:
                return
        self.evict_to(self.max_bytes)

    def evict_to(self, target: int) -> int:
        """Drop least-recently-used unpinned chunks until at most ``target`` bytes remain."""
        victims: list[Key] = []
        with self._lock:
            for key, size in self._lru.items():
                if self._total <= target:
                    break
                if key[0] in self._pins:
                    continue
                victims.append(key)
                self._total -= size
            for key in victims:
                del self._lru[key]
                self._verified.discard(key)
        for digest, index in victims:
            self._chunk_path(digest, index).unlink(missing_ok=True)
        for digest in {digest for digest, _ in victims}:
            with contextlib.suppress(OSError):  # not empty: other chunks of it remain
                self._chunk_path(digest, 0).parent.rmdir()
        return len(victims)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "bytes": self._total,
                "max_bytes": self.max_bytes,
                "chunks": len(self._lru),
                "blobs": len({digest for digest, _ in self._lru}),
                "pinned_blobs": len(self._pins),
            }

    # -- writing --------------------------------------------------------------

    def _write_atomically(self, path: Path, data: bytes | bytearray | memoryview) -> None:
        tmp = self.root / "tmp" / f"{uuid.uuid4().hex}.part"
        try:
            with open(tmp, "wb") as out:
                out.write(data)
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            if exc.errno == 28:  # ENOSPC
                raise NoSpace(f"cache disk full at {self.root}") from exc
            raise


def _read_all(fd: int) -> bytes:
    size = os.fstat(fd).st_size
    return os.pread(fd, size, 0)
