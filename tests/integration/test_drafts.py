"""Drafts as W&B has them, against a real registry: finalized after logging, ``remove`` of
files, directories and entries, snapshots at ``add``, ``new_draft`` and incremental drafts
that keep references and metadata."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import artfs
from artfs.errors import Conflict, Finalized, InvalidInput
from tests.support.artifacts import draft_with_references
from tests.support.registry import RegistryProcess


@pytest.fixture
def client(shared_registry: RegistryProcess) -> Iterator[artfs.Client]:
    with artfs.Client(url=shared_registry.url) as client:
        yield client


def entries(logged: artfs.LoggedArtifact) -> dict[str, tuple[str | None, str | None, object]]:
    return {a.logical_path: (a.digest, a.uri, a.metadata) for a in logged.assets}


def test_a_logged_draft_refuses_changes(tmp_path: Path, client: artfs.Client, name: str) -> None:
    artifact = artfs.Artifact(name, type="dataset")
    artifact.add(io.BytesIO(b"one"), "one.txt")
    first = client.log_artifact(artifact)
    (tmp_path / "two.txt").write_bytes(b"two")
    changes: list[Callable[[], object]] = [
        lambda: artifact.add(tmp_path / "two.txt"),
        lambda: artifact.add_file(tmp_path / "two.txt"),
        lambda: artifact.add_dir(tmp_path),
        lambda: artifact.add_reference((tmp_path / "two.txt").as_uri()),
        lambda: artifact.remove("one.txt"),
        lambda: setattr(artifact, "metadata", {"late": True}),
        lambda: setattr(artifact, "description", "late"),
    ]
    for change in changes:
        with pytest.raises(Finalized, match="new_draft"):
            change()
    assert [a.logical_path for a in artifact.assets] == ["one.txt"]
    assert artifact.metadata == {}
    # Logging the same draft again finds nothing new: the no-op, not an error.
    again = client.log_artifact(artifact)
    assert again.noop
    assert again.version == first.version


def test_finalize_then_log(client: artfs.Client, name: str) -> None:
    artifact = artfs.Artifact(name, type="dataset")
    artifact.add(io.BytesIO(b"x"), "x")
    artifact.finalize()
    with pytest.raises(Finalized):
        artifact.add(io.BytesIO(b"y"), "y")
    assert client.log_artifact(artifact).file_count == 1


def test_remove_a_file_a_directory_or_an_entry(
    tmp_path: Path, client: artfs.Client, name: str
) -> None:
    artifact = draft_with_references(tmp_path, name)
    artifact.remove("data/")  # a directory: everything below it
    artifact.remove(next(a for a in artifact.assets if a.logical_path == "remote/extra.bin"))
    with pytest.raises(InvalidInput, match="not in artifact"):
        artifact.remove("data/a.txt")
    with pytest.raises(InvalidInput, match="takes a path or an entry"):
        artifact.remove(3)
    logged = client.log_artifact(artifact)
    assert sorted(entries(logged)) == ["c.txt", "remote/labels.csv"]
    # A logged entry names its path too (W&B passes manifest entries).
    draft = logged.new_draft()
    draft.remove(logged.get_asset("c.txt"))
    assert [a.logical_path for a in draft.assets] == ["remote/labels.csv"]


def test_a_file_is_snapshotted_at_add(tmp_path: Path, client: artfs.Client, name: str) -> None:
    (tmp_path / "dir").mkdir()
    mutable, immutable, in_dir = tmp_path / "m.txt", tmp_path / "i.txt", tmp_path / "dir" / "d.txt"
    for path in (mutable, immutable, in_dir):
        path.write_bytes(b"as added")
    artifact = artfs.Artifact(name, type="dataset")
    artifact.add(mutable)
    artifact.add_file(immutable, policy="immutable")
    artifact.add_dir(tmp_path / "dir", name="dir")
    for path in (mutable, immutable, in_dir):
        path.write_bytes(b"edited before logging")
    logged = client.log_artifact(artifact)
    out = logged.download(tmp_path / "out")
    assert (out / "m.txt").read_bytes() == b"as added"
    assert (out / "dir" / "d.txt").read_bytes() == b"as added"
    # "immutable" is a promise not to change the file; it is read when logged.
    assert (out / "i.txt").read_bytes() == b"edited before logging"
    with pytest.raises(InvalidInput, match="policy"):
        artfs.Artifact(name).add(mutable, policy="sometimes")


def test_new_draft_keeps_references_and_metadata(
    tmp_path: Path, client: artfs.Client, name: str
) -> None:
    v1 = client.log_artifact(draft_with_references(tmp_path, name))
    assert v1.file_count == 5
    # Unchanged, the draft is the same content: the no-op, the same version.
    same = client.log_artifact(v1.new_draft())
    assert same.noop
    assert (same.version, same.digest) == (v1.version, v1.digest)
    draft = v1.new_draft()
    draft.add(io.BytesIO(b"d"), "d.txt")
    v2 = client.log_artifact(draft)
    assert (v2.version, v2.file_count) == ("v2", 6)
    kept = entries(v2)
    del kept["d.txt"]
    assert kept == entries(v1)
    assert kept["remote/labels.csv"][1] is not None  # still a reference, by its uri
    assert kept["remote/labels.csv"][2] == {"owner": "ml"}
    assert kept["data/a.txt"][2] == {"split": "train"}
    assert (v2.metadata, v2.description) == ({"rows": 3}, "three")
    # Replaced metadata is replaced.
    draft = v2.new_draft()
    draft.metadata = {"rows": 4}
    assert client.log_artifact(draft, force=True).metadata == {"rows": 4}


def test_incremental_draft_lays_changes_over_latest(
    tmp_path: Path, client: artfs.Client, name: str
) -> None:
    v1 = client.log_artifact(draft_with_references(tmp_path, name))
    patch = artfs.Artifact(name, type="dataset", incremental=True)
    patch.add(io.BytesIO(b"new c"), "c.txt")
    patch.add(io.BytesIO(b"e"), "data/e.txt")
    patch.remove("remote/extra.bin")  # in the base, not in the draft
    v2 = client.log_artifact(patch)
    got = entries(v2)
    assert sorted(got) == ["c.txt", "data/a.txt", "data/b.txt", "data/e.txt", "remote/labels.csv"]
    assert got["c.txt"][0] != entries(v1)["c.txt"][0]
    assert got["remote/labels.csv"] == entries(v1)["remote/labels.csv"]
    assert got["data/a.txt"] == entries(v1)["data/a.txt"]
    assert v2.metadata == {"rows": 3}
    # Removing what the base does not have is refused, and nothing is logged.
    wrong = artfs.Artifact(name, incremental=True)
    wrong.remove("no/such")
    with pytest.raises(InvalidInput, match="no/such"):
        client.log_artifact(wrong)
    assert client.get_artifact(name).version == v2.version
    # A directory of the base goes whole.
    dropped = artfs.Artifact(name, incremental=True, metadata={"rows": 1})
    dropped.remove("data")
    v3 = client.log_artifact(dropped)
    assert sorted(entries(v3)) == ["c.txt", "remote/labels.csv"]
    assert v3.metadata == {"rows": 1}


def test_incremental_first_version(client: artfs.Client, name: str) -> None:
    first = artfs.Artifact(name, type="dataset", incremental=True)
    first.add(io.BytesIO(b"1"), "1.txt")
    assert [a.logical_path for a in client.log_artifact(first).assets] == ["1.txt"]


def test_an_incremental_draft_never_drops_a_version_committed_meanwhile(
    client: artfs.Client, shared_registry: RegistryProcess, name: str
) -> None:
    first = artfs.Artifact(name, type="dataset")
    first.add(io.BytesIO(b"1"), "1.txt")
    client.log_artifact(first)
    registry = client.registry

    class Racing:
        """The real registry, with another writer committing right after the base is read."""

        def __getattr__(self, attribute: str) -> object:
            return getattr(registry, attribute)

        def list_files(self, *args: object, **kwargs: object) -> object:
            files = list(registry.list_files(*args, **kwargs))  # type: ignore[arg-type]
            with artfs.Client(url=shared_registry.url) as other:
                meanwhile = artfs.Artifact(name, type="dataset")
                meanwhile.add(io.BytesIO(b"2"), "2.txt")
                other.log_artifact(meanwhile)
            return iter(files)

    client.registry = Racing()  # type: ignore[assignment]
    patch = artfs.Artifact(name, incremental=True)
    patch.add(io.BytesIO(b"3"), "3.txt")
    with pytest.raises(Conflict, match="latest"):
        client.log_artifact(patch)
    client.registry = registry
    # Logged again, it is laid over the version committed meanwhile.
    assert sorted(a.logical_path for a in client.log_artifact(patch).assets) == ["2.txt", "3.txt"]
