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


def test_leftover_temp_files_are_cleared_at_start(tmp_path: Path) -> None:
    LocalBlobStore(tmp_path)
    (tmp_path / "tmp" / "crashed.part").write_bytes(b"half")
    LocalBlobStore(tmp_path)
    assert list((tmp_path / "tmp").iterdir()) == []
