"""The machine-wide, content-addressed, verified chunk cache (SPEC §5)."""

from artfs.cache.chunks import ChunkCache, default_cache_dir
from artfs.cache.layout import ChunkLayout

__all__ = ["ChunkCache", "ChunkLayout", "default_cache_dir"]
