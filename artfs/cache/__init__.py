"""The machine-wide, content-addressed, verified chunk cache (docs/design.md, "The cache")."""

from artfs.cache.chunks import ChunkCache
from artfs.cache.layout import ChunkLayout
from artfs.cache.ondisk import default_cache_dir

__all__ = ["ChunkCache", "ChunkLayout", "default_cache_dir"]
