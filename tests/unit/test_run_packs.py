"""The chunks of one download kept in one pack: readable as they arrive, cut short, evicted."""

from __future__ import annotations

import hashlib
import logging
import os
import struct
import time
from pathlib import Path

import pytest

from artfs.cache.chunks import ChunkCache
from artfs.cache.layout import ChunkLayout
from artfs.cache.ondisk import STALE_PART_SECONDS, chunk_places
from artfs.cache.packs import PackWriter

MiB = 1 << 20


def _layout(data: bytes) -> ChunkLayout:
    digests = b"".join(hashlib.sha256(data[i : i + MiB]).digest() for i in range(0, len(data), MiB))
    return ChunkLayout(hashlib.sha256(data).hexdigest(), len(data), MiB, digests)


def _chunk(data: bytes, index: int) -> bytes:
    return data[index * MiB : (index + 1) * MiB]


def _read(cache: ChunkCache, layout: ChunkLayout, index: int) -> bytes | None:
    buffer = bytearray(layout.chunk_length(index))
    got = cache.read(layout, index, 0, memoryview(buffer))
    return None if got is None else bytes(buffer[:got])


def _store_run(cache: ChunkCache, layout: ChunkLayout, data: bytes, indexes: range) -> None:
    with cache.storing_run(layout, indexes) as store:
        for index in indexes:
            # As a download gets them: page-aligned buffers where the size allows.
            buffer = cache.new_buffer(layout.chunk_length(index))
            memoryview(buffer)[:] = _chunk(data, index)
            store(index, buffer)


def _files(root: Path, directory: str) -> list[str]:
    return sorted(p.name for p in (root / directory).rglob("*") if p.is_file())


@pytest.mark.parametrize("fresh_bytes", [0, 64 * MiB], ids=["through-page-cache", "direct"])
def test_the_chunks_of_one_download_lie_in_one_pack_each_readable_as_it_arrives(
    tmp_path: Path, fresh_bytes: int
) -> None:
    data = os.urandom(5 * MiB + 123)  # the last chunk is short
    layout = _layout(data)
    cache = ChunkCache(tmp_path, max_bytes=64 * MiB, fresh_bytes=fresh_bytes)
    with cache.storing_run(layout, range(6)) as store:
        for index in range(6):
            buffer = cache.new_buffer(layout.chunk_length(index))
            memoryview(buffer)[:] = _chunk(data, index)
            store(index, buffer)
            # Readable at once, from the pack still being written.
            assert _read(cache, layout, index) == _chunk(data, index)
            assert [name.endswith(".pack.part") for name in _files(tmp_path, "packs")] == [True]
    (pack,) = _files(tmp_path, "packs")
    assert pack.endswith(".pack")
    assert _files(tmp_path, "chunks") == []
    # Still readable by this process after the rename, and by the next one.
    assert _read(cache, layout, 5) == _chunk(data, 5)
    reopened = ChunkCache(tmp_path, max_bytes=64 * MiB)
    places = chunk_places(tmp_path)
    assert sorted(places) == [(layout.digest, index) for index in range(6)]
    assert {Path(place.path).name for place in places.values()} == {pack}
    for index in range(6):
        assert _read(reopened, layout, index) == _chunk(data, index)


def test_a_download_cut_short_keeps_the_chunks_it_stored(tmp_path: Path) -> None:
    data = os.urandom(6 * MiB)
    layout = _layout(data)
    cache = ChunkCache(tmp_path, max_bytes=64 * MiB)

    def download_cut_after_three() -> None:
        with cache.storing_run(layout, range(6)) as store:
            for index in range(3):
                buffer = cache.new_buffer(MiB)
                memoryview(buffer)[:] = _chunk(data, index)
                store(index, buffer)
            raise ConnectionError("the registry went away after three chunks")

    with pytest.raises(ConnectionError):
        download_cut_after_three()
    (pack,) = _files(tmp_path, "packs")
    assert pack.endswith(".pack")
    reopened = ChunkCache(tmp_path, max_bytes=64 * MiB)
    assert sorted(chunk_places(tmp_path)) == [(layout.digest, index) for index in range(3)]
    for index in range(3):
        assert _read(reopened, layout, index) == _chunk(data, index)
    assert _read(reopened, layout, 3) is None


def test_a_download_that_stored_nothing_leaves_no_pack(tmp_path: Path) -> None:
    layout = _layout(os.urandom(4 * MiB))
    cache = ChunkCache(tmp_path, max_bytes=64 * MiB)
    with pytest.raises(ConnectionError), cache.storing_run(layout, range(4)):
        raise ConnectionError("refused")
    assert _files(tmp_path, "packs") == []


def test_chunks_must_come_in_the_order_of_the_download(tmp_path: Path) -> None:
    data = os.urandom(3 * MiB)
    layout = _layout(data)
    cache = ChunkCache(tmp_path, max_bytes=64 * MiB)
    with pytest.raises(ValueError, match="not next"), cache.storing_run(layout, range(3)) as store:
        store(1, _chunk(data, 1))
    assert _files(tmp_path, "packs") == []
    assert cache.stats()["chunks"] == 0


def test_an_evicted_chunk_gives_its_space_back_and_is_not_listed_again(tmp_path: Path) -> None:
    data = os.urandom(8 * MiB)
    layout = _layout(data)
    cache = ChunkCache(tmp_path, max_bytes=64 * MiB, fresh_bytes=0)
    _store_run(cache, layout, data, range(8))
    (name,) = _files(tmp_path, "packs")
    pack = tmp_path / "packs" / name
    before = pack.stat().st_blocks * 512
    assert cache.evict_to(5 * MiB) == 3  # the three oldest: chunks 0, 1 and 2
    assert before - pack.stat().st_blocks * 512 >= 3 * MiB
    assert pack.stat().st_size == 4096 + 8 * MiB  # the others stay where they were
    reopened = ChunkCache(tmp_path, max_bytes=64 * MiB)
    assert sorted(chunk_places(tmp_path)) == [(layout.digest, index) for index in range(3, 8)]
    for index in range(3, 8):
        assert _read(reopened, layout, index) == _chunk(data, index)
    assert reopened.evict_to(0) == 5
    assert _files(tmp_path, "packs") == []


def test_a_pack_a_crashed_writer_left_half_written_is_not_read_and_goes_when_stale(
    tmp_path: Path,
) -> None:
    data = os.urandom(4 * MiB)
    layout = _layout(data)
    ChunkCache(tmp_path, max_bytes=64 * MiB)
    part = tmp_path / "packs" / "999-dead-0.pack.part"
    writer = PackWriter(str(part), [(layout.digest, i, MiB) for i in range(4)])
    for index in range(2):
        writer.put(layout.digest, index, _chunk(data, index), direct=False)
    # The writer's process dies here: no finish, no rename.
    cache = ChunkCache(tmp_path, max_bytes=64 * MiB)
    assert cache.stats()["chunks"] == 0
    assert part.exists()  # young: it may be a live writer's
    old = time.time() - STALE_PART_SECONDS - 60
    os.utime(part, (old, old))
    ChunkCache(tmp_path, max_bytes=64 * MiB)
    assert not part.exists()
    writer.abandon()


def test_packs_of_the_first_format_are_still_read(tmp_path: Path) -> None:
    blobs = [os.urandom(100 + i) for i in range(3)]
    header = b"artfspk1" + struct.pack(">I", len(blobs))
    for blob in blobs:
        header += hashlib.sha256(blob).digest() + struct.pack(">Q", len(blob))
    (tmp_path / "packs").mkdir(parents=True)
    (tmp_path / "packs" / "1-old-0.pack").write_bytes(header + b"".join(blobs))
    cache = ChunkCache(tmp_path, max_bytes=64 * MiB)
    assert cache.stats()["chunks"] == 3
    for blob in blobs:
        assert _read(cache, _layout(blob), 0) == blob


def test_a_chunk_another_process_evicts_is_never_served_as_zeros(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = os.urandom(4 * MiB)
    layout = _layout(data)
    # Two processes sharing one cache directory: each has its own ChunkCache.
    writer = ChunkCache(tmp_path, max_bytes=64 * MiB, fresh_bytes=0)
    _store_run(writer, layout, data, range(4))
    reader = ChunkCache(tmp_path, max_bytes=64 * MiB, fresh_bytes=0)
    assert _read(reader, layout, 0) == _chunk(data, 0)  # verified by the reader, from disk
    assert writer.evict_to(3 * MiB) == 1  # the writer gives chunk 0 up: a hole now
    with caplog.at_level(logging.INFO, logger="artfs.cache"):
        assert _read(reader, layout, 0) is None  # gone, not zeros: to be fetched again
    assert "evicted by another process" in caplog.text
    assert "corrupt" not in caplog.text  # an eviction, not damage
    assert not reader.has(layout.digest, 0)
    for index in range(1, 4):
        assert _read(reader, layout, index) == _chunk(data, index)


def test_a_small_blob_another_process_evicts_from_a_batch_pack_is_never_served_as_zeros(
    tmp_path: Path,
) -> None:
    blobs = [os.urandom(size) for size in (3000, 5000, 9000, 700)]
    writer = ChunkCache(tmp_path, max_bytes=64 * MiB, fresh_bytes=0)
    writer.store_many([(_layout(blob), blob) for blob in blobs])
    reader = ChunkCache(tmp_path, max_bytes=64 * MiB, fresh_bytes=0)
    for blob in blobs:
        assert reader.check(_layout(blob), 0)
    assert writer.evict_to(sum(map(len, blobs)) - 3000) == 1  # the first, the oldest
    # A blob sharing blocks with its neighbours leaves no hole to see: its bytes
    # stay as they were, and a reader that still lists it reads them verified.
    for blob in blobs:
        assert _read(reader, _layout(blob), 0) in (blob, None)
    for blob in blobs[1:]:
        assert _read(ChunkCache(tmp_path, max_bytes=64 * MiB), _layout(blob), 0) == blob
