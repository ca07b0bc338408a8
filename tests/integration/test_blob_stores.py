"""The ``BlobStore`` contract, held by each store: a local folder, and an S3 bucket on a
real S3-compatible server (SeaweedFS, ``tests/support/s3_source.py``), a prefix of
its own per test."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import boto3
import pytest
import requests
from botocore.config import Config

from artfs.errors import (
    ArtfsError,
    Corrupt,
    DigestMismatch,
    InvalidInput,
    NotFound,
    TooLarge,
    Transient,
)
from artfs.store.base import RANGE_PIECE, BlobInfo, BlobStore
from artfs.store.local import LocalBlobStore
from artfs.store.s3 import PART_SIZE, S3BlobStore
from tests.support.fault_proxy import Fault, FaultProxy
from tests.support.s3_source import S3Source

SMALL = os.urandom(100_000)
#: Three parts of an S3 upload, the last one short.
LARGE = os.urandom(2 * PART_SIZE + 12_345)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class StoreCase:
    store: BlobStore
    #: Uploads begun and neither published nor dropped (temporary files, multipart uploads).
    leftovers: Callable[[], list[str]]
    s3: S3Source | None = None


@pytest.fixture(params=["local", "s3"])
def case(request: pytest.FixtureRequest, tmp_path: Path) -> StoreCase:
    if request.param == "local":
        root = tmp_path / "blobs"
        return StoreCase(LocalBlobStore(root), lambda: [p.name for p in (root / "tmp").iterdir()])
    source: S3Source = request.getfixturevalue("s3_source")  # AWS_* set as a user would
    prefix = f"blobs-{uuid.uuid4().hex[:12]}"
    store = S3BlobStore.from_url(f"s3://{source.bucket}/{prefix}")
    return StoreCase(store, lambda: source.pending_uploads(f"{prefix}/"), source)


def publish(store: BlobStore, data: bytes, piece: int = 1 << 20) -> BlobInfo:
    writer = store.writer(sha(data))
    writer.write_many([data[at : at + piece] for at in range(0, len(data), piece)])
    return writer.commit(durable=False)


def stored_bytes(store: BlobStore, digest: str) -> bytes:
    with store.open_stored(digest) as stored:
        return stored.read()


def test_a_small_blob_reads_back_as_written(case: StoreCase) -> None:
    store, digest = case.store, sha(SMALL)
    info = publish(store, SMALL, piece=30_000)
    assert (info.digest, info.size, len(info.chunk_digests)) == (digest, len(SMALL), 32)
    assert store.exists(digest)
    assert store.size(digest) == len(SMALL)
    assert stored_bytes(store, digest) == SMALL
    assert store.read_many([digest], len(SMALL)) == SMALL
    assert list(store.iter_digests()) == [digest]
    store.sync_published({digest})


def test_a_blob_larger_than_a_part_is_invisible_until_committed(case: StoreCase) -> None:
    store, digest = case.store, sha(LARGE)
    writer = store.writer(digest)
    writer.write(LARGE[: PART_SIZE + 1])  # a part went out (S3)
    assert not store.exists(digest)
    writer.write_many([LARGE[PART_SIZE + 1 :]])
    assert writer.commit().size == len(LARGE)
    assert stored_bytes(store, digest) == LARGE
    assert case.leftovers() == []
    if case.s3 is not None:
        assert isinstance(store, S3BlobStore)
        head = case.s3.client.head_object(Bucket=store.bucket, Key=store.key_for(digest))
        assert head["ETag"].strip('"').endswith("-3")  # one multipart upload, three parts


@pytest.mark.parametrize("data", [SMALL, LARGE], ids=["small", "multipart"])
def test_bytes_that_miss_their_digest_leave_nothing_behind(case: StoreCase, data: bytes) -> None:
    claimed = sha(b"claimed")
    writer = case.store.writer(claimed)
    writer.write(data)
    with pytest.raises(DigestMismatch, match=claimed):
        writer.commit()
    writer.abort()  # as the registry's error paths do: harmless after the commit's own
    assert not case.store.exists(claimed)
    assert list(case.store.iter_digests()) == []
    assert case.leftovers() == []


def test_an_aborted_upload_leaves_nothing_behind(case: StoreCase) -> None:
    writer = case.store.writer(sha(LARGE))
    writer.write(LARGE[: PART_SIZE + 100])
    writer.abort()
    writer.abort()
    assert not case.store.exists(sha(LARGE))
    assert case.leftovers() == []


def test_publishing_a_digest_again_is_harmless(case: StoreCase) -> None:
    for data in (SMALL, SMALL, LARGE, LARGE):
        publish(case.store, data, piece=3_000_017)  # pieces that straddle the parts
    assert sorted(case.store.iter_digests()) == sorted([sha(SMALL), sha(LARGE)])
    assert stored_bytes(case.store, sha(LARGE)) == LARGE


def test_a_writer_keeps_the_bytes_of_a_buffer_its_caller_reuses(case: StoreCase) -> None:
    buffer = bytearray(SMALL)
    writer = case.store.writer(sha(SMALL))
    writer.write(memoryview(buffer))
    buffer[:] = bytes(len(buffer))  # as a receiver reusing its buffer would
    writer.commit()
    assert stored_bytes(case.store, sha(SMALL)) == SMALL


def test_ranges_read_what_they_name_in_pieces_of_at_most_a_chunk(case: StoreCase) -> None:
    store, digest = case.store, sha(LARGE)
    publish(store, LARGE)
    size = len(LARGE)
    for start, end in [(0, 10), (RANGE_PIECE - 3, 3 * RANGE_PIECE + 7), (size - 5, size)]:
        pieces = list(store.read_range(digest, start, end))
        assert b"".join(pieces) == LARGE[start:end]
        assert all(0 < len(piece) <= RANGE_PIECE for piece in pieces)
    assert b"".join(store.read_range(digest, size - 5, size + 100)) == LARGE[-5:]
    assert list(store.read_range(digest, size, size + 10)) == []
    assert list(store.read_range(digest, 7, 7)) == []
    with pytest.raises(InvalidInput):
        store.read_range(digest, 8, 7)


def test_an_empty_blob_is_a_blob(case: StoreCase) -> None:
    publish(case.store, b"")
    assert case.store.size(sha(b"")) == 0
    assert stored_bytes(case.store, sha(b"")) == b""
    assert list(case.store.read_range(sha(b""), 0, 10)) == []


def test_deleted_blobs_are_gone_and_deleting_twice_is_fine(case: StoreCase) -> None:
    publish(case.store, SMALL)
    case.store.delete(sha(SMALL))
    case.store.delete(sha(SMALL))
    assert not case.store.exists(sha(SMALL))
    assert list(case.store.iter_digests()) == []


def test_listing_names_every_blob_once_in_order(case: StoreCase) -> None:
    blobs = [os.urandom(100 + n) for n in range(12)]
    for data in blobs:
        publish(case.store, data)
    assert list(case.store.iter_digests()) == sorted(sha(data) for data in blobs)


def test_a_quarantined_blob_is_corrupt_to_every_reader_until_uploaded_again(
    case: StoreCase,
) -> None:
    store, digest = case.store, sha(LARGE)
    publish(store, LARGE)
    assert store.quarantine(digest)
    assert store.quarantined(digest)
    assert not store.exists(digest)
    reads: list[Callable[[], object]] = [
        lambda: store.size(digest),
        lambda: store.open_stored(digest),
        lambda: store.read_range(digest, 0, 10),
        lambda: store.read_many([digest], 1 << 30),
    ]
    for read in reads:
        with pytest.raises(Corrupt, match="quarantined"):
            read()
    assert list(store.iter_digests()) == []
    assert not store.quarantine(digest)  # nothing left under its name
    publish(store, LARGE)
    assert not store.quarantined(digest)
    assert stored_bytes(store, digest) == LARGE


def test_a_batch_returns_whole_blobs_in_order_within_its_bound(case: StoreCase) -> None:
    blobs = [os.urandom(1000 * n) for n in range(1, 30)]
    for data in blobs:
        publish(case.store, data)
    digests = [sha(data) for data in reversed(blobs)]
    total = sum(len(data) for data in blobs)
    assert case.store.read_many(digests, total) == b"".join(reversed(blobs))
    with pytest.raises(TooLarge):
        case.store.read_many(digests, total - 1)
    with pytest.raises(NotFound):
        case.store.read_many([*digests[:3], sha(b"absent")], total)


def test_absent_blobs_are_not_found_by_every_read(case: StoreCase) -> None:
    store, absent = case.store, sha(b"never stored")
    reads: list[Callable[[], object]] = [
        lambda: store.size(absent),
        lambda: store.open_stored(absent),
        lambda: store.read_range(absent, 0, 10),
        lambda: store.read_range(absent, 0, 0),
    ]
    for read in reads:
        with pytest.raises(NotFound, match=absent):
            read()
    assert not store.exists(absent)
    assert not store.quarantined(absent)
    assert not store.quarantine(absent)


def test_a_presigned_url_serves_the_range_its_reader_asks_for(case: StoreCase) -> None:
    publish(case.store, LARGE)
    url = case.store.presign_get(sha(LARGE), expires=60)
    if case.s3 is None:
        assert url is None  # the registry serves local blobs itself
        return
    assert url is not None
    answer = requests.get(url, headers={"Range": "bytes=100-199"}, timeout=10)
    assert (answer.status_code, answer.content) == (206, LARGE[100:200])
    assert requests.get(url, timeout=10).content == LARGE


def test_interrupted_multipart_uploads_are_aborted_once_old_enough(s3_source: S3Source) -> None:
    prefix = f"crashed-{uuid.uuid4().hex[:12]}"
    store = S3BlobStore.from_url(f"s3://{s3_source.bucket}/{prefix}")
    writer = store.writer(sha(LARGE))
    writer.write(LARGE[: PART_SIZE + 1])  # and then the server "crashes"
    assert store.discard_interrupted_uploads(older_than=timedelta(hours=1)) == 0
    assert store.discard_interrupted_uploads(older_than=timedelta(0)) == 1
    assert s3_source.pending_uploads(f"{prefix}/") == []


def test_a_store_the_server_cannot_use_says_why(s3_source: S3Source) -> None:
    """Not ``NotFound`` (the blob may well be there) nor ``Forbidden`` (the caller's
    token is fine): the server is set up wrong."""
    missing = S3BlobStore.from_url("s3://no-such-bucket/x")
    with pytest.raises(ArtfsError, match="bucket does not exist") as raised:
        missing.check()
    assert not isinstance(raised.value, NotFound)
    with pytest.raises(ArtfsError, match="bucket does not exist"):
        missing.read_many([sha(SMALL)], 100)
    wrong = boto3.client(
        "s3",
        aws_access_key_id="wrong",
        aws_secret_access_key="wrong",
        config=Config(signature_version="s3v4"),
    )
    with pytest.raises(ArtfsError, match="refuses the server's credentials"):
        S3BlobStore(wrong, s3_source.bucket).check()
    S3BlobStore.from_url(f"s3://{s3_source.bucket}/x").check()


def test_the_store_checks_the_bytes_it_receives_against_their_sha256(s3_source: S3Source) -> None:
    """What SeaweedFS does with ``x-amz-checksum-sha256``: bytes that do not hash to it
    (damaged on the way) are refused, and nothing is stored."""
    store = S3BlobStore.from_url(f"s3://{s3_source.bucket}/checked-{uuid.uuid4().hex[:12]}")
    key = store.key_for(sha(SMALL))
    with pytest.raises(Transient, match="BadDigest"):
        store.put_verified(key, SMALL, sha(b"other bytes"))
    assert not store.exists(sha(SMALL))
    store.put_verified(key, SMALL, sha(SMALL))
    assert store.exists(sha(SMALL))


@dataclass
class FaultyS3:
    store: S3BlobStore
    proxy: FaultProxy
    prefix: str


@pytest.fixture
def faulty_s3(s3_source: S3Source) -> Iterator[FaultyS3]:
    """A store reaching the real SeaweedFS through a proxy that injects faults, with
    one attempt per request (botocore's retries would only wait the faults out)."""
    prefix = f"faults-{uuid.uuid4().hex[:12]}"
    with FaultProxy(s3_source.endpoint) as proxy:
        client = boto3.client(
            "s3",
            endpoint_url=proxy.url,
            config=Config(signature_version="s3v4", retries={"total_max_attempts": 1}),
        )
        yield FaultyS3(S3BlobStore(client, s3_source.bucket, prefix), proxy, prefix)


def test_a_part_that_fails_aborts_the_whole_upload(
    faulty_s3: FaultyS3, s3_source: S3Source
) -> None:
    store = faulty_s3.store
    faulty_s3.proxy.add(Fault.status(503, method="PUT", times=1))  # one UploadPart
    writer = store.writer(sha(LARGE))
    writer.write(LARGE)  # the parts go out in threads: their errors come at the commit
    with pytest.raises(Transient, match="part"):
        writer.commit()
    assert not store.exists(sha(LARGE))
    assert s3_source.pending_uploads(f"{faulty_s3.prefix}/") == []


def test_a_read_cut_short_is_transient(faulty_s3: FaultyS3) -> None:
    store, proxy = faulty_s3.store, faulty_s3.proxy
    publish(store, LARGE)
    proxy.add(Fault.cut(after=3 << 20, method="GET"))
    with pytest.raises(Transient, match="broke off"):
        b"".join(store.read_range(sha(LARGE), 0, len(LARGE)))
    proxy.add(Fault.cut(after=1000, method="GET"))
    with store.open_stored(sha(LARGE)) as stored, pytest.raises(Transient, match="broke off"):
        stored.read()
