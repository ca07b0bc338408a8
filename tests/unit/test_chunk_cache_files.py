"""The chunk cache's files on disk: flat layout, the older layout moved over, crash leftovers."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import blake3

from artfs.cache.chunks import ChunkCache
from artfs.cache.layout import ChunkLayout
from artfs.cache.ondisk import STALE_PART_SECONDS, cached_chunks
from artfs.digests import CHUNK_SIZE

MiB = 1 << 20


def _layout(data: bytes, chunk_size: int = CHUNK_SIZE) -> ChunkLayout:
    digests = b"".join(
        hashlib.sha256(data[i : i + chunk_size]).digest() for i in range(0, len(data), chunk_size)
    )
    return ChunkLayout(hashlib.sha256(data).hexdigest(), len(data), chunk_size, digests)


def _read(cache: ChunkCache, layout: ChunkLayout, index: int) -> bytes | None:
    buffer = bytearray(layout.chunk_length(index))
    got = cache.read(layout, index, 0, memoryview(buffer))
    return None if got is None else bytes(buffer[:got])


def test_chunks_lie_flat_in_their_shard(tmp_path: Path) -> None:
    data = os.urandom(2 * MiB + 5)
    layout = _layout(data, MiB)
    cache = ChunkCache(tmp_path, max_bytes=64 * MiB)
    for index in range(layout.chunk_count):
        start = index * MiB
        cache.store(layout, index, data[start : start + layout.chunk_length(index)])
    shard = tmp_path / "chunks" / layout.digest[:2]
    assert sorted(p.name for p in shard.iterdir()) == [
        f"{layout.digest}.0",
        f"{layout.digest}.1",
        f"{layout.digest}.2",
    ]
    reopened = ChunkCache(tmp_path, max_bytes=64 * MiB)
    assert reopened.stats()["chunks"] == 3
    assert _read(reopened, layout, 2) == data[2 * MiB :]


def test_a_cache_in_the_older_layout_is_moved_over_and_still_verified(tmp_path: Path) -> None:
    data = os.urandom(3 * MiB)
    layout = _layout(data, MiB)
    ChunkCache(tmp_path, max_bytes=64 * MiB).store_layout(layout)
    blob_dir = tmp_path / "chunks" / layout.digest[:2] / layout.digest
    blob_dir.mkdir(parents=True)
    (blob_dir / "0").write_bytes(data[:MiB])
    (blob_dir / "1").write_bytes(b"\0" * MiB)  # damaged while in the old layout
    (blob_dir / "2").write_bytes(data[2 * MiB :])
    (blob_dir / "stray.txt").write_bytes(b"not a chunk")

    cache = ChunkCache(tmp_path, max_bytes=64 * MiB)

    assert not blob_dir.exists()
    assert cache.stats() == {
        "bytes": 3 * MiB,
        "max_bytes": 64 * MiB,
        "chunks": 3,
        "blobs": 1,
        "pinned_blobs": 0,
    }
    assert _read(cache, layout, 0) == data[:MiB]
    assert _read(cache, layout, 2) == data[2 * MiB :]
    assert _read(cache, layout, 1) is None  # verification caught the damage: fetch again
    assert not (tmp_path / "chunks" / layout.digest[:2] / f"{layout.digest}.1").exists()


def test_temporary_files_of_a_crashed_writer_are_removed_once_stale(tmp_path: Path) -> None:
    ChunkCache(tmp_path, max_bytes=MiB)
    shard = tmp_path / "chunks" / "ab"
    shard.mkdir()
    stale = shard / f"{'ab' * 32}.0.{'0' * 32}.part"
    recent = shard / f"{'ab' * 32}.1.{'1' * 32}.part"  # perhaps another process writing now
    stale.write_bytes(b"x" * 100)
    recent.write_bytes(b"y" * 100)
    old = time.time() - STALE_PART_SECONDS - 60
    os.utime(stale, (old, old))

    cache = ChunkCache(tmp_path, max_bytes=MiB)

    assert not stale.exists()
    assert recent.exists()
    assert cache.stats()["chunks"] == 0


def test_eviction_removes_chunk_files_and_leaves_shards(tmp_path: Path) -> None:
    data = os.urandom(4 * MiB)
    layout = _layout(data, MiB)
    cache = ChunkCache(tmp_path, max_bytes=2 * MiB, fresh_bytes=0)
    for index in range(4):
        cache.store(layout, index, data[index * MiB : (index + 1) * MiB])
    left = sorted(p.name for p in (tmp_path / "chunks").rglob("*") if p.is_file())
    assert cache.total_bytes <= 2 * MiB
    assert len(left) == cache.stats()["chunks"] < 4
    assert f"{layout.digest}.3" in left  # the newest stays


def test_a_chunk_file_of_the_wrong_size_is_dropped_and_reported_absent(tmp_path: Path) -> None:
    data = os.urandom(2 * MiB)
    layout = _layout(data, MiB)
    cache = ChunkCache(tmp_path, max_bytes=64 * MiB)
    for index in range(2):
        cache.store(layout, index, data[index * MiB : (index + 1) * MiB])
    shard = tmp_path / "chunks" / layout.digest[:2]
    with open(shard / f"{layout.digest}.0", "ab") as chunk:
        chunk.write(b"stray")  # longer than the layout says
    (shard / f"{layout.digest}.1").write_bytes(data[MiB : 2 * MiB - 7])  # torn short

    reopened = ChunkCache(tmp_path, max_bytes=64 * MiB)

    assert _read(reopened, layout, 0) is None
    assert _read(reopened, layout, 1) is None
    assert sorted(shard.iterdir()) == []
    assert reopened.stats()["chunks"] == 0


def _small(count: int) -> list[tuple[ChunkLayout, bytes]]:
    blobs = [os.urandom(100 + 37 * i) for i in range(count)]
    return [(_layout(data), data) for data in blobs]


def _packs(root: Path) -> list[Path]:
    return sorted((root / "packs").glob("*.pack"))


def test_small_blobs_stored_together_lie_in_one_pack_and_survive_a_restart(
    tmp_path: Path,
) -> None:
    blobs = _small(20)
    ChunkCache(tmp_path, max_bytes=64 * MiB).store_many(blobs)
    assert len(_packs(tmp_path)) == 1
    assert list((tmp_path / "chunks").rglob("*.0")) == []

    reopened = ChunkCache(tmp_path, max_bytes=64 * MiB)
    assert reopened.stats()["chunks"] == 20
    assert cached_chunks(tmp_path) == {(layout.digest, 0): len(data) for layout, data in blobs}
    for layout, data in blobs:
        assert _read(reopened, layout, 0) == data  # verified as read, as any chunk
        assert reopened.check(layout, 0)
        assert reopened.read_ready(layout, 0, 1, 10) == data[1:11]


def test_a_damaged_blob_in_a_pack_is_dropped_and_its_neighbours_still_read(
    tmp_path: Path,
) -> None:
    blobs = _small(5)
    ChunkCache(tmp_path, max_bytes=64 * MiB).store_many(blobs)
    (pack,) = _packs(tmp_path)
    raw = bytearray(pack.read_bytes())
    raw[-3] ^= 0xFF  # inside the last blob
    pack.write_bytes(bytes(raw))

    cache = ChunkCache(tmp_path, max_bytes=64 * MiB)
    assert _read(cache, blobs[-1][0], 0) is None  # absent: fetch again
    for layout, data in blobs[:-1]:
        assert _read(cache, layout, 0) == data
    # Stored again on its own, the blob wins over its damaged packed copy after a restart.
    cache.store(blobs[-1][0], 0, blobs[-1][1])
    assert _read(ChunkCache(tmp_path, max_bytes=64 * MiB), blobs[-1][0], 0) == blobs[-1][1]


def test_a_pack_goes_when_its_last_blob_is_evicted(tmp_path: Path) -> None:
    cache = ChunkCache(tmp_path, max_bytes=64 * MiB, fresh_bytes=0)
    cache.store_many(_small(4))
    assert len(_packs(tmp_path)) == 1
    assert cache.evict_to(0) == 4
    assert _packs(tmp_path) == []
    assert cache.stats()["chunks"] == 0


def test_a_torn_pack_and_a_stale_temporary_are_removed_at_start(tmp_path: Path) -> None:
    ChunkCache(tmp_path, max_bytes=64 * MiB).store_many(_small(3))
    (pack,) = _packs(tmp_path)
    pack.write_bytes(pack.read_bytes()[:-1])  # shorter than its header says
    stale = tmp_path / "packs" / "1-x-0.pack.part"
    stale.write_bytes(b"half a pack")
    old = time.time() - STALE_PART_SECONDS - 60
    os.utime(stale, (old, old))

    cache = ChunkCache(tmp_path, max_bytes=64 * MiB)

    assert list((tmp_path / "packs").iterdir()) == []
    assert cache.stats()["chunks"] == 0


def test_layouts_name_their_chunk_hash_and_older_files_mean_sha256(tmp_path: Path) -> None:
    data = os.urandom(2 * MiB + 7)
    pieces = [data[i : i + MiB] for i in range(0, len(data), MiB)]
    digest = hashlib.sha256(data).hexdigest()
    new = ChunkLayout(
        digest, len(data), MiB, b"".join(blake3.blake3(p).digest() for p in pieces), "blake3"
    )
    cache = ChunkCache(tmp_path, max_bytes=64 * MiB)
    cache.store_layout(new)
    assert ChunkCache(tmp_path, max_bytes=64 * MiB).layout(digest) == new
    assert all(new.verify(i, p) for i, p in enumerate(pieces))
    assert not new.verify(0, b"\0" * MiB)

    # Written before chunk hashes were named: size, chunk size, sha256 digests.
    old_digests = b"".join(hashlib.sha256(p).digest() for p in pieces)
    layout_file = tmp_path / "layouts" / digest[:2] / digest
    layout_file.write_bytes(len(data).to_bytes(8, "big") + MiB.to_bytes(8, "big") + old_digests)
    old = ChunkCache(tmp_path, max_bytes=64 * MiB).layout(digest)
    assert old is not None
    assert old.chunk_hash == "sha256"
    assert all(old.verify(i, p) for i, p in enumerate(pieces))
    for index, piece in enumerate(pieces):
        cache.store(old, index, piece)
    assert _read(ChunkCache(tmp_path, max_bytes=64 * MiB), old, 1) == pieces[1]

    # A hash this version does not know is a damaged layout: dropped, asked for again.
    layout_file.write_bytes(b"\xffmd5\n" + layout_file.read_bytes())
    assert ChunkCache(tmp_path, max_bytes=64 * MiB).layout(digest) is None
    assert not layout_file.exists()
