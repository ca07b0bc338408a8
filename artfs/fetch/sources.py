"""Where a blob's bytes come from: ``BlobSource``, and the registry as the first source.

The fetch layer decides what to fetch and when (``ChunkFetcher``,
``SmallBlobBatches``), verifies what arrives against the blob's digests and
keeps it in the cache; a source only answers "the chunks of this blob", "these
bytes of this blob" and "these small blobs, back to back". So another place to
read blobs from (a URI reference, a presigned object-store URL) is another
source given to the same fetcher, not another fetcher.

Every method blocks: the fetch layer calls them from worker threads, never on
the trio thread. Errors are the domain's: ``Transient`` for what is worth a
retry (the fetcher retries ranges until its deadline), another ``ArtfsError``
or an ``OSError`` for the rest.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Protocol

from artfs.cache.layout import ChunkLayout
from artfs.client.http import RegistryClient
from artfs.client.protocol import BlobRange, RegistryAPI
from artfs.fetch.fetcher import layout_from_answer
from artfs.references import ReferenceRead, hash_reference, open_reference

__all__ = ["BlobRange", "BlobSource", "ReferenceSource", "RegistrySource"]


class BlobSource(Protocol):
    def chunk_layout(self, digest: str) -> ChunkLayout:
        """The blob's size and chunk digests, which whatever it sends is checked against."""
        ...

    def open_range(self, digest: str, start: int, end: int) -> AbstractContextManager[BlobRange]:
        """Bytes ``[start, end)`` of a blob; the fetcher reads them a chunk at a time
        straight into chunk buffers, so a source must not buffer them again."""
        ...

    def open_batch(
        self, digests: Sequence[str], sizes: Sequence[int], timeout: float
    ) -> AbstractContextManager[Iterator[memoryview | None]]:
        """Several small blobs in one request: each one's bytes in order, ``None`` (and no
        more) if the answer breaks off. Unverified: the caller checks each digest."""
        ...

    def in_workers(self, digest: str) -> bool:
        """Whether the fetch workers can read this blob's ranges themselves: from the
        registry the mount's configuration names (``artfs.fetch.workers``)."""
        ...

    def close(self) -> None:
        """Let go of connections; the source may still be used afterwards."""
        ...


class RegistrySource:
    """The registry's own blobs, through any ``RegistryAPI``: layouts from ``blob_chunks``,
    ranges from ``open_range``, batches from ``open_blob_batch``.

    ``RegistryClient.open_range`` is its ``RangeReader`` (``http.client``, read straight
    into the buffers), so the mount's hot path is what it was; an in-process registry
    serves a test the same way. The registry stays its owner's: the daemon closes it.
    """

    def __init__(self, registry: RegistryAPI) -> None:
        self.registry = registry

    def chunk_layout(self, digest: str) -> ChunkLayout:
        return layout_from_answer(digest, self.registry.blob_chunks(digest))

    def open_range(self, digest: str, start: int, end: int) -> AbstractContextManager[BlobRange]:
        return self.registry.open_range(digest, start, end)

    def open_batch(
        self, digests: Sequence[str], sizes: Sequence[int], timeout: float
    ) -> AbstractContextManager[Iterator[memoryview | None]]:
        return self.registry.open_blob_batch(digests, sizes, timeout)

    def in_workers(self, digest: str) -> bool:
        # Only a registry over HTTP: a test's in-process registry has no address to give.
        return isinstance(self.registry, RegistryClient)

    def close(self) -> None:
        """Nothing of its own to let go: the connections are the registry's, closed with it."""


class ReferenceSource:
    """Another source's blobs, and the references told of (``add``), read from their own
    URIs: a reference's chunks go through the same fetcher, cache and verification as a
    blob's, by its content digest.

    A reference's layout is its object streamed once and hashed (``hash_reference``,
    checked against the recorded digest), unless it is one chunk (implied by the
    digest) or the cache kept it; its chunks are then read by ranges, each answer
    checked against the reference's size and pin, each chunk against its digest.
    """

    def __init__(self, blobs: BlobSource) -> None:
        self.blobs = blobs
        #: Content digest → the reference to read it from (plain dict operations only:
        #: worker threads read it while the trio thread adds to it).
        self._references: dict[str, ReferenceRead] = {}

    def add(self, digest: str, reference: ReferenceRead) -> None:
        self._references[digest] = reference

    def chunk_layout(self, digest: str) -> ChunkLayout:
        reference = self._references.get(digest)
        if reference is None:
            return self.blobs.chunk_layout(digest)
        return hash_reference(reference)

    def open_range(self, digest: str, start: int, end: int) -> AbstractContextManager[BlobRange]:
        reference = self._references.get(digest)
        if reference is None:
            return self.blobs.open_range(digest, start, end)
        return open_reference(reference, start, end)

    def open_batch(
        self, digests: Sequence[str], sizes: Sequence[int], timeout: float
    ) -> AbstractContextManager[Iterator[memoryview | None]]:
        # Only small registry blobs are batched (a reference is never a sibling).
        return self.blobs.open_batch(digests, sizes, timeout)

    def in_workers(self, digest: str) -> bool:
        return digest not in self._references and self.blobs.in_workers(digest)

    def close(self) -> None:
        self.blobs.close()
