"""Which blob store a registry runs on, from ``artfs serve --store``.

The embedded default is a folder in the data folder; ``s3://BUCKET/PREFIX`` is
any S3-compatible object store, reached as the AWS tools reach it (endpoint,
region and credentials from their environment and files). Nothing else is
taken: a store is a real engine, never one of our own.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from artfs.errors import InvalidInput
from artfs.store.local import LocalBlobStore

if TYPE_CHECKING:
    from artfs.store.s3 import S3BlobStore

__all__ = ["blob_store_url", "open_blob_store"]


def blob_store_url(text: str) -> str:
    """``--store``: ``s3://BUCKET[/PREFIX]``, checked before anything starts."""
    parts = urlsplit(text.strip())
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise InvalidInput(f"--store takes s3://BUCKET/PREFIX, not {text!r}")
    prefix = parts.path.strip("/")
    return f"s3://{parts.netloc}/{prefix}" if prefix else f"s3://{parts.netloc}"


def open_blob_store(url: str | None, blob_dir: Path) -> LocalBlobStore | S3BlobStore:
    """The store at ``url`` (``s3://…``), or the folder ``blob_dir`` when there is none."""
    if url is None:
        return LocalBlobStore(blob_dir)
    from artfs.store.s3 import S3BlobStore  # boto3 only loads for registries that use it

    return S3BlobStore.from_url(blob_store_url(url))
