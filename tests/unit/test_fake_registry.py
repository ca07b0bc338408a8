"""The in-process registry the unit tests stand on: the chunk digests the real registry
records, the rules a client can tell apart, and faults that hit what they aim at."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest

from artfs.client.models import FileRecord, NewVersion
from artfs.errors import Conflict, DigestMismatch, NotFound, Transient
from artfs.store.local import LocalBlobStore
from tests.support.fake_registry import FakeRegistry

MiB = 1 << 20


def test_chunk_lists_are_those_the_registry_store_records(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    fake = FakeRegistry()
    for data in (random.Random(1).randbytes(2 * MiB + 3), b"small"):
        digest = hashlib.sha256(data).hexdigest()
        fake.add_version("a", {"f": data})
        writer = store.writer(digest)
        writer.write(data)
        info = writer.commit()
        chunks = fake.blob_chunks(digest)
        assert (chunks.size, chunks.chunk_size, chunks.chunk_digests, chunks.chunk_hash) == (
            info.size,
            info.chunk_size,
            info.chunk_digests,
            info.chunk_hash,
        )


def test_versions_aliases_labels_and_the_rules_of_commits() -> None:
    fake = FakeRegistry()
    v1 = fake.add_version("m", {"a": b"1"}, semver="1.0.0", aliases=["prod"], tags=["t"])
    v2 = fake.add_version("m", {"a": b"2"})
    assert (v1.version, v1.aliases, v1.tags, v2.version, v2.aliases) == (
        "v1",
        ("latest", "prod"),
        ("t",),
        "v2",
        ("latest",),
    )
    assert fake.get_version("m", "1.0.0").number == 1
    assert fake.get_version("m", "prod").number == 1
    assert fake.get_artifact("m").aliases == {"latest": "v2", "prod": "v1"}
    # The same content as latest is a no-op commit; force makes a version anyway.
    again = fake.start_upload("m", NewVersion(), [FileRecord("a", 1, v2_digest(fake))])
    assert again.missing == frozenset()
    committed = fake.commit_upload(again.upload_id, ["gold"], [])
    assert (committed.noop, committed.version.version) == (True, "v2")
    assert fake.add_version("m", {"a": b"2"}, force=True).version == "v3"
    with pytest.raises(Conflict):
        fake.set_alias("m", "prod", "v3", expect="v2", check_expect=True)
    with pytest.raises(Conflict):
        fake.delete_version("m", "v1")  # it has an alias
    assert fake.delete_version("m", "v3").state == "DELETED"
    assert fake.get_version("m", "latest").version == "v2"
    # Blobs are readable, and accepted, only once a version or an upload names them.
    stray = b"nobody names me"
    with pytest.raises(NotFound):
        fake.upload_blob(hashlib.sha256(stray).hexdigest(), stray, len(stray))
    started = fake.start_upload(
        "m", NewVersion(), [FileRecord("b", 3, hashlib.sha256(b"bbb").hexdigest())]
    )
    with pytest.raises(DigestMismatch):
        fake.upload_blob(hashlib.sha256(b"bbb").hexdigest(), b"ccc", 3)
    with pytest.raises(Conflict):
        fake.commit_upload(started.upload_id, [], [])  # its blob never arrived


def v2_digest(fake: FakeRegistry) -> str:
    digest = next(fake.list_files("m", "v2")).digest
    assert digest is not None
    return digest


def test_faults_hit_what_they_aim_at_for_as_long_as_asked() -> None:
    fake = FakeRegistry()
    data = random.Random(2).randbytes(3 * MiB)
    fake.add_version("m", {"big": data, "other": b"o"})
    digest = hashlib.sha256(data).hexdigest()
    fake.fail("open_range", Transient, digest=digest, at=2 * MiB, times=1)

    def read(start: int, end: int) -> tuple[bool, bytes]:
        buffer = bytearray(end - start)
        with fake.open_range(digest, start, end) as body:
            whole = body.read_into(memoryview(buffer))
        return whole, bytes(buffer)

    assert read(0, MiB) == (True, data[:MiB])  # not the range it aims at
    with pytest.raises(Transient):
        read(MiB, 3 * MiB)
    assert read(MiB, 3 * MiB) == (True, data[MiB:])  # once only
    fake.corrupt("open_range", at=MiB + 1)
    whole, got = read(MiB, 2 * MiB)
    assert whole
    assert got[1] == data[MiB + 1] ^ 0xFF
    assert got[:1] + got[2:] == data[MiB : MiB + 1] + data[MiB + 2 : 2 * MiB]
    fake.clear_faults()
    fake.cut("open_range")
    whole, got = read(0, 2 * MiB)
    assert not whole
    assert got[:MiB] == data[:MiB]  # the body ended half-way through
    assert fake.calls["open_range"] == 5
    assert fake.range_reads[-1] == (digest, 0, 2 * MiB)
