"""Server-side blob stores: where committed bytes live, addressed by sha256.

``artfs.store.s3.S3BlobStore`` (an S3-compatible bucket) is imported from its own
module: it needs boto3, which only the ``s3`` extra installs.
"""

from artfs.store.base import BlobInfo, BlobStore, BlobWriter
from artfs.store.local import LocalBlobStore

__all__ = ["BlobInfo", "BlobStore", "BlobWriter", "LocalBlobStore"]
