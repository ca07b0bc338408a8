"""``upload_blobs``: local files to the registry, in parallel, retried.

An upload is verified by the registry against its digest; a file that
changed since it was hashed is refused there, by name.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from artfs.client.protocol import RegistryAPI
from artfs.transfer.batches import small_batches
from artfs.transfer.parallel import DEFAULT_WORKERS, parallel, retrying
from artfs.transfer.progress import Progress

__all__ = ["UploadBlob", "upload_blobs"]


@dataclass(frozen=True)
class UploadBlob:
    """A blob to upload and the local file that holds its bytes."""

    digest: str
    size: int
    path: Path


def upload_blobs(
    registry: RegistryAPI,
    blobs: Sequence[UploadBlob],
    progress: Progress | None = None,
    workers: int = DEFAULT_WORKERS,
) -> int:
    """Upload each blob from its local file; returns the bytes sent.

    Small blobs go many per request (``upload_blob_batch``), the way walks
    fetch them: one request per 4 KiB file cost more than its bytes.
    """

    def one(blob: UploadBlob) -> int:
        def attempt() -> int:
            with open(blob.path, "rb") as stream:
                registry.upload_blob(blob.digest, stream, blob.size)
            return blob.size

        sent = retrying(attempt, f"upload of {blob.path}")
        if progress is not None:
            progress.update(sent)
        return sent

    def batch(group: list[UploadBlob]) -> int:
        contents = [(blob.digest, blob.path.read_bytes()) for blob in group]
        if any(len(data) != blob.size for (_, data), blob in zip(contents, group, strict=True)):
            # Changed since it was hashed: one by one, so the registry names the file.
            return sum(one(blob) for blob in group)
        retrying(
            lambda: registry.upload_blob_batch(contents), f"upload of {len(contents)} small files"
        )
        sent = sum(blob.size for blob in group)
        if progress is not None:
            progress.update(sent)
        return sent

    by_digest = {blob.digest: blob for blob in blobs}
    batches, singles = small_batches(
        (blob.digest, blob.size, blob.path) for blob in by_digest.values()
    )
    # Big blobs first: the pool stays busy to the end instead of waiting on one straggler.
    ordered = sorted((by_digest[digest] for digest, _, _ in singles), key=lambda b: -b.size)
    jobs = [functools.partial(one, blob) for blob in ordered]
    jobs += [
        functools.partial(batch, [by_digest[digest] for digest, _, _ in group]) for group in batches
    ]
    return sum(parallel(lambda job: job(), jobs, workers))
