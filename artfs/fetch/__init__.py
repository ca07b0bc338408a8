"""Getting blob chunks into the cache: parallel ranged fetches, single flight, read-ahead."""

from artfs.fetch.fetcher import ChunkFetcher
from artfs.fetch.readahead import ReadAhead

__all__ = ["ChunkFetcher", "ReadAhead"]
