from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable
from typing import Any

import blake3
import pytest

from artfs.digests import BlobHasher, check_digest, hash_file, version_digest
from artfs.errors import InvalidInput

REFERENCE_CHUNK_HASHES: dict[str, Callable[[bytes], Any]] = {
    "blake3": blake3.blake3,
    "sha256": hashlib.sha256,
}


@pytest.mark.parametrize("size", [0, 1, 1023, 1024, 1025, 4096, 10_000])
@pytest.mark.parametrize("piece", [1, 7, 1024, 5000])
@pytest.mark.parametrize("chunk_hash", ["blake3", "sha256"])
def test_blob_hasher_matches_the_reference_hashes_in_any_pieces(
    size: int, piece: int, chunk_hash: str
) -> None:
    data = os.urandom(size)
    hasher = BlobHasher(chunk_size=1024, chunk_hash=chunk_hash)
    for start in range(0, size, piece):
        hasher.update(data[start : start + piece])
    assert hasher.finish() == hashlib.sha256(data).hexdigest()
    assert hasher.size == size
    reference = REFERENCE_CHUNK_HASHES[chunk_hash]
    expected_chunks = [reference(data[i : i + 1024]).digest() for i in range(0, size, 1024)]
    assert hasher.chunk_digests == expected_chunks


def test_new_blobs_get_blake3_chunk_digests() -> None:
    hasher = BlobHasher(chunk_size=4)
    hasher.update(b"abcdefgh")
    hasher.finish()
    assert hasher.chunk_hash == "blake3"
    assert hasher.chunk_digests == [
        blake3.blake3(b"abcd").digest(),
        blake3.blake3(b"efgh").digest(),
    ]


def test_hash_file_streams() -> None:
    data = os.urandom(3 * 1024 + 5)
    assert hash_file(io.BytesIO(data), block_size=1024) == (
        hashlib.sha256(data).hexdigest(),
        len(data),
    )


def test_version_digest_ignores_order_and_sees_every_field() -> None:
    entries = [("b", "d2", 2), ("a", "d1", 1)]
    base = version_digest(entries)
    assert base == version_digest(list(reversed(entries)))
    assert base != version_digest([("b", "d2", 2), ("a", "d1", 9)])
    assert base != version_digest([("b", "d2", 2), ("c", "d1", 1)])
    assert base != version_digest([("b", "d2", 2), ("a", "dX", 1)])


@pytest.mark.parametrize("bad", ["", "abc", "A" * 64, "g" * 64, 5, None])
def test_check_digest(bad: object) -> None:
    with pytest.raises(InvalidInput):
        check_digest(bad)
