"""The blob-store interface the registry needs, so that an S3-compatible store can follow.

A store only holds bytes by digest. It knows nothing of artifacts or versions;
which blobs are referenced is the registry's business (and gc's).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from io import RawIOBase
from pathlib import Path
from typing import Protocol

__all__ = ["BlobInfo", "BlobStore", "BlobWriter"]


@dataclass(frozen=True)
class BlobInfo:
    digest: str
    size: int
    chunk_size: int
    chunk_digests: bytes  # concatenated 32-byte digests, one per chunk
    chunk_hash: str  # which hash made them (``artfs.digests.CHUNK_HASHES``)


class BlobWriter(Protocol):
    """An upload in progress; nothing is visible under the digest until ``commit``."""

    def write(self, data: bytes | memoryview) -> None: ...

    def write_many(self, pieces: Sequence[bytes | memoryview]) -> None:
        """``write`` each piece in order; may spread the hashing over threads."""
        ...

    def commit(self, *, durable: bool = True) -> BlobInfo:
        """Verify the bytes hash to the expected digest, then publish them atomically.

        Raises ``DigestMismatch`` (and discards the bytes) when they do not. The
        blob is whole under its name as soon as it is there at all; with
        ``durable=False`` its publication may still be lost in a crash until
        ``BlobStore.sync_published`` has returned for it, which lets one sync
        cover many blobs.
        """
        ...

    def abort(self) -> None: ...


class BlobStore(Protocol):
    def writer(self, expected_digest: str) -> BlobWriter: ...

    def exists(self, digest: str) -> bool: ...

    def local_path(self, digest: str) -> Path | None:
        """A path the server can hand to ``sendfile``, when the store is on local disk."""
        ...

    def read_many(self, digests: Sequence[str], max_bytes: int) -> bytes:
        """Several whole blobs back to back, in order (``NotFound``, ``TooLarge`` past
        ``max_bytes``): the bytes of a blob batch."""
        ...

    def sync_published(self, digests: Collection[str]) -> None:
        """Make the publication of these blobs (``commit(durable=False)``) crash-safe."""
        ...

    def delete(self, digest: str) -> None: ...

    def open_stored(self, digest: str) -> RawIOBase:
        """The stored bytes as they are on disk, unverified, for re-hashing them
        (``NotFound`` if absent; ``Corrupt`` if quarantined, as every read of them)."""
        ...

    def quarantine(self, digest: str) -> bool:
        """Move a blob's bytes aside so they are never served again; ``False`` if absent.

        A later upload of the same digest publishes good bytes again (and drops the
        quarantined copy)."""
        ...

    def quarantined(self, digest: str) -> bool: ...

    def iter_digests(self) -> Iterator[str]: ...
