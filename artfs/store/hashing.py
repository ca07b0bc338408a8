"""Hashing an upload's pieces on two cores while they are stored: shared by every store."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent import futures

from artfs.digests import BlobHasher
from artfs.errors import DigestMismatch
from artfs.store.base import BlobInfo

__all__ = ["hash_and_store", "verified"]

#: Enough threads for several large uploads at once; they only hash.
_HASH_HELPER = futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="artfs-hash")

Piece = bytes | memoryview


def _each(function: Callable[[Piece], None], pieces: Sequence[Piece]) -> None:
    for piece in pieces:
        function(piece)


def hash_and_store(
    hasher: BlobHasher, pieces: Sequence[Piece], store: Callable[[Piece], None]
) -> None:
    """Feed each piece, in order, to ``hasher`` and to ``store``.

    The whole-blob sha256 runs in a helper thread beside the per-chunk hash and
    ``store`` (hashlib releases the GIL): on two cores a large upload then costs
    one sha256 pass of wall time, not two.
    """
    whole = _HASH_HELPER.submit(_each, hasher.update_whole, pieces)
    try:
        for piece in pieces:
            hasher.update_chunks(piece)
            store(piece)
    finally:
        futures.wait([whole])  # the hasher must be left alone before anything else
    whole.result()


def verified(hasher: BlobHasher, expected_digest: str) -> BlobInfo:
    """Close ``hasher`` and describe the blob, or raise ``DigestMismatch``."""
    digest = hasher.finish()
    if digest != expected_digest:
        raise DigestMismatch(f"uploaded bytes hash to {digest}, not the claimed {expected_digest}")
    return BlobInfo(
        digest=digest,
        size=hasher.size,
        chunk_size=hasher.chunk_size,
        chunk_digests=b"".join(hasher.chunk_digests),
        chunk_hash=hasher.chunk_hash,
    )
