"""The blob-store interface the registry needs: a local folder (``local.py``) or an
S3-compatible bucket (``s3.py``) behind it.

A store only holds bytes by digest. It knows nothing of artifacts or versions;
which blobs are referenced is the registry's business (and gc's).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from io import RawIOBase
from pathlib import Path
from typing import Protocol

from artfs.errors import InvalidInput

__all__ = ["RANGE_PIECE", "BlobInfo", "BlobStore", "BlobWriter", "check_range"]

#: The largest piece ``BlobStore.read_range`` yields: one chunk (``CHUNK_SIZE``).
RANGE_PIECE = 1 << 20


def check_range(start: int, end: int) -> None:
    if not 0 <= start <= end:
        raise InvalidInput(f"byte range [{start}, {end}) is not a range")


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

    def size(self, digest: str) -> int:
        """The blob's length in bytes (``NotFound``; ``Corrupt`` if quarantined)."""
        ...

    def read_range(self, digest: str, start: int, end: int) -> Iterator[bytes]:
        """The bytes ``[start, end)`` of a blob, streamed in pieces of at most 1 MiB.

        ``end`` past the blob's end reads up to its end; ``start`` at or past it
        reads nothing. Unverified, like ``open_stored``: the caller checks the
        chunk digests. ``NotFound`` or ``Corrupt`` (quarantined) are raised by
        the call itself, before any piece; iterate to the end or ``close()`` the
        iterator to let go of the file or connection.
        """
        ...

    def presign_get(self, digest: str, expires: float) -> str | None:
        """A URL that GETs the blob's bytes from the store itself for ``expires`` seconds,
        without credentials; a ``Range`` header sent with it is honoured (it is not
        signed into the URL). ``None`` where the store cannot hand out URLs.

        The URL is made without asking the store: it does not say the blob exists.
        """
        ...

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
