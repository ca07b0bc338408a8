"""What a new user hit in the SDK and ``push``/``pull``, against a real registry.

Expected aliases that moved, a ``path_prefix`` matching nothing, where ``add``
puts a directory, references skipped without a word, a file where ``pull``
wanted a directory, and which version a tag landed on.
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import artfs
from artfs.errors import MissingReferences, UnfetchedReference
from artfs.upload.publish import LocalEntry, VersionRequest, publish
from tests.integration.trees import read_tree, write_tree
from tests.support.registry import RegistryProcess


@pytest.fixture
def client(shared_registry: RegistryProcess) -> Iterator[artfs.Client]:
    with artfs.Client(url=shared_registry.url) as client:
        yield client


def cli(url: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "artfs", *map(str, args)],
        env={**os.environ, "ARTFS_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one ``artfs: error:`` line of a failed command."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("artfs: error: "), result.stderr
    return lines[0].removeprefix("artfs: error: ")


MNIST = {
    "a.txt": b"a",
    "README.md": b"# mnist",
    "checkpoints/epoch1.pt": b"one",
    "checkpoints/epoch2.pt": b"two",
    "zeta/z.bin": b"z",
}


@pytest.fixture
def mnist(tmp_path: Path, client: artfs.Client, name: str) -> artfs.LoggedArtifact:
    artifact = artfs.Artifact(name)
    artifact.add(write_tree(tmp_path / "mnist-src", MNIST))
    return client.log_artifact(artifact)


# -- 1. an expected alias is a condition, not a move -----------------------------------


def test_publish_with_an_expectation_moves_only_the_asked_for_aliases(
    tmp_path: Path, client: artfs.Client, name: str
) -> None:
    """What ``artfs commit`` sends: aliases plus alias_expect, through the SDK's publisher."""
    one = artfs.Artifact(name, aliases=["production"])
    one.add(io.BytesIO(b"1"), logical_path="f")
    client.log_artifact(one)
    local = tmp_path / "f"
    local.write_bytes(b"2")
    request = VersionRequest(aliases=["candidate"], alias_expect={"production": "v1"})
    published = publish(client.registry, name, [LocalEntry("f", 1, local)], request)
    assert published.version["version"] == "v2"
    assert sorted(client.get_artifact(name, "v2").aliases) == ["candidate", "latest"]
    assert client.get_artifact(name, "production").version == "v1"
    # A lost expectation still refuses the commit and moves nothing.
    local.write_bytes(b"3")
    lost = VersionRequest(aliases=["candidate"], alias_expect={"production": "v2"})
    with pytest.raises(artfs.Conflict, match="points at v1"):
        publish(client.registry, name, [LocalEntry("f", 1, local)], lost)
    assert [v.version for v in client.list_versions(name)] == ["v1", "v2"]
    assert client.get_artifact(name, "candidate").version == "v2"


# -- 2. a path prefix that matches nothing ----------------------------------------------


def test_a_path_prefix_matching_nothing_is_invalid_and_lists_the_top_level(
    tmp_path: Path, mnist: artfs.LoggedArtifact
) -> None:
    dest = tmp_path / "dest"
    with pytest.raises(artfs.InvalidInput) as caught:
        mnist.download(dest, path_prefix="nothing/")
    assert caught.value.message == (
        f"no file of {mnist.name}:v1 starts with 'nothing/'; "
        "its top level: a.txt, checkpoints/, README.md, zeta/"
    )
    assert not dest.exists()  # nothing written, not even the directory
    mnist.download(dest, path_prefix="checkpoints/")
    assert read_tree(dest) == {
        "checkpoints/epoch1.pt": b"one",
        "checkpoints/epoch2.pt": b"two",
    }


def test_the_top_level_listed_is_cut_after_the_first_few(
    tmp_path: Path, client: artfs.Client, name: str
) -> None:
    artifact = artfs.Artifact(name)
    for i in range(12):
        artifact.add(io.BytesIO(b"x"), logical_path=f"f{i:02}.txt")
    logged = client.log_artifact(artifact)
    with pytest.raises(artfs.InvalidInput) as caught:
        logged.download(tmp_path / "d", path_prefix="g")
    assert caught.value.message.endswith(
        "its top level: f00.txt, f01.txt, f02.txt, f03.txt, f04.txt, f05.txt, f06.txt, "
        "f07.txt and 4 more"
    )


def test_pull_with_a_path_prefix_matching_nothing_fails_with_one_line(
    tmp_path: Path, shared_registry: RegistryProcess, mnist: artfs.LoggedArtifact
) -> None:
    dest = tmp_path / "pulled"
    line = error_line(cli(shared_registry.url, "pull", mnist.name, dest, "--path-prefix", "x/"))
    assert line == (
        f"no file of {mnist.name}:v1 starts with 'x/'; "
        "its top level: a.txt, checkpoints/, README.md, zeta/"
    )
    assert not dest.exists()


# -- 3. where add() puts a directory -------------------------------------------------------


def test_add_a_directory_puts_its_files_at_the_root_unless_named(
    tmp_path: Path, client: artfs.Client, name: str
) -> None:
    src = write_tree(tmp_path / "checkpoints", {"a.pt": b"a", "deep/b.pt": b"b"})
    Adder = Callable[[artfs.Artifact], None]
    at_root: dict[str, Adder] = {
        "add": lambda art: art.add(src),
        "add, trailing slash": lambda art: art.add(f"{src}/"),
        "add_dir": lambda art: art.add_dir(src),
    }
    named: dict[str, Adder] = {
        "add name=": lambda art: art.add(f"{src}/", name="checkpoints"),
        "add name= with slash": lambda art: art.add(src, name="checkpoints/"),
        "add logical_path=": lambda art: art.add(src, logical_path="checkpoints"),
        "add_dir name=": lambda art: art.add_dir(src, name="checkpoints"),
    }
    for adders, expected in [
        (at_root, ["a.pt", "deep/b.pt"]),
        (named, ["checkpoints/a.pt", "checkpoints/deep/b.pt"]),
    ]:
        for label, add in adders.items():
            artifact = artfs.Artifact(name)
            add(artifact)
            assert [a.logical_path for a in artifact.assets] == expected, label
    artifact = artfs.Artifact(name)
    artifact.add(src, name="checkpoints")
    logged = client.log_artifact(artifact)
    assert sorted(logged.manifest) == ["checkpoints/a.pt", "checkpoints/deep/b.pt"]


def test_add_name_for_a_file_and_the_w_and_b_add_file(tmp_path: Path, name: str) -> None:
    local = tmp_path / "model.pt"
    local.write_bytes(b"weights")
    artifact = artfs.Artifact(name)
    artifact.add(local, name="weights/model.pt")
    artifact.add_file(local)
    artifact.add_file(local, name="copy.pt")
    artifact.add(io.BytesIO(b"card"), name="README.md")
    assert [a.logical_path for a in artifact.assets] == [
        "README.md",
        "copy.pt",
        "model.pt",
        "weights/model.pt",
    ]


def test_add_refuses_ambiguous_or_wrong_kinds_and_adds_nothing(tmp_path: Path, name: str) -> None:
    src = write_tree(tmp_path / "src", {"a.txt": b"a"})
    artifact = artfs.Artifact(name)
    with pytest.raises(artfs.InvalidInput, match="not both"):
        artifact.add(src, logical_path="x", name="y")
    with pytest.raises(artfs.InvalidInput, match="is not a directory"):
        artifact.add_dir(src / "a.txt")
    with pytest.raises(artfs.InvalidInput, match="is not a file"):
        artifact.add_file(src)
    for bad in ("../up", "/abs", "", "/"):
        with pytest.raises(artfs.InvalidInput):
            artifact.add_dir(src, name=bad)
    assert artifact.assets == []
    # A clash halfway through a directory leaves none of it added.
    write_tree(src, {"b.txt": b"b", "c.txt": b"c"})
    artifact.add(io.BytesIO(b"first"), logical_path="in/b.txt")
    with pytest.raises(artfs.InvalidInput, match="already in artifact"):
        artifact.add_dir(src, name="in")
    assert [a.logical_path for a in artifact.assets] == ["in/b.txt"]
    artifact.add_dir(src, name="other")
    assert len(artifact.assets) == 4


def test_the_readme_sdk_example_downloads_the_checkpoints(
    tmp_path: Path, client: artfs.Client, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's SDK block, step by step, with local paths of this test."""
    monkeypatch.chdir(tmp_path)
    write_tree(tmp_path / "checkpoints", {"epoch1.pt": b"one", "best/epoch2.pt": b"two"})
    (tmp_path / "card.md").write_bytes(b"# resnet")
    shared = tmp_path / "shared" / "big.parquet"
    shared.parent.mkdir()
    shared.write_bytes(b"parquet bytes")
    artifact = artfs.Artifact(
        name, type="model", aliases=["candidate"], metadata={"top1": 0.91}, version_tags=["s"]
    )
    artifact.add("checkpoints/", name="checkpoints")
    with open("card.md", "rb") as card:
        artifact.add(card, logical_path="README.md")
    artifact.add_reference(shared.as_uri())
    assert client.log_artifact(artifact).version == "v1"
    model = client.get_artifact(f"{name}:candidate")
    model.download("weights/", overwrite_strategy="FAIL", path_prefix="checkpoints/")
    assert read_tree(tmp_path / "weights") == {
        "checkpoints/epoch1.pt": b"one",
        "checkpoints/best/epoch2.pt": b"two",
    }
    assert model.get_asset("README.md").size == len(b"# resnet")


def test_push_of_a_directory_still_puts_its_files_at_the_root(
    tmp_path: Path, shared_registry: RegistryProcess, client: artfs.Client, name: str
) -> None:
    src = write_tree(tmp_path / "data", {"x.npy": b"x", "sub/y.npy": b"y"})
    pushed = cli(shared_registry.url, "push", name, src)
    assert pushed.returncode == 0, pushed.stderr
    assert sorted(client.get_artifact(name).manifest) == ["sub/y.npy", "x.npy"]


# -- 4. references that cannot be fetched are named, not skipped silently ----------------------


@pytest.fixture
def with_reference(tmp_path: Path, client: artfs.Client, name: str) -> artfs.LoggedArtifact:
    """Four files, one of them a reference to a file outside the registry, gone since."""
    outside = tmp_path / "nfs" / "big.parquet"
    outside.parent.mkdir()
    outside.write_bytes(b"stays on the share")
    artifact = artfs.Artifact(name)
    for path in ("a.txt", "b/c.txt", "d.txt"):
        artifact.add(io.BytesIO(path.encode()), logical_path=path)
    artifact.add_reference(outside.as_uri(), logical_path="data/big.parquet")
    logged = client.log_artifact(artifact)
    outside.unlink()
    return logged


LOCAL_FILES = {"a.txt": b"a.txt", "b/c.txt": b"b/c.txt", "d.txt": b"d.txt"}


def test_download_writes_the_rest_then_names_the_references(
    tmp_path: Path, with_reference: artfs.LoggedArtifact
) -> None:
    uri = with_reference.get_asset("data/big.parquet").uri
    assert uri is not None
    dest = tmp_path / "dest"
    with pytest.raises(MissingReferences) as caught:
        with_reference.download(dest)
    assert read_tree(dest) == LOCAL_FILES
    assert caught.value.references == [UnfetchedReference("data/big.parquet", uri)]
    assert isinstance(caught.value, artfs.InvalidInput)
    assert caught.value.message == (
        f"1 reference(s) of {with_reference.name}:v1 could not be fetched: data/big.parquet "
        f"(reference {uri!r}: no such file); the other 3 file(s) are in {dest}. "
        "Pass allow_missing_references=True to download without them"
    )
    # Only references under the prefix count.
    with_reference.download(tmp_path / "b-only", path_prefix="b/")
    assert read_tree(tmp_path / "b-only") == {"b/c.txt": b"b/c.txt"}
    with pytest.raises(MissingReferences):
        with_reference.download(tmp_path / "data-only", path_prefix="data/")


def test_allow_missing_references_warns_per_file_and_returns(
    tmp_path: Path, with_reference: artfs.LoggedArtifact, caplog: pytest.LogCaptureFixture
) -> None:
    dest = tmp_path / "dest"
    with caplog.at_level(logging.WARNING, logger="artfs.download"):
        assert with_reference.download(dest, allow_missing_references=True) == dest
    assert read_tree(dest) == LOCAL_FILES
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "data/big.parquet" in warnings[0]
    assert "no such file" in warnings[0]


def test_downloading_one_reference_is_a_clear_error(
    tmp_path: Path, with_reference: artfs.LoggedArtifact
) -> None:
    asset = with_reference.get_asset("data/big.parquet")
    with pytest.raises(MissingReferences, match=r"could not be fetched.*file://.*no such file"):
        asset.download(tmp_path / "big.parquet")
    assert not (tmp_path / "big.parquet").exists()


def test_pull_of_a_version_with_a_reference_fails_after_writing_the_rest(
    tmp_path: Path, shared_registry: RegistryProcess, with_reference: artfs.LoggedArtifact
) -> None:
    dest = tmp_path / "pulled"
    line = error_line(cli(shared_registry.url, "pull", with_reference.name, dest))
    assert "data/big.parquet (file://" in line
    assert "could not be fetched" in line
    assert read_tree(dest) == LOCAL_FILES


# -- 5. a file where the download wants a directory; strategies as typed ---------------------


def test_download_onto_a_file_is_a_sentence_and_writes_nothing(
    tmp_path: Path, mnist: artfs.LoggedArtifact
) -> None:
    existing = write_tree(tmp_path / "data", {"a.txt": b"mine"}) / "a.txt"
    with pytest.raises(artfs.InvalidInput) as caught:
        mnist.download(existing)
    assert caught.value.message == (
        f"{existing} is a file; a download needs a directory to write into"
    )
    with pytest.raises(artfs.InvalidInput) as caught:
        mnist.download(existing / "below")
    assert caught.value.message == (
        f"cannot make the directory {existing / 'below'}: {existing} is a file"
    )
    assert read_tree(tmp_path / "data") == {"a.txt": b"mine"}


def test_pull_onto_a_file_says_so_in_a_sentence(
    tmp_path: Path, shared_registry: RegistryProcess, mnist: artfs.LoggedArtifact
) -> None:
    write_tree(tmp_path / "data", {"a.txt": b"mine"})
    result = subprocess.run(
        [sys.executable, "-m", "artfs", "pull", f"{mnist.name}:v1", "./data/a.txt"],
        env={**os.environ, "ARTFS_URL": shared_registry.url},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert error_line(result) == "data/a.txt is a file; a download needs a directory to write into"
    assert read_tree(tmp_path / "data") == {"a.txt": b"mine"}


def test_strategy_names_in_messages_are_the_ones_a_user_types(
    tmp_path: Path, mnist: artfs.LoggedArtifact
) -> None:
    dest = write_tree(tmp_path / "dest", {"a.txt": b"local edit"})
    with pytest.raises(artfs.Conflict) as conflict:
        mnist.download(dest)
    with pytest.raises(artfs.InvalidInput) as unknown:
        mnist.download(dest, overwrite_strategy="MERGE")
    for message in (conflict.value.message, unknown.value.message):
        for upper in ("FAIL", "PRESERVE", "OVERWRITE"):
            assert upper not in message
    assert "overwrite strategy fail" in conflict.value.message
    assert "choose preserve (keep them) or overwrite (replace them)" in conflict.value.message
    assert unknown.value.message == (
        "overwrite_strategy must be fail, preserve or overwrite, not 'MERGE'"
    )


# -- 6. which version a tag lands on ------------------------------------------------------------


def test_tagging_through_an_alias_tags_and_reports_the_resolved_version(
    client: artfs.Client, name: str
) -> None:
    """What ``artfs tag add NAME:REF TAG`` builds on: resolve once, tag that version."""
    for data in (b"1", b"2"):
        artifact = artfs.Artifact(name, aliases=["production"] if data == b"1" else [])
        artifact.add(io.BytesIO(data), logical_path="f")
        client.log_artifact(artifact)
    logged = client.get_artifact(f"{name}:production")
    client.get_artifact(name, "v2").set_alias("production")  # moves after the lookup
    tagged = logged.add_tag("reviewed")
    assert tagged is logged
    assert (tagged.name, tagged.version, tagged.tags) == (name, "v1", ["reviewed"])
    assert client.get_artifact(name, "v2").tags == []
