"""Server-side blob stores: where committed bytes live, addressed by sha256."""

from artfs.store.base import BlobInfo, BlobStore, BlobWriter
from artfs.store.local import LocalBlobStore

__all__ = ["BlobInfo", "BlobStore", "BlobWriter", "LocalBlobStore"]
