"""``warm``: fill the machine's chunk cache with whole blobs before anyone reads them.

``artfs prefetch`` and ``LoggedArtifact.prefetch`` use the mount's own fetch
path (``ChunkFetcher`` over the registry): ranged requests of whole request
groups, many at once, every chunk verified against its digest before it is
stored in the cache every mount and pull on the machine reads
(docs/design.md, "Warming the cache"). Chunks already cached are checked, not
fetched again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import trio

from artfs.cache.chunks import ChunkCache
from artfs.client.protocol import RegistryAPI
from artfs.fetch.fetcher import ChunkFetcher
from artfs.fetch.sources import RegistrySource

__all__ = ["BlobToWarm", "warm"]

#: Blobs warmed at once; the fetcher's own limit bounds the requests.
PARALLEL_BLOBS = 4


@dataclass(frozen=True)
class BlobToWarm:
    """A blob of ``size`` bytes, or only its bytes ``start`` to ``end`` (a traced range)."""

    digest: str
    size: int
    start: int = 0
    end: int | None = None

    @property
    def length(self) -> int:
        end = self.size if self.end is None else min(self.end, self.size)
        return max(end - self.start, 0)


def warm(
    registry: RegistryAPI,
    cache: ChunkCache,
    blobs: Sequence[BlobToWarm],
    progress: Callable[[int], None] | None = None,
) -> int:
    """Make every chunk of ``blobs`` cached and verified, about in their order; return the
    bytes they span.

    ``progress`` is called with each item's length as it is done.
    """
    unique = list(dict.fromkeys(blob for blob in blobs if blob.length > 0))

    async def main() -> None:
        limiter = trio.CapacityLimiter(PARALLEL_BLOBS)
        async with trio.open_nursery() as nursery:
            fetcher = ChunkFetcher(RegistrySource(registry), cache, nursery)
            async with trio.open_nursery() as blobs_nursery:
                for blob in unique:
                    blobs_nursery.start_soon(one, fetcher, limiter, blob)
            nursery.cancel_scope.cancel()

    async def one(fetcher: ChunkFetcher, limiter: trio.CapacityLimiter, blob: BlobToWarm) -> None:
        async with limiter:
            layout = await fetcher.layout(blob.digest, blob.size)
            # The fetcher sends runs of missing chunks as ranged GETs of a request's
            # worth each, as many at once as its limit allows, and verifies each chunk.
            await fetcher.ensure(layout, layout.chunks_for(blob.start, blob.length))
        if progress is not None:
            progress(blob.length)

    trio.run(main)
    return sum(blob.length for blob in unique)
