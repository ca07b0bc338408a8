"""References read from their own URIs, against real sources started by the tests: a
local directory, an HTTP server with ranges (``tests/support/http_source.py``) and an
S3-compatible server (SeaweedFS, ``tests/support/s3_source.py``)."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import artfs
from artfs.errors import MissingReferences, SourceChanged, UnfetchedReference
from tests.integration.trees import read_tree
from tests.support.azure_source import AzureSource
from tests.support.gcs_source import GcsSource
from tests.support.http_source import HttpSource
from tests.support.mount import artfs as run_artfs
from tests.support.registry import RegistryProcess
from tests.support.s3_source import S3Source


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def client(shared_registry: RegistryProcess) -> Iterator[artfs.Client]:
    """A client without the machine cache, which would serve logged bytes it holds
    without asking the source (``test_the_machine_cache_keeps_the_logged_bytes``)."""
    with artfs.Client(url=shared_registry.url, use_cache=False) as client:
        yield client


def test_a_directory_expands_to_its_files_and_downloads_verified(
    tmp_path: Path, client: artfs.Client, name: str
) -> None:
    share = tmp_path / "share"
    (share / "sub").mkdir(parents=True)
    (share / "a.txt").write_bytes(b"alpha")
    (share / "sub" / "b.bin").write_bytes(b"\x02" * 3000)
    artifact = artfs.Artifact(name)
    added = artifact.add_reference(share.as_uri(), name="data")
    assert [asset.logical_path for asset in added] == ["data/a.txt", "data/sub/b.bin"]
    logged = client.log_artifact(artifact)
    asset = logged.get_asset("data/sub/b.bin")
    assert asset.uri == (share / "sub" / "b.bin").as_uri()
    assert asset.digest == sha256(b"\x02" * 3000)
    assert read_tree(logged.download(tmp_path / "d")) == {
        "data/a.txt": b"alpha",
        "data/sub/b.bin": b"\x02" * 3000,
    }
    assert asset.download(tmp_path / "one.bin").read_bytes() == b"\x02" * 3000

    # Same size, other bytes: the checksum catches it, and nothing is written.
    (share / "a.txt").write_bytes(b"ALPHA")
    with pytest.raises(SourceChanged, match=r"data/a\.txt: its source file://"):
        logged.download(tmp_path / "again")
    assert not (tmp_path / "again" / "data" / "a.txt").exists()
    assert read_tree(tmp_path / "again") == {"data/sub/b.bin": b"\x02" * 3000}

    # Without a checksum a file is pinned by its mtime: touching it is a change.
    pinned = tmp_path / "pinned.txt"
    pinned.write_bytes(b"pinned")
    draft = artfs.Artifact(name)
    draft.add_reference(pinned.as_uri(), checksum=False)
    asset = client.log_artifact(draft).get_asset("pinned.txt")
    assert asset.download(tmp_path / "p.txt").read_bytes() == b"pinned"
    os.utime(pinned, ns=(0, pinned.stat().st_mtime_ns + 10**9))
    with pytest.raises(SourceChanged, match=r"pinned\.txt: .*\(mtime_ns "):
        asset.download(tmp_path / "p2.txt")

    # Gone: MissingReferences names it, unless the caller does without it.
    (share / "a.txt").unlink()
    with pytest.raises(MissingReferences, match=r"data/a\.txt") as caught:
        logged.download(tmp_path / "gone")
    assert caught.value.references == [UnfetchedReference("data/a.txt", (share / "a.txt").as_uri())]
    logged.download(tmp_path / "lenient", allow_missing_references=True)
    assert read_tree(tmp_path / "lenient") == {"data/sub/b.bin": b"\x02" * 3000}


def test_the_machine_cache_keeps_the_logged_bytes(
    tmp_path: Path, shared_registry: RegistryProcess, name: str
) -> None:
    """A reference downloaded once is in the cache by its digest: a later download
    copies the logged bytes from there, even after the source changed."""
    share = tmp_path / "share.txt"
    share.write_bytes(b"logged")
    artifact = artfs.Artifact(name)
    artifact.add_reference(share.as_uri())
    with artfs.Client(url=shared_registry.url) as cached:
        logged = cached.log_artifact(artifact)
        logged.download(tmp_path / "first")
        share.write_bytes(b"edited")
        assert read_tree(logged.download(tmp_path / "second")) == {"share.txt": b"logged"}


def test_max_objects_bounds_a_directory(tmp_path: Path, name: str) -> None:
    share = tmp_path / "share"
    share.mkdir()
    for i in range(3):
        (share / f"{i}.txt").write_bytes(b"x")
    artifact = artfs.Artifact(name)
    with pytest.raises(artfs.InvalidInput, match="more than 2 objects"):
        artifact.add_reference(share.as_uri(), max_objects=2)
    assert artifact.assets == []
    assert len(artifact.add_reference(share.as_uri(), max_objects=3)) == 3


def test_http_reference_with_and_without_checksum(
    tmp_path: Path, client: artfs.Client, http_source: HttpSource, name: str
) -> None:
    data = bytes(range(256)) * 20
    (http_source.root / f"{name}.bin").write_bytes(data)
    url = http_source.url(f"{name}.bin")
    artifact = artfs.Artifact(name)
    artifact.add_reference(url, name="summed.bin")
    artifact.add_reference(url, name="pinned.bin", checksum=False)
    logged = client.log_artifact(artifact)
    summed, pinned = logged.get_asset("summed.bin"), logged.get_asset("pinned.bin")
    assert (summed.size, summed.digest, summed.uri) == (len(data), sha256(data), url)
    # Without a checksum: what the server offers, kept as the URI's pin.
    assert pinned.digest is None
    assert pinned.uri is not None
    assert pinned.uri.startswith(url + "#etag=")
    assert pinned.size == len(data)
    assert read_tree(logged.download(tmp_path / "d")) == {"summed.bin": data, "pinned.bin": data}

    # Rewritten with the same length: both notice, one by its digest, one by its ETag.
    (http_source.root / f"{name}.bin").write_bytes(data[::-1])
    with pytest.raises(SourceChanged, match=r"pinned\.bin: its source http://"):
        logged.get_asset("pinned.bin").download(tmp_path / "p.bin")
    with pytest.raises(SourceChanged, match=r"summed\.bin: .*\(sha256 "):
        logged.get_asset("summed.bin").download(tmp_path / "s.bin")
    assert not (tmp_path / "p.bin").exists()
    assert not (tmp_path / "s.bin").exists()

    # Logging the changed source again is a new version, not the no-op.
    again = artfs.Artifact(name)
    again.add_reference(url, name="summed.bin")
    again.add_reference(url, name="pinned.bin", checksum=False)
    assert not client.log_artifact(again).noop


def test_s3_prefix_expands_up_to_max_objects(
    tmp_path: Path, client: artfs.Client, s3_source: S3Source, name: str
) -> None:
    files = {f"{name}/shards/{i}.bin": bytes([i]) * (100 + i) for i in range(3)}
    for key, data in files.items():
        s3_source.put(key, data)
    single = s3_source.put(f"{name}/single.txt", b"one object")
    prefix = f"s3://{s3_source.bucket}/{name}/shards"
    artifact = artfs.Artifact(name)
    with pytest.raises(artfs.InvalidInput, match="more than 2 objects"):
        artifact.add_reference(prefix, max_objects=2)
    assert artifact.assets == []
    added = artifact.add_reference(prefix, name="shards", max_objects=3)
    assert [asset.logical_path for asset in added] == [f"shards/{i}.bin" for i in range(3)]
    artifact.add_reference(single, checksum=False)
    logged = client.log_artifact(artifact)
    assert logged.get_asset("shards/1.bin").digest == sha256(files[f"{name}/shards/1.bin"])
    pinned = logged.get_asset("single.txt")
    assert pinned.digest is None
    assert pinned.uri is not None
    assert pinned.uri.startswith(single + "#etag=")
    assert read_tree(logged.download(tmp_path / "d")) == {
        **{f"shards/{i}.bin": bytes([i]) * (100 + i) for i in range(3)},
        "single.txt": b"one object",
    }

    s3_source.put(f"{name}/single.txt", b"one OBJECT")  # same size, new ETag
    s3_source.put(f"{name}/shards/2.bin", b"\x09" * 102)
    with pytest.raises(SourceChanged, match=r"shards/2\.bin: .*\(sha256 ") as caught:
        logged.download(tmp_path / "later")
    assert "(and 1 more changed)" in caught.value.message
    with pytest.raises(SourceChanged, match=r"single\.txt: its source s3://.*\(etag "):
        pinned.download(tmp_path / "single.txt")
    assert read_tree(tmp_path / "later") == {
        f"shards/{i}.bin": bytes([i]) * (100 + i) for i in range(2)
    }


def test_azure_prefix_checksums_and_pins(
    tmp_path: Path, client: artfs.Client, azure_source: AzureSource, name: str
) -> None:
    for i in range(3):
        azure_source.put(f"{name}/runs/{i}.json", b'{"run": %d}' % i)
    prefix = f"az://{azure_source.container}/{name}/runs/"
    artifact = artfs.Artifact(name)
    with pytest.raises(artfs.InvalidInput, match="more than 2 objects"):
        artifact.add_reference(prefix, max_objects=2)
    artifact.add_reference(prefix, name="runs")
    artifact.add_reference(prefix + "2.json", name="pinned.json", checksum=False)
    logged = client.log_artifact(artifact)
    assert logged.get_asset("runs/0.json").digest == sha256(b'{"run": 0}')
    pinned = logged.get_asset("pinned.json")
    assert pinned.digest is None
    assert pinned.uri is not None
    assert pinned.uri.startswith(prefix + "2.json#etag=")
    assert read_tree(logged.download(tmp_path / "d")) == {
        **{f"runs/{i}.json": b'{"run": %d}' % i for i in range(3)},
        "pinned.json": b'{"run": 2}',
    }
    azure_source.put(f"{name}/runs/2.json", b'{"run": 9}')  # same size, new ETag
    with pytest.raises(SourceChanged, match=r"pinned\.json: its source az://.*\(etag "):
        pinned.download(tmp_path / "pinned.json")
    with pytest.raises(SourceChanged, match=r"runs/2\.json: .*\(sha256 "):
        logged.get_asset("runs/2.json").download(tmp_path / "two.json")


def test_gcs_prefix_checksums_and_etags(
    tmp_path: Path, client: artfs.Client, gcs_source: GcsSource, name: str
) -> None:
    for i in range(3):
        gcs_source.put(f"{name}/evals/{i}.txt", b"eval %d" % i)
    prefix = f"gs://{gcs_source.bucket}/{name}/evals"
    artifact = artfs.Artifact(name)
    with pytest.raises(artfs.InvalidInput, match="more than 2 objects"):
        artifact.add_reference(prefix, max_objects=2)
    artifact.add_reference(prefix, name="evals")
    artifact.add_reference(prefix + "/1.txt", name="pinned.txt", checksum=False)
    logged = client.log_artifact(artifact)
    assert logged.get_asset("evals/2.txt").digest == sha256(b"eval 2")
    pinned = logged.get_asset("pinned.txt")
    assert pinned.digest is None
    assert pinned.uri is not None
    assert pinned.uri.startswith(prefix + "/1.txt#etag=")
    assert read_tree(logged.download(tmp_path / "d")) == {
        **{f"evals/{i}.txt": b"eval %d" % i for i in range(3)},
        "pinned.txt": b"eval 1",
    }
    gcs_source.put(f"{name}/evals/2.txt", b"EVAL 2")
    with pytest.raises(SourceChanged, match=r"evals/2\.txt: .*\(sha256 "):
        logged.download(tmp_path / "later")
    gcs_source.put(f"{name}/evals/1.txt", b"EVAL 1")  # same size, new ETag
    with pytest.raises(SourceChanged, match=r"pinned\.txt: its source gs://.*\(etag "):
        pinned.download(tmp_path / "pinned.txt")


def test_artfs_pull_fetches_references(
    tmp_path: Path, shared_registry: RegistryProcess, http_source: HttpSource, name: str
) -> None:
    (http_source.root / f"{name}.csv").write_bytes(b"id,label\n1,cat\n")
    artifact = artfs.Artifact(name)
    artifact.add_reference(http_source.url(f"{name}.csv"), name="labels.csv")
    artifact.add(io.BytesIO(b"local"), logical_path="local.txt")
    with artfs.Client(url=shared_registry.url, use_cache=False) as client:
        client.log_artifact(artifact)
    pulled = run_artfs(
        "pull", name, str(tmp_path / "pulled"), env={"ARTFS_URL": shared_registry.url}
    )
    assert pulled.returncode == 0, pulled.stderr
    assert read_tree(tmp_path / "pulled") == {
        "labels.csv": b"id,label\n1,cat\n",
        "local.txt": b"local",
    }

    (http_source.root / f"{name}.csv").write_bytes(b"id,label\n1,dog\n")
    # This machine's cache holds the logged bytes: they are what a pull writes.
    cached = run_artfs(
        "pull", name, str(tmp_path / "cached"), env={"ARTFS_URL": shared_registry.url}
    )
    assert cached.returncode == 0, cached.stderr
    assert (tmp_path / "cached" / "labels.csv").read_bytes() == b"id,label\n1,cat\n"
    # Another machine's (an empty cache) asks the source, and refuses what changed.
    elsewhere = {"ARTFS_URL": shared_registry.url, "XDG_CACHE_HOME": str(tmp_path / "elsewhere")}
    changed = run_artfs("pull", name, str(tmp_path / "again"), env=elsewhere)
    assert changed.returncode != 0
    assert f"labels.csv: its source {http_source.url(name + '.csv')} changed" in changed.stderr
    assert read_tree(tmp_path / "again") == {"local.txt": b"local"}


def test_unsupported_schemes_are_named(name: str) -> None:
    artifact = artfs.Artifact(name)
    for uri in ("ftp://host/file", "abfs://container/blob"):
        with pytest.raises(artfs.InvalidInput, match="file, http, https, s3, gs, az"):
            artifact.add_reference(uri)
    with pytest.raises(artfs.InvalidInput, match="fragment"):
        artifact.add_reference("http://example.invalid/a#b")
    assert artifact.assets == []
