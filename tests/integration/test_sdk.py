"""The Python SDK against a real ``artfs serve``: log, get, download, aliases, tags, failures."""

from __future__ import annotations

import getpass
import hashlib
import io
import logging
import os
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import artfs
from artfs.errors import MissingReferences, UnfetchedReference
from artfs.sdk.download import safe_target
from artfs.transfer.downloads import part_path
from tests.integration.trees import BIG_FILE, make_tree, read_tree, write_tree
from tests.support.registry import RegistryProcess, free_port


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def client(shared_registry: RegistryProcess) -> Iterator[artfs.Client]:
    with artfs.Client(url=shared_registry.url) as client:
        yield client


def log_files(client: artfs.Client, name: str, files: dict[str, bytes]) -> artfs.LoggedArtifact:
    artifact = artfs.Artifact(name, type="dataset")
    for logical, data in files.items():
        artifact.add(io.BytesIO(data), logical_path=logical)
    return client.log_artifact(artifact)


class Pushed:
    def __init__(self, logged: artfs.LoggedArtifact, files: dict[str, bytes]) -> None:
        self.logged = logged
        self.files = files


@pytest.fixture
def pushed(tmp_path: Path, client: artfs.Client, name: str) -> Pushed:
    """A tree logged as v1 with semver 1.2.0, alias ``production``, tags and metadata."""
    files = make_tree(tmp_path / "src")
    artifact = artfs.Artifact(
        name,
        type="dataset",
        version="1.2.0",
        aliases=["production"],
        metadata={"rows": 100, "source": {"kind": "synthetic"}},
        version_tags=["nightly", "team-a"],
        description="A **test** dataset",
    )
    artifact.add(tmp_path / "src")
    return Pushed(client.log_artifact(artifact), files)


# -- round trip ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "version"),
    [
        ("{name}:v1", None),
        ("{name}", None),
        ("{name}", "production"),
        ("{name}:1.2.0", None),
        ("{name}:latest", None),
        ("{name}", "v1"),
    ],
)
def test_logged_tree_downloads_byte_identical(
    tmp_path: Path, client: artfs.Client, pushed: Pushed, ref: str, version: str | None
) -> None:
    got = client.get_artifact(ref.format(name=pushed.logged.name), version)
    assert got.version == "v1"
    dest = tmp_path / "dest"
    assert got.download(dest) == dest
    downloaded = read_tree(dest)
    assert set(downloaded) == set(pushed.files)
    for path, data in pushed.files.items():
        assert downloaded[path] == data, path
    assert not list(dest.rglob("*.artfs-part"))


def test_module_level_functions_use_the_environment(
    tmp_path: Path, shared_registry: RegistryProcess, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARTFS_URL", shared_registry.url)
    artifact = artfs.Artifact(name, type="model")
    artifact.add(io.BytesIO(b"weights"), logical_path="w.bin")
    logged = artfs.log_artifact(artifact)
    assert (logged.name, logged.version, logged.type) == (name, "v1", "model")
    fetched = artfs.get_artifact(f"{name}:latest")
    assert fetched.download(tmp_path / "d") == tmp_path / "d"
    assert read_tree(tmp_path / "d") == {"w.bin": b"weights"}


def test_logged_artifact_attributes(client: artfs.Client, pushed: Pushed) -> None:
    files = pushed.files
    for logged in (pushed.logged, client.get_artifact(pushed.logged.name, "production")):
        assert logged.name == pushed.logged.name
        assert logged.type == "dataset"
        assert logged.artifact_type == "dataset"
        assert logged.project == "default"
        assert logged.qualified_name == f"default/{pushed.logged.name}"
        assert logged.version == "v1"
        assert logged.semver == "1.2.0"
        assert sorted(logged.aliases) == ["latest", "production"]
        assert sorted(logged.version_tags) == ["nightly", "team-a"]
        assert logged.tags == logged.version_tags
        assert logged.metadata == {"rows": 100, "source": {"kind": "synthetic"}}
        assert logged.description == "A **test** dataset"
        assert len(logged.digest) == 64
        assert logged.size == sum(len(data) for data in files.values())
        assert logged.file_count == len(files)
        assert logged.state == "COMMITTED"
        now = datetime.now(UTC)
        assert now - timedelta(minutes=5) < logged.created_at <= now
        committed = logged.committed_at
        assert committed is not None
        assert logged.created_at <= committed <= now
        assert logged.source["user"] == getpass.getuser()
        assert logged.source["host"] == socket.gethostname()
        assert logged.noop is False
        assert logged.ttl_seconds is None

        manifest = logged.manifest
        assert set(manifest) == set(files)
        assert [asset.logical_path for asset in logged.assets] == sorted(files)
        for path, data in files.items():
            asset = logged.get_asset(path)
            assert asset.size == len(data)
            assert asset.digest == sha256(data)
            assert asset.uri is None
            assert asset.remote is False
            assert asset.metadata == {}
        assert logged.remote_assets == []
        with pytest.raises(artfs.NotFound, match="no-such-file"):
            logged.get_asset("no-such-file")
        with pytest.raises(artfs.NotFound):
            logged.get_asset("models")  # a directory is not an asset


def test_same_content_gives_same_digest_and_the_digest_tracks_content(
    client: artfs.Client, name: str
) -> None:
    one = log_files(client, name, {"a": b"1", "b/c": b"2"})
    other = log_files(client, name + "-other", {"b/c": b"2", "a": b"1"})
    changed = log_files(client, name, {"a": b"1", "b/c": b"3"})
    assert one.digest == other.digest
    assert changed.digest != one.digest
    assert changed.version == "v2"


def test_single_asset_download(tmp_path: Path, client: artfs.Client, pushed: Pushed) -> None:
    asset = pushed.logged.get_asset(BIG_FILE)
    target = asset.download(tmp_path / "one" / "w.bin")
    assert target.read_bytes() == pushed.files[BIG_FILE]
    assert sorted(p.name for p in target.parent.iterdir()) == ["w.bin"]


# -- Artifact.add ---------------------------------------------------------------


def test_add_single_file_with_logical_path(tmp_path: Path, client: artfs.Client, name: str) -> None:
    local = tmp_path / "model.pt"
    local.write_bytes(b"torch bytes")
    artifact = artfs.Artifact(name)
    artifact.add(local)  # default: the file's name
    artifact.add(local, logical_path="nested/dir/copy.pt")
    logged = client.log_artifact(artifact)
    assert logged.type == "dataset"  # the default type
    assert sorted(logged.manifest) == ["model.pt", "nested/dir/copy.pt"]
    assert logged.get_asset("nested/dir/copy.pt").digest == sha256(b"torch bytes")
    logged.download(tmp_path / "d")
    assert read_tree(tmp_path / "d") == {
        "model.pt": b"torch bytes",
        "nested/dir/copy.pt": b"torch bytes",
    }


def test_add_directory_under_a_prefix(tmp_path: Path, client: artfs.Client, name: str) -> None:
    write_tree(tmp_path / "src", {"a.txt": b"a", "sub/b.txt": b"b"})
    artifact = artfs.Artifact(name)
    artifact.add(tmp_path / "src", logical_path="inputs/")
    logged = client.log_artifact(artifact)
    assert sorted(logged.manifest) == ["inputs/a.txt", "inputs/sub/b.txt"]


def test_add_filelike(tmp_path: Path, client: artfs.Client, name: str) -> None:
    stream = io.BytesIO(b"in memory")
    artifact = artfs.Artifact(name)
    artifact.add(stream, logical_path="mem/data.bin")
    stream.write(b" changed later")  # copied at add time: does not change what is logged
    with open(tmp_path / "named.txt", "wb") as out:
        out.write(b"named file object")
    with open(tmp_path / "named.txt", "rb") as named:
        artifact.add(named)  # a real file object: its name is the default logical path
    logged = client.log_artifact(artifact)
    assert logged.get_asset("mem/data.bin").size == len(b"in memory")
    logged.download(tmp_path / "d")
    assert read_tree(tmp_path / "d") == {
        "mem/data.bin": b"in memory",
        "named.txt": b"named file object",
    }


def test_add_filelike_without_logical_path_is_invalid(name: str) -> None:
    artifact = artfs.Artifact(name)
    with pytest.raises(artfs.InvalidInput, match="logical_path"):
        artifact.add(io.BytesIO(b"data"))
    assert artifact.assets == []


@pytest.mark.parametrize("bad", ["../escape", "/abs", "a//b", "a/./b", ""])
def test_add_rejects_bad_logical_paths(name: str, bad: str) -> None:
    artifact = artfs.Artifact(name)
    with pytest.raises(artfs.InvalidInput):
        artifact.add(io.BytesIO(b"data"), logical_path=bad)
    assert artifact.assets == []


def test_add_missing_local_path_is_invalid(tmp_path: Path, name: str) -> None:
    with pytest.raises(artfs.InvalidInput, match="neither a file nor a directory"):
        artfs.Artifact(name).add(tmp_path / "missing")


def test_add_duplicate_needs_overwrite(tmp_path: Path, client: artfs.Client, name: str) -> None:
    artifact = artfs.Artifact(name)
    artifact.add(io.BytesIO(b"first"), logical_path="f.txt")
    with pytest.raises(artfs.InvalidInput, match="overwrite"):
        artifact.add(io.BytesIO(b"second"), logical_path="f.txt")
    local = tmp_path / "x"
    local.write_bytes(b"from disk")
    with pytest.raises(artfs.InvalidInput, match="overwrite"):
        artifact.add(local, logical_path="f.txt")
    artifact.add(io.BytesIO(b"third"), logical_path="f.txt", overwrite=True)
    assert [asset.logical_path for asset in artifact.assets] == ["f.txt"]
    logged = client.log_artifact(artifact)
    assert logged.get_asset("f.txt").digest == sha256(b"third")
    logged.download(tmp_path / "d")
    assert read_tree(tmp_path / "d") == {"f.txt": b"third"}


def test_add_refuses_file_directory_clash(name: str) -> None:
    artifact = artfs.Artifact(name)
    artifact.add(io.BytesIO(b"file"), logical_path="a/b")
    with pytest.raises(artfs.InvalidInput):
        artifact.add(io.BytesIO(b"below a file"), logical_path="a/b/c")
    with pytest.raises(artfs.InvalidInput):
        artifact.add(io.BytesIO(b"over a directory"), logical_path="a")


def test_per_file_metadata_is_logged(tmp_path: Path, client: artfs.Client, name: str) -> None:
    write_tree(tmp_path / "src", {"x.txt": b"x", "y/z.txt": b"z"})
    artifact = artfs.Artifact(name)
    artifact.add(io.BytesIO(b"w"), logical_path="w.bin", metadata={"split": "train", "n": 7})
    artifact.add(tmp_path / "src", metadata={"from": "dir"})
    artifact.add(io.BytesIO(b"plain"), logical_path="plain.txt")
    logged = client.get_artifact(client.log_artifact(artifact).name)
    assert logged.get_asset("w.bin").metadata == {"split": "train", "n": 7}
    assert logged.get_asset("x.txt").metadata == {"from": "dir"}
    assert logged.get_asset("y/z.txt").metadata == {"from": "dir"}
    assert logged.get_asset("plain.txt").metadata == {}


def test_invalid_metadata_is_refused(name: str) -> None:
    with pytest.raises(artfs.InvalidInput):
        artfs.Artifact(name).add(io.BytesIO(b"x"), logical_path="x", metadata={"t": object()})
    with pytest.raises(artfs.TooLarge):
        artfs.Artifact(name, metadata={f"k{i}": i for i in range(101)})


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": ".hidden"},
        {"name": "a/b"},
        {"name": "x" * 101},
        {"name": "ok", "type": "bad type"},
        {"name": "ok", "version": "1.2"},
        {"name": "ok", "aliases": ["v3"]},
        {"name": "ok", "aliases": ["1.0.0"]},
        {"name": "ok", "version_tags": ["no spaces"]},
    ],
)
def test_artifact_constructor_validates(kwargs: dict[str, object]) -> None:
    with pytest.raises(artfs.InvalidInput):
        artfs.Artifact(**kwargs)  # type: ignore[arg-type]


def test_add_reference_file_uri(tmp_path: Path, client: artfs.Client, name: str) -> None:
    outside = tmp_path / "nfs" / "shard.bin"
    outside.parent.mkdir()
    outside.write_bytes(b"bytes that stay on the share" * 10)
    artifact = artfs.Artifact(name)
    artifact.add_reference(outside.as_uri(), logical_path="remote/shard.bin")
    artifact.add_reference(outside.as_uri(), metadata={"mount": "nfs"})  # default: file name
    artifact.add(io.BytesIO(b"local"), logical_path="local.txt")
    logged = client.log_artifact(artifact)
    assert logged.file_count == 3
    remote = logged.get_asset("remote/shard.bin")
    assert remote.remote
    assert remote.uri == outside.as_uri()
    assert remote.size == outside.stat().st_size
    assert remote.digest == sha256(outside.read_bytes())
    assert logged.get_asset("shard.bin").metadata == {"mount": "nfs"}
    assert sorted(asset.logical_path for asset in logged.remote_assets) == [
        "remote/shard.bin",
        "shard.bin",
    ]
    # References are fetched from their URIs, verified (tests/integration/test_references.py).
    assert read_tree(logged.download(tmp_path / "d")) == {
        "local.txt": b"local",
        "remote/shard.bin": outside.read_bytes(),
        "shard.bin": outside.read_bytes(),
    }
    assert remote.download(tmp_path / "r.bin").read_bytes() == outside.read_bytes()
    # Gone from its source: the rest is written, then an error names what is missing.
    outside.unlink()
    with artfs.Client(url=client.registry.url, use_cache=False) as fresh:
        again = fresh.get_artifact(f"{name}:{logged.version}")
        with pytest.raises(MissingReferences, match=r"remote/shard\.bin") as caught:
            again.download(tmp_path / "gone")
    assert sorted(caught.value.references) == [
        UnfetchedReference("remote/shard.bin", outside.as_uri()),
        UnfetchedReference("shard.bin", outside.as_uri()),
    ]
    assert read_tree(tmp_path / "gone") == {"local.txt": b"local"}


def test_add_reference_validates(tmp_path: Path, name: str) -> None:
    artifact = artfs.Artifact(name)
    with pytest.raises(artfs.InvalidInput, match="scheme"):
        artifact.add_reference("ftp://host/file")
    with pytest.raises(artfs.InvalidInput, match="no such file"):
        artifact.add_reference((tmp_path / "missing").as_uri())
    assert artifact.assets == []


# -- versions: no-op, force, concurrency ------------------------------------------


def test_identical_content_is_a_noop_unless_forced(
    tmp_path: Path, client: artfs.Client, name: str
) -> None:
    write_tree(tmp_path / "src", {"a.txt": b"same", "b/c.txt": b"content"})

    def log(force: bool = False, aliases: tuple[str, ...] = ()) -> artfs.LoggedArtifact:
        artifact = artfs.Artifact(name, aliases=aliases)
        artifact.add(tmp_path / "src")
        return client.log_artifact(artifact, force=force)

    first = log()
    again = log(aliases=("staging",))
    assert (first.version, first.noop) == ("v1", False)
    assert (again.version, again.noop) == ("v1", True)
    assert again.digest == first.digest
    assert sorted(again.aliases) == ["latest", "staging"]  # aliases still apply
    forced = log(force=True)
    assert (forced.version, forced.noop) == ("v2", False)
    assert forced.digest == first.digest
    assert [v.version for v in client.list_versions(name)] == ["v1", "v2"]
    assert client.get_artifact(name).version == "v2"


def test_concurrent_logs_get_distinct_versions(
    shared_registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    def log(i: int) -> tuple[int, str]:
        with artfs.Client(url=shared_registry.url) as own:
            artifact = artfs.Artifact(name, type="dataset")
            artifact.add(io.BytesIO(f"content {i}".encode()), logical_path="f.txt")
            artifact.add(io.BytesIO(b"shared by all"), logical_path="common.txt")
            return i, own.log_artifact(artifact).version

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = dict(pool.map(log, range(8)))
    assert sorted(results.values(), key=lambda v: int(v[1:])) == [f"v{n}" for n in range(1, 9)]
    with artfs.Client(url=shared_registry.url) as client:
        for i, version in results.items():
            logged = client.get_artifact(name, version)
            assert logged.get_asset("f.txt").digest == sha256(f"content {i}".encode())
        assert client.get_artifact(name).version == "v8"
        assert len(client.list_versions(name)) == 8


# -- download strategies ----------------------------------------------------------


@pytest.fixture
def small(client: artfs.Client, name: str) -> artfs.LoggedArtifact:
    return log_files(
        client,
        name,
        {"a.txt": b"artifact a", "sub/b.txt": b"artifact b", "sub/c.txt": b"artifact c"},
    )


def test_download_fail_strategy_raises_conflict_and_writes_nothing(
    tmp_path: Path, small: artfs.LoggedArtifact
) -> None:
    dest = write_tree(tmp_path / "dest", {"sub/b.txt": b"local edit"})
    for strategy in ("FAIL", "fail", False):
        with pytest.raises(artfs.Conflict, match=r"b\.txt"):
            small.download(dest, overwrite_strategy=strategy)
        assert read_tree(dest) == {"sub/b.txt": b"local edit"}


def test_download_fail_strategy_accepts_identical_files(
    tmp_path: Path, small: artfs.LoggedArtifact
) -> None:
    dest = write_tree(tmp_path / "dest", {"a.txt": b"artifact a", "unrelated.txt": b"mine"})
    small.download(dest)
    assert read_tree(dest) == {
        "a.txt": b"artifact a",
        "sub/b.txt": b"artifact b",
        "sub/c.txt": b"artifact c",
        "unrelated.txt": b"mine",
    }


def test_download_preserve_keeps_local_file_and_warns(
    tmp_path: Path, small: artfs.LoggedArtifact, caplog: pytest.LogCaptureFixture
) -> None:
    dest = write_tree(tmp_path / "dest", {"sub/b.txt": b"local edit"})
    with caplog.at_level(logging.WARNING, logger="artfs.download"):
        small.download(dest, overwrite_strategy="PRESERVE")
    assert read_tree(dest) == {
        "a.txt": b"artifact a",
        "sub/b.txt": b"local edit",
        "sub/c.txt": b"artifact c",
    }
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "b.txt" in warnings[0].getMessage()
    assert warnings[0].name == "artfs.download"


def test_download_overwrite_replaces(tmp_path: Path, small: artfs.LoggedArtifact) -> None:
    for strategy in ("OVERWRITE", True):
        dest = write_tree(tmp_path / f"dest-{strategy}", {"sub/b.txt": b"local edit, longer"})
        small.download(dest, overwrite_strategy=strategy)
        assert read_tree(dest) == {
            "a.txt": b"artifact a",
            "sub/b.txt": b"artifact b",
            "sub/c.txt": b"artifact c",
        }


def test_download_unknown_strategy_is_invalid(tmp_path: Path, small: artfs.LoggedArtifact) -> None:
    with pytest.raises(artfs.InvalidInput, match="overwrite_strategy"):
        small.download(tmp_path / "d", overwrite_strategy="MERGE")
    assert not (tmp_path / "d").exists()


def test_download_path_prefix(tmp_path: Path, small: artfs.LoggedArtifact) -> None:
    small.download(tmp_path / "sub", path_prefix="sub/")
    assert read_tree(tmp_path / "sub") == {"sub/b.txt": b"artifact b", "sub/c.txt": b"artifact c"}
    small.download(tmp_path / "a", path_prefix="a")
    assert read_tree(tmp_path / "a") == {"a.txt": b"artifact a"}
    with pytest.raises(artfs.InvalidInput, match="starts with 'zzz'"):
        small.download(tmp_path / "none", path_prefix="zzz")
    assert not (tmp_path / "none").exists()


def test_download_refuses_symlink_out_of_target(
    tmp_path: Path, small: artfs.LoggedArtifact
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "sub").symlink_to(outside, target_is_directory=True)
    with pytest.raises(artfs.InvalidInput, match="symlink"):
        small.download(dest)
    assert list(outside.iterdir()) == []
    assert sorted(p.name for p in dest.iterdir()) == ["sub"]
    with pytest.raises(artfs.InvalidInput):
        small.download(dest, overwrite_strategy="OVERWRITE", path_prefix="sub/")
    assert list(outside.iterdir()) == []


def test_download_refuses_symlinked_file(tmp_path: Path, small: artfs.LoggedArtifact) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"keep me")
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "a.txt").symlink_to(victim)
    with pytest.raises(artfs.InvalidInput):
        small.download(dest, overwrite_strategy="OVERWRITE")
    assert victim.read_bytes() == b"keep me"


@pytest.mark.parametrize(
    ("in_the_way", "message"),
    [
        ({"sub": b"a file where the version has a directory"}, "sub exists and is not a dir"),
        ({"a.txt/x": b"a directory where the version has a file"}, "a.txt exists and is not a reg"),
    ],
)
def test_download_refuses_a_tree_of_another_shape_and_writes_nothing(
    tmp_path: Path, small: artfs.LoggedArtifact, in_the_way: dict[str, bytes], message: str
) -> None:
    dest = write_tree(tmp_path / "dest", in_the_way)
    for strategy in ("FAIL", "PRESERVE", "OVERWRITE"):
        with pytest.raises(artfs.InvalidInput, match=message):
            small.download(dest, overwrite_strategy=strategy)
        assert read_tree(dest) == in_the_way
        assert sorted(p.name for p in dest.iterdir()) == sorted(
            {path.split("/")[0] for path in in_the_way}
        )


@pytest.mark.parametrize("bad", ["../x", "/abs", "a/../../x", "a/./b", "", "a//b", "..", "a\0b"])
def test_safe_target_refuses_escapes(tmp_path: Path, bad: str) -> None:
    with pytest.raises(artfs.InvalidInput):
        safe_target(tmp_path, bad)


def test_safe_target_places_files_below_root(tmp_path: Path) -> None:
    assert safe_target(tmp_path, "a/b/c.txt") == tmp_path.resolve() / "a" / "b" / "c.txt"
    assert safe_target(tmp_path, "..hidden") == tmp_path.resolve() / "..hidden"


# -- resume ---------------------------------------------------------------------


@pytest.mark.parametrize("part", ["first-half", "wrong-bytes", "too-long"])
def test_download_resumes_or_restarts_a_partial_file(
    tmp_path: Path, client: artfs.Client, name: str, part: str
) -> None:
    data = bytes(range(256)) * (3 * 4096 + 17)  # ~3 MiB, not a multiple of the block size
    logged = log_files(client, name, {"dir/big.bin": data, "small.txt": b"small"})
    dest = tmp_path / "dest"
    target = dest / "dir" / "big.bin"
    partial = part_path(target, sha256(data))
    partial.parent.mkdir(parents=True)
    half = len(data) // 2
    if part == "first-half":
        partial.write_bytes(data[:half])
    elif part == "wrong-bytes":
        partial.write_bytes(b"\xff" * half)
    else:
        partial.write_bytes(data + b"extra")
    # A second link keeps the part file's inode alive, so "the download finished in
    # this very file" (resumed) and "it started a new file" (restarted) tell apart.
    keeper = tmp_path / "keeper"
    os.link(partial, keeper)
    logged.download(dest)
    assert read_tree(dest) == {"dir/big.bin": data, "small.txt": b"small"}
    assert not partial.exists()
    assert target.samefile(keeper) is (part == "first-half")


# -- aliases, tags, deletion ------------------------------------------------------


def test_aliases_and_tags(client: artfs.Client, name: str) -> None:
    v1 = log_files(client, name, {"f": b"1"})
    v2 = log_files(client, name, {"f": b"2"})
    assert v1.set_alias("staging") is v1
    assert sorted(v1.aliases) == ["staging"]
    assert client.get_artifact(f"{name}:staging").version == "v1"
    v2.set_alias("staging")  # moves the alias
    assert sorted(v2.aliases) == ["latest", "staging"]
    assert client.get_artifact(name, "staging").version == "v2"
    assert client.get_artifact(name, "v1").aliases == []
    with pytest.raises(artfs.InvalidInput):
        v1.set_alias("latest")
    with pytest.raises(artfs.InvalidInput):
        v1.set_alias("v7")

    v1.add_tag("reviewed")
    v1.add_tag("reviewed")  # idempotent
    v1.add_tag("golden")
    assert v1.version_tags == ["golden", "reviewed"]
    assert client.get_artifact(name, "v1").version_tags == ["golden", "reviewed"]
    v1.remove_tag("golden")
    assert client.get_artifact(name, "v1").version_tags == ["reviewed"]
    with pytest.raises(artfs.NotFound):
        v1.remove_tag("golden")

    v2.remove_alias("staging")
    assert v2.aliases == ["latest"]
    with pytest.raises(artfs.NotFound):
        client.get_artifact(name, "staging")


def test_delete_refuses_while_aliases_point_at_the_version(
    tmp_path: Path, client: artfs.Client, name: str
) -> None:
    v1 = log_files(client, name, {"f": b"1"})
    v2 = log_files(client, name, {"f": b"2"})
    v1.set_alias("production")
    with pytest.raises(artfs.Conflict, match="production"):
        v1.delete(delete_aliases=False)
    assert client.get_artifact(name, "v1").state == "COMMITTED"
    v1.delete(delete_aliases=True)
    assert v1.state == "DELETED"
    with pytest.raises(artfs.NotFound):
        client.get_artifact(name, "v1")
    with pytest.raises(artfs.NotFound):
        client.get_artifact(name, "production")
    # ``latest`` alone does not block deletion; it moves back to the newest survivor.
    v2.delete()
    with pytest.raises(artfs.NotFound):
        client.get_artifact(name)
    v3 = log_files(client, name, {"f": b"3"})
    assert v3.version == "v3"  # ids are never reused


def test_unknown_artifact_and_version(client: artfs.Client, name: str) -> None:
    with pytest.raises(artfs.NotFound):
        client.get_artifact(name)
    log_files(client, name, {"f": b"1"})
    for ref in ("v2", "9.9.9", "nope"):
        with pytest.raises(artfs.NotFound):
            client.get_artifact(name, ref)
    for bad in (f"{name}:bad/alias", ".x", f"{name}:v0"):
        with pytest.raises(artfs.InvalidInput):
            client.get_artifact(bad)
    with pytest.raises(artfs.InvalidInput, match="not both"):
        client.get_artifact(f"{name}:v1", "v1")


def test_type_and_semver_conflicts(client: artfs.Client, name: str) -> None:
    first = artfs.Artifact(name, type="model", version="1.0.0")
    first.add(io.BytesIO(b"1"), logical_path="f")
    client.log_artifact(first)
    other_type = artfs.Artifact(name, type="dataset")
    other_type.add(io.BytesIO(b"2"), logical_path="f")
    with pytest.raises(artfs.Conflict, match="type"):
        client.log_artifact(other_type)
    same_label = artfs.Artifact(name, version="1.0.0")
    same_label.add(io.BytesIO(b"3"), logical_path="f")
    with pytest.raises(artfs.Conflict, match=r"1\.0\.0"):
        client.log_artifact(same_label)
    assert [v.version for v in client.list_versions(name)] == ["v1"]


# -- server trouble ---------------------------------------------------------------


def test_committed_version_survives_a_server_kill(
    tmp_path: Path, registry: RegistryProcess, name: str
) -> None:
    files = make_tree(tmp_path / "src", big_size=1 << 20)
    artifact = artfs.Artifact(name, aliases=["production"])
    artifact.add(tmp_path / "src")
    with artfs.Client(url=registry.url) as client:
        logged = client.log_artifact(artifact)
    registry.restart(kill=True)
    with artfs.Client(url=registry.url) as client:
        again = client.get_artifact(name, "production")
        assert (again.version, again.digest, again.state) == ("v1", logged.digest, "COMMITTED")
        again.download(tmp_path / "dest")
    assert read_tree(tmp_path / "dest") == files


def test_unreachable_registry_raises_transient() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with (
        artfs.Client(url=url, retries=1) as client,
        pytest.raises(artfs.Transient, match="cannot reach"),
    ):
        client.get_artifact("anything")
    assert time.monotonic() - started < 5


def test_client_rejects_a_url_without_scheme() -> None:
    with pytest.raises(artfs.InvalidInput, match="http"):
        artfs.Client(url="127.0.0.1:8765")


def test_filelike_copies_of_an_unlogged_artifact_are_removed() -> None:
    import gc
    import io

    artifact = artfs.Artifact("never-logged")
    artifact.add(io.BytesIO(b"payload"), logical_path="p.bin")
    copy = artifact.assets[0].local_path
    assert copy is not None
    assert copy.exists()
    del artifact
    gc.collect()
    assert not copy.exists()
