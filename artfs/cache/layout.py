"""``ChunkLayout``: how a blob is cut into chunks, with the digest of each.

A blob's chunk digests are recorded when it is committed; every chunk the
cache hands out is verified against them, so a reader that fetched only some
ranges of a blob still checks every byte. The cache keeps a blob's layout in a
file of its own (``encode``/``decode``); a blob of at most one chunk needs
none, its one chunk digest being the blob's own (``implied``).
"""

from __future__ import annotations

from dataclasses import dataclass

from artfs.digests import BLOB_HASH, CHUNK_HASHES, CHUNK_SIZE
from artfs.errors import Corrupt
from artfs.fileio import Buffer

__all__ = ["DIGEST_BYTES", "ChunkLayout", "Key", "chunk_matches"]

#: A chunk, as the cache names it: its blob's digest and its index in the blob.
Key = tuple[str, int]

DIGEST_BYTES = 32
_LAYOUT_HEADER = 16  # size (8 bytes) + chunk size (8 bytes), big-endian
# A layout file naming its chunk hash starts with this byte, then the hash's name
# and a newline. The older files (sha256 only) start with a size's high byte: 0.
_NAMED_HASH = b"\xff"


def chunk_matches(chunk_hash: str, expected: bytes, data: Buffer) -> bool:
    """Whether ``data`` hashes to ``expected`` with the layout's chunk hash."""
    hasher = CHUNK_HASHES[chunk_hash]()
    hasher.update(data)
    return hasher.digest() == expected


@dataclass(frozen=True)
class ChunkLayout:
    """How a blob splits into chunks, with the digest of each (recorded at commit)."""

    digest: str
    size: int
    chunk_size: int
    chunk_digests: bytes
    #: The hash of ``chunk_digests`` (``artfs.digests.CHUNK_HASHES``).
    chunk_hash: str = BLOB_HASH

    @property
    def chunk_count(self) -> int:
        return -(-self.size // self.chunk_size)

    def chunk_digest(self, index: int) -> bytes:
        return self.chunk_digests[index * DIGEST_BYTES : (index + 1) * DIGEST_BYTES]

    def chunk_length(self, index: int) -> int:
        return min(self.chunk_size, self.size - index * self.chunk_size)

    def chunks_for(self, offset: int, length: int) -> range:
        """Indexes of the chunks holding bytes ``[offset, offset + length)``."""
        end = min(offset + length, self.size)
        if length <= 0 or offset >= end:
            return range(0)
        return range(offset // self.chunk_size, (end - 1) // self.chunk_size + 1)

    def verify(self, index: int, data: Buffer) -> bool:
        if len(data) != self.chunk_length(index):
            return False
        return chunk_matches(self.chunk_hash, self.chunk_digest(index), data)

    @classmethod
    def implied(cls, digest: str, size: int) -> ChunkLayout | None:
        """A blob of at most one chunk: its one chunk digest is the blob's own (sha256) digest."""
        if size > CHUNK_SIZE:
            return None
        return cls(digest, size, CHUNK_SIZE, bytes.fromhex(digest) if size else b"", BLOB_HASH)

    def encode(self) -> bytes:
        return (
            _NAMED_HASH
            + self.chunk_hash.encode()
            + b"\n"
            + self.size.to_bytes(8, "big")
            + self.chunk_size.to_bytes(8, "big")
            + self.chunk_digests
        )

    @classmethod
    def decode(cls, digest: str, raw: bytes) -> ChunkLayout:
        chunk_hash = BLOB_HASH
        if raw.startswith(_NAMED_HASH):
            name, _, raw = raw[len(_NAMED_HASH) :].partition(b"\n")
            chunk_hash = name.decode("ascii", "replace")
        size = int.from_bytes(raw[:8], "big")
        chunk_size = int.from_bytes(raw[8:_LAYOUT_HEADER], "big")
        layout = cls(digest, size, chunk_size, raw[_LAYOUT_HEADER:], chunk_hash)
        if (
            chunk_hash not in CHUNK_HASHES
            or chunk_size <= 0
            or len(layout.chunk_digests) != layout.chunk_count * DIGEST_BYTES
        ):
            raise Corrupt(f"cached layout of blob {digest} is damaged")
        return layout
