from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from artfs.errors import DigestMismatch
from artfs.store.local import LocalBlobStore


def test_blob_is_published_whole_and_verified(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    data = os.urandom((1 << 20) + 17)
    digest = hashlib.sha256(data).hexdigest()
    writer = store.writer(digest)
    writer.write(data[:1000])
    assert not store.exists(digest)  # nothing under the final name before commit
    writer.write(data[1000:])
    info = writer.commit()
    assert store.exists(digest)
    assert store.local_path(digest).read_bytes() == data
    assert (info.size, len(info.chunk_digests)) == (len(data), 64)
    assert list(store.iter_digests()) == [digest]
    assert list((tmp_path / "tmp").iterdir()) == []


def test_mismatched_bytes_are_discarded(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    claimed = hashlib.sha256(b"claimed").hexdigest()
    writer = store.writer(claimed)
    writer.write(b"something else")
    with pytest.raises(DigestMismatch):
        writer.commit()
    assert not store.exists(claimed)
    assert list((tmp_path / "tmp").iterdir()) == []


def test_leftover_temp_files_are_cleared_before_serving(tmp_path: Path) -> None:
    LocalBlobStore(tmp_path)
    (tmp_path / "tmp" / "crashed.part").write_bytes(b"half")
    assert LocalBlobStore(tmp_path).discard_interrupted_uploads() == 1
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_worker_starting_up_keeps_another_workers_upload_in_flight(tmp_path: Path) -> None:
    data = os.urandom(3 << 20)
    digest = hashlib.sha256(data).hexdigest()
    writer = LocalBlobStore(tmp_path).writer(digest)
    writer.write(data[: 1 << 20])
    LocalBlobStore(tmp_path)  # a second worker process opens the same folder
    writer.write(data[1 << 20 :])
    writer.commit()
    assert LocalBlobStore(tmp_path).local_path(digest).read_bytes() == data
