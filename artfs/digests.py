"""Content digests: whole-blob sha256, per-chunk digests, and version digests.

A blob is identified by the sha256 of its bytes. When a blob is stored, the
digest of every ``CHUNK_SIZE`` slice is recorded too, so that a reader that
fetched only some ranges can still verify every byte it hands out. A version's
digest is the sha256 over its sorted manifest, so identical content gives an
identical digest whatever order the files were added in.

Chunk digests are BLAKE3 (``CHUNK_HASH``): every chunk a mount hands out is
hashed each time it comes from the network or the cache's disk, so the chunk
hash is paid on every read, and BLAKE3
hashes several times faster per core than sha256 (docs/benchmarks.md,
"Measurements behind design choices"). Blobs stored before keep their sha256
chunk digests; each layout names its hash (``CHUNK_HASHES``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

from blake3 import blake3

from artfs.errors import InvalidInput

__all__ = [
    "BLOB_HASH",
    "CHUNK_HASH",
    "CHUNK_HASHES",
    "CHUNK_SIZE",
    "DIGEST_PATTERN",
    "BlobHasher",
    "check_chunk_hash",
    "check_digest",
    "hash_file",
    "version_digest",
]

#: Granularity of per-chunk digests, and so of verified partial reads.
CHUNK_SIZE = 1 << 20

#: The digest grammar, also declared in the API document.
DIGEST_PATTERN = r"^[0-9a-f]{64}$"
_DIGEST_RE = re.compile(DIGEST_PATTERN)


class _Hasher(Protocol):
    def update(self, data: Any, /) -> object: ...
    def digest(self) -> bytes: ...


#: The hash of a blob's identity; also the chunk hash of every blob stored before
#: chunk hashes were named, and of a one-chunk blob, whose chunk digest is its own.
BLOB_HASH = "sha256"
#: Per-chunk hash of the blobs stored from now on.
CHUNK_HASH = "blake3"
#: Every per-chunk hash a layout may name; all give 32-byte digests.
CHUNK_HASHES: dict[str, Callable[[], _Hasher]] = {"blake3": blake3, BLOB_HASH: hashlib.sha256}


def check_chunk_hash(value: object) -> str:
    if not isinstance(value, str) or value not in CHUNK_HASHES:
        raise InvalidInput(f"unknown chunk hash {value!r}: expected one of {sorted(CHUNK_HASHES)}")
    return value


def check_digest(value: object) -> str:
    if not isinstance(value, str) or not _DIGEST_RE.fullmatch(value):
        raise InvalidInput(f"invalid sha256 digest {value!r}: expected 64 lowercase hex digits")
    return value


@dataclass
class BlobHasher:
    """Hashes a stream fed in arbitrary pieces, whole and per chunk, in one pass.

    ``update`` does both; ``update_whole`` and ``update_chunks`` do one each and
    touch disjoint state, so two threads may run them side by side (hashlib and
    blake3 release the GIL), each fed every piece in order.
    """

    chunk_size: int = CHUNK_SIZE
    chunk_hash: str = CHUNK_HASH
    size: int = 0
    chunk_digests: list[bytes] = field(default_factory=list)
    _whole: hashlib._Hash = field(default_factory=hashlib.sha256)
    _new_chunk: Callable[[], _Hasher] = field(init=False, repr=False)
    _chunk: _Hasher = field(init=False, repr=False)
    _chunk_fill: int = 0

    def __post_init__(self) -> None:
        self._new_chunk = CHUNK_HASHES[self.chunk_hash]
        self._chunk = self._new_chunk()

    def update(self, data: bytes | memoryview) -> None:
        self.update_whole(data)
        self.update_chunks(data)

    def update_whole(self, data: bytes | memoryview) -> None:
        self._whole.update(data)
        self.size += len(data)

    def update_chunks(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            take = min(len(view), self.chunk_size - self._chunk_fill)
            self._chunk.update(view[:take])
            self._chunk_fill += take
            view = view[take:]
            if self._chunk_fill == self.chunk_size:
                self.chunk_digests.append(self._chunk.digest())
                self._chunk = self._new_chunk()
                self._chunk_fill = 0

    def finish(self) -> str:
        """Close the last partial chunk and return the whole digest (hex)."""
        if self._chunk_fill:
            self.chunk_digests.append(self._chunk.digest())
            self._chunk = self._new_chunk()
            self._chunk_fill = 0
        return self._whole.hexdigest()


def hash_file(stream: BinaryIO, block_size: int = 4 << 20) -> tuple[str, int]:
    """sha256 (hex) and size of a stream, read in blocks: never whole in memory."""
    hasher = hashlib.sha256()
    size = 0
    buffer = bytearray(block_size)
    view = memoryview(buffer)
    while True:
        got = stream.readinto(view)  # type: ignore[attr-defined]
        if not got:
            return hasher.hexdigest(), size
        hasher.update(view[:got])
        size += got


def version_digest(entries: Iterable[tuple[str, str, int]]) -> str:
    """Digest of a manifest given as (path, digest-or-uri, size), in any order."""
    hasher = hashlib.sha256()
    for path, digest, size in sorted(entries):
        hasher.update(f"{path}\x00{digest}\x00{size}\n".encode())
    return hasher.hexdigest()
