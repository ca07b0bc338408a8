"""``artfs cache verify``: re-hashes every cached chunk, removes the damaged ones (chunk
files and packed chunks alike) so that the next read fetches them again, and says so."""

from __future__ import annotations

from pathlib import Path

from artfs.cache.chunks import ChunkCache
from artfs.cache.ondisk import chunk_places
from tests.support.mount import artfs, read_chunk
from tests.unit.test_cache_verification import flip_byte, stored_blob

MiB = 1 << 20


def test_cache_verify_finds_and_removes_damaged_chunks_in_files_and_packs(
    tmp_path: Path,
) -> None:
    cache = tmp_path / "cache"
    loose, loose_data = stored_blob(ChunkCache(cache, 1 << 30), 3 * MiB)
    packed, packed_data = stored_blob(ChunkCache(cache, 1 << 30), 4 * MiB + 5, packed=True)
    small, _ = stored_blob(ChunkCache(cache, 1 << 30), 5000)  # a one-chunk blob
    assert not flip_byte(cache, loose, 2).endswith(".pack")
    assert flip_byte(cache, packed, 1).endswith(".pack")
    assert flip_byte(cache, packed, 4, at=0).endswith(".pack")
    flip_byte(cache, small, 0, at=4999)

    result = artfs("cache", "verify", "--cache-dir", str(cache))
    assert result.returncode == 1, result.stderr
    assert result.stdout.strip() == "checked 9 chunks (7.0 MiB): 4 damaged, removed"
    for layout, index in [(loose, 2), (packed, 1), (packed, 4), (small, 0)]:
        assert f"chunk {index} of blob {layout.digest} is corrupt" in result.stderr

    # Removed for every process: the next read fetches them again. The rest is intact.
    places = chunk_places(cache)
    assert sorted(key for key in places if key[0] == packed.digest) == [
        (packed.digest, i) for i in (0, 2, 3)
    ]
    assert (loose.digest, 2) not in places
    assert (small.digest, 0) not in places
    assert read_chunk(places[(loose.digest, 1)]) == loose_data[MiB : 2 * MiB]
    assert read_chunk(places[(packed.digest, 3)]) == packed_data[3 * MiB : 4 * MiB]

    again = artfs("cache", "verify", "--cache-dir", str(cache))
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "checked 5 chunks (5.0 MiB): all intact"


def test_cache_verify_of_an_empty_cache_checks_nothing(tmp_path: Path) -> None:
    result = artfs("cache", "verify", "--cache-dir", str(tmp_path / "cache"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "checked 0 chunks (0 B): all intact"
