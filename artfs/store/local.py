"""Blobs as files under a directory: ``<root>/sha256/ab/<digest>``.

A blob is written to ``<root>/tmp/`` first, fsynced, verified and then renamed
into place, so a blob is either absent or whole under its final name, whatever
crashes: the bytes are on disk before the name is.

What a crash can still undo is the rename itself, until the shard directory is
fsynced. ``commit()`` fsyncs it at once; ``commit(durable=False)`` leaves that
to ``sync_published``, so that blobs published at about the same time share one
journal commit (on ext4 and XFS the first directory fsync commits every rename
made so far; the others then find nothing left to do). Until then the blob may
be read, and is whole, but a crash may make it absent again, as if its upload
had never finished; whoever records the blob (the registry's blob row) must
therefore wait for ``sync_published``.

A blob whose bytes no longer hash to its digest (found by ``artfs verify``) is
renamed into ``<root>/quarantine/``: it is then absent to every reader, with
an error that says why, and the next upload of that digest publishes good
bytes under the usual name and drops the quarantined copy.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections.abc import Collection, Iterator, Sequence
from io import RawIOBase
from pathlib import Path

from artfs.digests import CHUNK_SIZE, BlobHasher
from artfs.errors import Corrupt, NotFound, TooLarge, Transient
from artfs.store.base import RANGE_PIECE, BlobInfo, check_range
from artfs.store.direct import BlockWriter
from artfs.store.hashing import hash_and_store, verified

__all__ = ["LocalBlobStore"]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _LocalBlobWriter:
    def __init__(self, store: LocalBlobStore, expected_digest: str) -> None:
        self._store = store
        self._expected = expected_digest
        self._tmp = store.root / "tmp" / f"{uuid.uuid4().hex}.part"
        self._file = BlockWriter(self._tmp)
        self._hasher = BlobHasher(CHUNK_SIZE)

    def write(self, data: bytes | memoryview) -> None:
        self._hasher.update(data)
        self._file.write(data)

    def write_many(self, pieces: Sequence[bytes | memoryview]) -> None:
        hash_and_store(self._hasher, pieces, self._file.write)

    def commit(self, *, durable: bool = True) -> BlobInfo:
        try:
            info = verified(self._hasher, self._expected)
            # The bytes must be on disk before the name is: after a crash the final
            # name may then be missing, but never points at a partly written file.
            self._file.finish()
            self._file.close()
            final = self._store.path_for(info.digest)
            self._store.ensure_shard(final.parent)
            os.replace(self._tmp, final)
            if durable:
                _fsync_dir(final.parent)
            # Good bytes are back: a quarantined copy has nothing left to tell.
            self._store.quarantine_path(info.digest).unlink(missing_ok=True)
        except BaseException:
            self.abort()
            raise
        return info

    def abort(self) -> None:
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self._tmp.unlink()


def _pieces_of(stored: RawIOBase, start: int, end: int) -> Iterator[bytes]:
    with stored:
        stored.seek(start)
        left = end - start
        while left > 0 and (piece := stored.read(min(left, RANGE_PIECE))):
            left -= len(piece)
            yield piece


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "tmp").mkdir(parents=True, exist_ok=True)
        (root / "sha256").mkdir(parents=True, exist_ok=True)
        (root / "quarantine").mkdir(parents=True, exist_ok=True)
        _fsync_dir(root)
        self._shards_ready: set[str] = set()
        self._shards_lock = threading.Lock()

    def discard_interrupted_uploads(self) -> int:
        """Remove what uploads a crash interrupted left (never valid blobs); say how many.

        Only while no process serves this store: with several workers, one
        starting up would otherwise delete another's upload in flight.
        """
        removed = 0
        for stale in (self.root / "tmp").iterdir():
            stale.unlink(missing_ok=True)
            removed += 1
        return removed

    def ensure_shard(self, shard: Path) -> None:
        """Create ``shard`` if need be, with its own entry durable, once per process.

        Fsyncing a blob's shard directory only helps if the shard itself
        survives; the lock keeps a second uploader from going on while the first
        is still between the ``mkdir`` and its fsync.
        """
        if shard.name in self._shards_ready:
            return
        with self._shards_lock:
            if shard.name not in self._shards_ready:
                shard.mkdir(exist_ok=True)
                _fsync_dir(shard.parent)
                self._shards_ready.add(shard.name)

    def path_for(self, digest: str) -> Path:
        return self.root / "sha256" / digest[:2] / digest

    def quarantine_path(self, digest: str) -> Path:
        return self.root / "quarantine" / digest

    def _absent(self, digest: str) -> NotFound | Corrupt:
        """The error for a blob that is not under its name: quarantined, or never stored.

        A quarantined blob is ``Corrupt`` (a 500 that says why; ``EIO`` in a mount):
        a version names it, so "not found" would be a lie about the registry's state.
        """
        if self.quarantined(digest):
            return Corrupt(
                f"blob {digest} failed verification and is quarantined; "
                "uploading the same bytes again (a re-push) restores it"
            )
        return NotFound(f"blob {digest} is not in the store")

    def writer(self, expected_digest: str) -> _LocalBlobWriter:
        return _LocalBlobWriter(self, expected_digest)

    def exists(self, digest: str) -> bool:
        return self.path_for(digest).is_file()

    def size(self, digest: str) -> int:
        try:
            return self.path_for(digest).stat().st_size
        except FileNotFoundError:
            raise self._absent(digest) from None

    def read_range(self, digest: str, start: int, end: int) -> Iterator[bytes]:
        check_range(start, end)
        return _pieces_of(self.open_stored(digest), start, end)

    def presign_get(self, digest: str, expires: float) -> None:
        return None  # the registry serves these bytes itself (``sendfile``)

    def local_path(self, digest: str) -> Path:
        path = self.path_for(digest)
        if not path.is_file():
            raise self._absent(digest)
        return path

    def read_many(self, digests: Sequence[str], max_bytes: int) -> bytes:
        """The bytes of each blob, back to back in order; at most ``max_bytes`` in all.

        Plain ``os`` calls, no stat or buffered file per blob: a walk over
        small files asks for thousands of them, and per-blob overhead, not the
        bytes, is what such a walk costs the registry.
        """
        pieces: list[bytes] = []
        total = 0
        for digest in digests:
            try:
                fd = os.open(self.path_for(digest), os.O_RDONLY)
            except FileNotFoundError:
                raise self._absent(digest) from None
            try:
                size = os.fstat(fd).st_size
                total += size
                if total > max_bytes:
                    raise TooLarge(f"a blob batch returns at most {max_bytes} bytes")
                data = os.pread(fd, size, 0)
            finally:
                os.close(fd)
            if len(data) != size:
                raise Transient(f"blob {digest} changed size while read")
            pieces.append(data)
        return b"".join(pieces)

    def sync_published(self, digests: Collection[str]) -> None:
        for shard in sorted({self.path_for(digest).parent for digest in digests}):
            _fsync_dir(shard)

    def delete(self, digest: str) -> None:
        self.path_for(digest).unlink(missing_ok=True)

    def open_stored(self, digest: str) -> RawIOBase:
        try:
            return open(self.path_for(digest), "rb", buffering=0)
        except FileNotFoundError:
            raise self._absent(digest) from None

    def quarantine(self, digest: str) -> bool:
        # The rename is durable before the caller forgets the blob's row: after a
        # crash the bad bytes are never back under their name.
        try:
            os.replace(self.path_for(digest), self.quarantine_path(digest))
        except FileNotFoundError:
            return False
        _fsync_dir(self.path_for(digest).parent)
        _fsync_dir(self.root / "quarantine")
        return True

    def quarantined(self, digest: str) -> bool:
        return self.quarantine_path(digest).is_file()

    def iter_digests(self) -> Iterator[str]:
        for shard in sorted((self.root / "sha256").iterdir()):
            for blob in sorted(shard.iterdir()):
                yield blob.name
