"""Publishing blobs: the store's batched writes and deferred directory sync, and
the registry's group-committed blob rows (recorded only after that sync)."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.engine import make_url

from artfs.digests import CHUNK_SIZE
from artfs.errors import DigestMismatch
from artfs.server.db.engine import create_registry_engine, insert_unless_present, migrate
from artfs.server.db.schema import blobs
from artfs.server.registry import FileEntry, Registry
from artfs.store.base import BlobInfo
from artfs.store.local import LocalBlobStore


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pieces_of(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


# -- store ----------------------------------------------------------------------


@pytest.mark.parametrize("piece", [1000, CHUNK_SIZE - 1, CHUNK_SIZE, 3 * CHUNK_SIZE])
def test_write_many_hashes_like_write(tmp_path: Path, piece: int) -> None:
    store = LocalBlobStore(tmp_path)
    data = os.urandom(2 * CHUNK_SIZE + 12345)
    one, many = store.writer(sha(data)), LocalBlobStore(tmp_path / "b").writer(sha(data))
    one.write(data)
    for start in range(0, len(data), 5 * piece):
        many.write_many(pieces_of(data[start : start + 5 * piece], piece))
    assert many.commit() == one.commit()
    assert store.local_path(sha(data)).read_bytes() == data


def test_write_many_mismatch_is_discarded(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    writer = store.writer(sha(b"claimed"))
    writer.write_many([b"other", b" bytes"])
    with pytest.raises(DigestMismatch):
        writer.commit(durable=False)
    assert not store.exists(sha(b"claimed"))
    assert list((tmp_path / "tmp").iterdir()) == []


def test_deferred_sync_publishes_whole_blobs(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    datas = [os.urandom(4096) for _ in range(20)]
    for data in datas:
        writer = store.writer(sha(data))
        writer.write(data)
        writer.commit(durable=False)
        # Readable at once, and whole: only the rename's durability waits.
        assert store.local_path(sha(data)).read_bytes() == data
    store.sync_published([sha(data) for data in datas])
    assert sorted(store.iter_digests()) == sorted(sha(data) for data in datas)
    assert list((tmp_path / "tmp").iterdir()) == []


def test_shards_are_created_once_under_concurrency(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    datas = [os.urandom(64) for _ in range(200)]

    def put(data: bytes) -> None:
        writer = store.writer(sha(data))
        writer.write(data)
        writer.commit()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, datas))
    assert sorted(store.iter_digests()) == sorted(sha(data) for data in datas)


# -- registry -------------------------------------------------------------------


class RecordingStore(LocalBlobStore):
    """A local store that logs ``sync_published`` and can be made to fail it."""

    def __init__(self, root: Path, log: list[str]) -> None:
        super().__init__(root)
        self.log = log
        self.fail = False

    def sync_published(self, digests: Collection[str]) -> None:
        if self.fail:
            raise OSError("fsync failed")
        self.log.append(f"sync {len(digests)}")
        super().sync_published(digests)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    engine = create_registry_engine(f"sqlite:///{tmp_path / 'registry.db'}")
    migrate(engine)
    yield Registry(engine, RecordingStore(tmp_path / "blobs", []))
    engine.dispose()


def stored(registry: Registry, data: bytes) -> BlobInfo:
    writer = registry.store.writer(sha(data))
    writer.write(data)
    return writer.commit(durable=False)


def blob_rows(registry: Registry) -> int:
    with registry.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(blobs)).scalar_one())


def test_recording_a_blob_twice_keeps_one_row(registry: Registry) -> None:
    info = stored(registry, b"twice")
    registry.record_blob(info, "p")
    registry.record_blob(info, "p")
    assert blob_rows(registry) == 1
    assert registry.blob_info(info.digest) == info
    assert registry.missing_blobs("p", [info.digest]) == []


def test_concurrent_records_all_land(registry: Registry) -> None:
    infos = [stored(registry, f"blob {i}".encode()) for i in range(300)]
    infos += infos[:50]  # the same blob uploaded twice at once
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda info: registry.record_blob(info, "p"), infos))
    assert blob_rows(registry) == 300


def test_no_row_before_the_store_sync(registry: Registry) -> None:
    store = registry.store
    assert isinstance(store, RecordingStore)
    info = stored(registry, b"unsynced")
    store.fail = True
    with pytest.raises(OSError, match="fsync failed"):
        registry.record_blob(info, "p")
    assert blob_rows(registry) == 0
    store.fail = False
    registry.record_blob(info, "p")
    assert blob_rows(registry) == 1


@pytest.mark.parametrize("name", ["sqlite", "postgresql"])
def test_insert_unless_present_on_both_dialects(name: str) -> None:
    dialect = make_url(f"{name}://").get_dialect()()
    statement = insert_unless_present(dialect.name, blobs, ["digest"])
    assert statement is not None
    assert "ON CONFLICT (digest) DO NOTHING" in str(statement.compile(dialect=dialect))
    assert insert_unless_present("mysql", blobs, ["digest"]) is None


def entry(data: bytes) -> FileEntry:
    return FileEntry(path=sha(data)[:12], size=len(data), digest=sha(data))


def count_queries(registry: Registry) -> list[str]:
    seen: list[str] = []
    lock = threading.Lock()

    def before(*args: object) -> None:
        with lock:
            seen.append(str(args[2]))

    event.listen(registry.engine, "before_cursor_execute", before)
    return seen


def test_missing_blobs_of_an_upload_are_uploadable_without_a_query(registry: Registry) -> None:
    data = b"about to be uploaded"
    started = registry.start_upload(
        "p",
        "a",
        type_=None,
        description="",
        metadata={},
        semver=None,
        source={},
        ttl_seconds=None,
        entries=[entry(data)],
    )
    assert started["missing"] == [sha(data)]
    queries = count_queries(registry)
    assert registry.blob_uploadable("p", sha(data))
    assert queries == []
    assert not registry.blob_uploadable("other", sha(data))
    # Named is not held: nothing to read until the bytes come.
    assert not registry.blob_visible("p", sha(data))
    # Dropping the upload forgets it at once, in this process.
    registry.abort_upload("p", started["upload_id"])
    assert not registry.blob_uploadable("p", sha(data))
