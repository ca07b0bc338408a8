"""``artfs serve --store s3://…`` on a real S3-compatible server (SeaweedFS): versions
logged, pulled and read through a mount, with the bytes read straight from the store
(presigned URLs) and through the registry when direct reads are off or a URL fails."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from artfs.client.presigned import Presigned
from artfs.client.ranged import RangeReader
from artfs.config import resolve_config
from tests.integration.test_cli import fails, ok
from tests.integration.test_verify import push, report
from tests.support.mount import mounted
from tests.support.registry import RegistryProcess, auth_headers
from tests.support.s3_source import S3Source

#: Six requests' worth (8 MiB each) and a half: a read spans several ranged GETs.
SIZE = (105 << 20) // 2
#: Fetch worker processes of the mount: each learns on its own that URLs are offered.
WORKERS = 2
TIMEOUT = 30


def _store_url(s3: S3Source) -> str:
    return f"s3://{s3.bucket}/registry-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def s3_registry(s3_source: S3Source, tmp_path: Path) -> Iterator[RegistryProcess]:
    server = RegistryProcess(
        tmp_path / "registry", serve_args=["--store", _store_url(s3_source)], env=s3_source.env
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _log_weights(url: str, tmp_path: Path) -> bytes:
    data = os.urandom(SIZE)
    source = tmp_path / "weights.bin"
    source.write_bytes(data)
    ok(url, "log", source, "--name", "bert", "--type", "model")
    return data


def _blob_gets(server: RegistryProcess) -> list[str]:
    return [line for line in server.requests_seen() if "/blobs/" in line]


def test_a_version_on_s3_is_pulled_and_read_through_a_mount_straight_from_the_store(
    s3_registry: RegistryProcess, s3_source: S3Source, tmp_path: Path
) -> None:
    data = _log_weights(s3_registry.url, tmp_path)
    digest = hashlib.sha256(data).hexdigest()
    # The blob is in the bucket, under the store's prefix, and nowhere in the data folder.
    listed = s3_source.client.list_objects_v2(Bucket=s3_source.bucket)
    assert any(item["Key"].endswith(digest) for item in listed.get("Contents", []))
    assert not list((tmp_path / "registry").rglob(digest))

    ok(s3_registry.url, "pull", "bert:v1", tmp_path / "pulled")
    assert (tmp_path / "pulled" / "weights.bin").read_bytes() == data

    before = len(_blob_gets(s3_registry))
    workers = ("--fetch-workers", str(WORKERS))
    with mounted(tmp_path / "mnt", s3_registry.url, tmp_path / "cache", *workers) as mount:
        assert (mount.path / "bert" / "v1" / "weights.bin").read_bytes() == data
    asked = _blob_gets(s3_registry)[before:]
    # A first range through the registry tells each fetching process to ask for URLs;
    # the other ranges (52.5 MiB: at least 7 requests of 8 MiB) came from the store.
    assert any(line.endswith("/url") for line in asked), asked
    through = [line for line in asked if not line.endswith(("/url", "/chunks"))]
    assert len(through) <= WORKERS + 1, asked


def test_direct_reads_off_serves_every_range_through_the_registry(
    s3_source: S3Source, tmp_path: Path
) -> None:
    server = RegistryProcess(
        tmp_path / "registry",
        serve_args=["--store", _store_url(s3_source), "--direct-reads", "off"],
    )
    server.start()
    try:
        data = _log_weights(server.url, tmp_path)
        digest = hashlib.sha256(data).hexdigest()
        answer = requests.get(
            f"{server.url}/api/v1/projects/default/blobs/{digest}/url",
            headers=auth_headers(),
            timeout=TIMEOUT,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["url"] is None
        before = len(server.requests_seen())
        with mounted(tmp_path / "mnt", server.url, tmp_path / "cache") as mount:
            assert (mount.path / "bert" / "v1" / "weights.bin").read_bytes() == data
        seen = server.requests_seen()[before:]
        assert not [line for line in seen if line.endswith("/url")], seen  # never offered
        assert [line for line in seen if line.endswith(digest)], seen  # the registry served
        ranged = requests.get(
            f"{server.url}/api/v1/projects/default/blobs/{digest}",
            headers={**auth_headers(), "Range": "bytes=10-19"},
            timeout=TIMEOUT,
        )
        assert ranged.status_code == 206
        assert ranged.content == data[10:20]
        assert ranged.headers["Content-Range"] == f"bytes 10-19/{SIZE}"
        unsatisfiable = requests.get(
            f"{server.url}/api/v1/projects/default/blobs/{digest}",
            headers={**auth_headers(), "Range": f"bytes={SIZE}-"},
            timeout=TIMEOUT,
        )
        assert unsatisfiable.status_code == 416
    finally:
        server.stop()


def test_a_url_the_store_refuses_sends_the_read_through_the_registry(
    s3_registry: RegistryProcess, tmp_path: Path
) -> None:
    data = _log_weights(s3_registry.url, tmp_path)
    digest = hashlib.sha256(data).hexdigest()
    reader = RangeReader(resolve_config(s3_registry.url, "default"))
    try:
        with reader.open(digest, 0, 10) as body:  # through the registry: URLs offered
            first = bytearray(10)
            assert body.read_into(memoryview(first))
        assert reader.direct.offered
        good = reader.direct.get(digest)
        assert good is not None
        # A URL whose signature the store rejects (as an expired one is rejected).
        forged = Presigned(good.https, good.host, good.port, good.target + "0")
        reader.direct._urls[digest] = (forged, float("inf"))
        got = bytearray(100)
        with reader.open(digest, 1000, 1100) as body:
            assert body.read_into(memoryview(got))
        assert bytes(got) == data[1000:1100]
        assert reader.direct.fallbacks == 1
        # The next read asks for a fresh URL and goes straight to the store again.
        with reader.open(digest, 2000, 2100) as body:
            assert body.read_into(memoryview(got))
        assert bytes(got) == data[2000:2100]
        assert reader.direct.fallbacks == 1
    finally:
        reader.close()


def test_a_pull_takes_every_blob_straight_from_the_store(
    s3_registry: RegistryProcess, tmp_path: Path
) -> None:
    source = tmp_path / "shards"
    source.mkdir()
    shards = {f"shard-{i}.bin": os.urandom(1 << 20) for i in range(4)}
    for file, data in shards.items():
        (source / file).write_bytes(data)
    ok(s3_registry.url, "log", source, "--name", "shards", "--type", "dataset")
    before = len(_blob_gets(s3_registry))
    ok(s3_registry.url, "pull", "shards:v1", tmp_path / "pulled")
    for file, data in shards.items():
        assert (tmp_path / "pulled" / file).read_bytes() == data
    asked = _blob_gets(s3_registry)[before:]
    through = [line for line in asked if not line.endswith(("/url", "/chunks"))]
    # The version's manifest already said the registry gives URLs: every blob came
    # straight from the store, and the registry only answered where to find it.
    assert len([line for line in asked if line.endswith("/url")]) == len(shards), asked
    assert through == [], asked


def test_a_store_artfs_cannot_use_is_refused_before_anything_starts(
    s3_source: S3Source, tmp_path: Path
) -> None:
    data = tmp_path / "d"
    for bad in ("ftp://bucket/prefix", "s3://", "/var/lib/blobs"):
        line = fails("http://127.0.0.1:1", "serve", "--data", data, "--store", bad)
        assert "--store takes s3://BUCKET/PREFIX" in line
    assert not data.exists()
    line = fails("http://127.0.0.1:1", "serve", "--data", data, "--store", "s3://no-such-bucket")
    assert "no-such-bucket" in line
    assert not data.exists()  # nothing made for a registry that could not start


def test_a_blob_quarantined_on_the_store_is_named_corrupt_not_missing(
    s3_registry: RegistryProcess, tmp_path: Path
) -> None:
    data = os.urandom(3 << 20)  # several chunks: a reader asks for its chunk list
    digest = hashlib.sha256(data).hexdigest()
    push(s3_registry, "model", tmp_path / "v1", {"weights.bin": data})
    s3_registry.replace_stored(digest, bytes(len(data)))  # a store that lost the bytes
    code, found = report(s3_registry, "--all")
    assert code == 1
    assert [(bad["digest"], bad["quarantined"]) for bad in found["bad"]] == [(digest, True)]
    # Every route a reader takes says why, the chunk list included: never "no such blob".
    blob = f"{s3_registry.url}/api/v1/projects/default/blobs/{digest}"
    for url in (blob, f"{blob}/chunks"):
        answer = requests.get(url, headers=auth_headers(), timeout=TIMEOUT)
        assert answer.status_code == 500, (url, answer.text)
        assert answer.json()["error"]["code"] == "corrupt"
        assert "quarantined" in answer.json()["error"]["message"]
