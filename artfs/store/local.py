"""Blobs as files under a directory: ``<root>/sha256/ab/<digest>``.

A blob is written to ``<root>/tmp/`` first, fsynced, verified and then renamed
into place (and its directory fsynced), so a blob is either absent or whole
under its final name, whatever crashes.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from artfs.digests import CHUNK_SIZE, BlobHasher
from artfs.errors import DigestMismatch, NotFound
from artfs.store.base import BlobInfo

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
        self._file = open(self._tmp, "wb")  # noqa: SIM115 - closed by commit/abort
        self._hasher = BlobHasher(CHUNK_SIZE)

    def write(self, data: bytes | memoryview) -> None:
        self._hasher.update(data)
        self._file.write(data)

    def commit(self) -> BlobInfo:
        try:
            digest = self._hasher.finish()
            if digest != self._expected:
                raise DigestMismatch(
                    f"uploaded bytes hash to {digest}, not the claimed {self._expected}"
                )
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            final = self._store.path_for(digest)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self._tmp, final)
            _fsync_dir(final.parent)
        except BaseException:
            self.abort()
            raise
        return BlobInfo(
            digest=digest,
            size=self._hasher.size,
            chunk_size=self._hasher.chunk_size,
            chunk_digests=b"".join(self._hasher.chunk_digests),
        )

    def abort(self) -> None:
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self._tmp.unlink()


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "tmp").mkdir(parents=True, exist_ok=True)
        (root / "sha256").mkdir(parents=True, exist_ok=True)
        # Leftovers of uploads a crash interrupted are never valid blobs.
        for stale in (root / "tmp").iterdir():
            stale.unlink(missing_ok=True)

    def path_for(self, digest: str) -> Path:
        return self.root / "sha256" / digest[:2] / digest

    def writer(self, expected_digest: str) -> _LocalBlobWriter:
        return _LocalBlobWriter(self, expected_digest)

    def exists(self, digest: str) -> bool:
        return self.path_for(digest).is_file()

    def local_path(self, digest: str) -> Path:
        path = self.path_for(digest)
        if not path.is_file():
            raise NotFound(f"blob {digest} is not in the store")
        return path

    def delete(self, digest: str) -> None:
        self.path_for(digest).unlink(missing_ok=True)

    def iter_digests(self) -> Iterator[str]:
        for shard in sorted((self.root / "sha256").iterdir()):
            for blob in sorted(shard.iterdir()):
                yield blob.name
