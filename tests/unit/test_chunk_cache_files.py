"""The chunk cache's files on disk: flat layout, the older layout moved over, crash leftovers."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from artfs.cache.chunks import STALE_PART_SECONDS, ChunkCache, ChunkLayout
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
