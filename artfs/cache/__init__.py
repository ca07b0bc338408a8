"""The machine-wide, content-addressed, verified chunk cache (SPEC §5)."""

from artfs.cache.chunks import ChunkCache, ChunkLayout, default_cache_dir

__all__ = ["ChunkCache", "ChunkLayout", "default_cache_dir"]
