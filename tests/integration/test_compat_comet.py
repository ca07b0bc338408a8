"""``artfs.compat.comet`` against a real registry: the documents' examples as written (only
the import changed), then ``Artifact`` and ``LoggedArtifact`` member by member."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import pytest
from semantic_version import Version

import artfs
from artfs.compat.comet import (
    Artifact,
    ArtifactAssetNotFound,
    ArtifactDownloadException,
    ArtifactNotFound,
    Experiment,
    LoggedArtifact,
)
from artfs.errors import Conflict, InvalidInput
from tests.support.http_source import HttpSource
from tests.support.registry import RegistryProcess
from tests.support.s3_source import S3Source

WORKSPACE = PROJECT_NAME = "default"


@pytest.fixture
def url(shared_registry: RegistryProcess, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    monkeypatch.setenv("ARTFS_URL", shared_registry.url)
    monkeypatch.chdir(tmp_path)
    return shared_registry.url


def test_the_documented_examples(
    registry: RegistryProcess, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """comet_ml.Artifact's two examples and the Artifacts overview's, with the names they
    use (a registry of the test's own), in a scratch directory instead of /data/input."""
    monkeypatch.setenv("ARTFS_URL", registry.url)
    monkeypatch.chdir(tmp_path)
    Path("local-file").write_text("local")
    Path("path/to/my").mkdir(parents=True)
    Path("path/to/my/file.csv").write_text("a,b\n1,2\n")
    artifact: Any  # the examples give the name to an Artifact, then to a LoggedArtifact

    experiment = Experiment()
    artifact = Artifact("Artifact-Name", "Artifact-Type")
    artifact.add("local-file")

    experiment.log_artifact(artifact)
    experiment.end()

    experiment = Experiment()
    artifact = experiment.get_artifact("Artifact-Name", WORKSPACE, PROJECT_NAME)

    artifact.download(str(tmp_path / "data" / "input"))
    assert (tmp_path / "data" / "input" / "local-file").read_text() == "local"

    # "3 lines of code to register an Artifact", "2 lines ... to download and use" it.
    artifact = Artifact("artifact-name", "dataset")
    artifact.add("path/to/my/file.csv")
    experiment.log_artifact(artifact)
    logged_artifact = experiment.get_artifact("artifact-name")
    local_artifact = logged_artifact.download()
    experiment.end()

    assert local_artifact.download_local_path is not None
    assert Path(local_artifact.download_local_path, "file.csv").read_text() == "a,b\n1,2\n"
    # "A version tracks which experiments consumed it, and which experiment produced it."
    assert logged_artifact.source_experiment_key == experiment.get_key()
    assert experiment.get_key() in [r.id for r in artfs.get_artifact("artifact-name").used_by()]


def test_artifact_members(url: str, tmp_path: Path, name: str) -> None:
    Path("data").mkdir()
    Path("data/a.txt").write_text("a")
    Path("data/b.txt").write_text("bb")
    Path("remote.bin").write_bytes(b"r" * 10)
    artifact = Artifact(
        name,
        artifact_type="dataset",
        aliases=["best", "best", "latest"],
        metadata={"rows": 2},
        version_tags=["raw"],
    )
    assert artifact.aliases == {"best"}  # a set; "latest" is the registry's to keep
    assert artifact.download_local_path is None
    artifact.add("data", logical_path="data")
    artifact.add(io.BytesIO(b"stream"), logical_path="s.bin", copy_to_tmp=False, metadata={"k": 1})
    with pytest.raises(InvalidInput, match="overwrite"):
        artifact.add(io.BytesIO(b"other"), logical_path="s.bin")
    artifact.add(io.BytesIO(b"other"), logical_path="s.bin", overwrite=True)
    artifact.add_remote((tmp_path / "remote.bin").as_uri(), logical_path="r.bin")
    assert [(a.logical_path, a.remote) for a in artifact.assets] == [
        ("data/a.txt", False),
        ("data/b.txt", False),
        ("r.bin", True),
        ("s.bin", False),
    ]
    with pytest.raises(InvalidInput, match="100"):
        Artifact("n" * 101)

    with Experiment() as experiment:
        logged = experiment.log_artifact(artifact)
    assert isinstance(logged, LoggedArtifact)
    assert (logged.name, logged.artifact_type, logged.workspace) == (name, "dataset", "default")
    assert logged.aliases == {"best", "latest"}
    assert logged.version_tags == {"raw"}
    assert logged.metadata == {"rows": 2}
    assert logged.size == 1 + 2 + 10 + 5
    assert logged.version == Version("1.0.0")  # numbered automatically
    assert [a.logical_path for a in logged.remote_assets] == ["r.bin"]
    assert logged.get_asset("s.bin").size == 5
    assert logged.get_asset("r.bin").link == (tmp_path / "remote.bin").as_uri()
    with pytest.raises(ArtifactAssetNotFound):
        logged.get_asset("nope")
    assert logged.artifact_tags == set()
    with artfs.Client() as client:
        client.set_artifact_tags(name, ["curated", "public"])
    assert logged.artifact_tags == {"curated", "public"}
    source = logged.get_source_experiment()
    assert source.key == logged.source_experiment_key == experiment.get_key()
    with Experiment(workspace="default") as other:
        assert other.get_artifact(name, version_or_alias="1.0.0").size == logged.size
        assert other.get_artifact(f"default/{name}:best").name == name
        with pytest.raises(ArtifactNotFound):
            other.get_artifact(f"{name}:v9")


def test_download_strategies(
    url: str, tmp_path: Path, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    artifact = Artifact(name, "model")
    artifact.add(io.BytesIO(b"weights"), "w.bin")
    artifact.add_remote(_remote(tmp_path), "r.bin")
    with Experiment() as experiment:
        experiment.log_artifact(artifact)
        logged = experiment.get_artifact(f"{name}:latest")

        out = tmp_path / "out"
        out.mkdir()
        (out / "w.bin").write_bytes(b"mine")
        with pytest.raises(ArtifactDownloadException) as raised:
            logged.download(str(out), sync_mode=False)
        assert isinstance(raised.value, Conflict)
        assert (out / "w.bin").read_bytes() == b"mine"
        with caplog.at_level(logging.WARNING):
            logged.download(str(out), overwrite_strategy="PRESERVE", sync_mode=False)
        assert (out / "w.bin").read_bytes() == b"mine"
        local = logged.download(str(out), overwrite_strategy=True, sync_mode=False)
        assert (out / "w.bin").read_bytes() == b"weights"
        assert local.download_local_path == str(out)
        assert {a.logical_path: a.local_path_or_data for a in local.assets} == {
            "r.bin": None,
            "w.bin": str(out / "w.bin"),
        }

        # The downloaded artifact logs as the next version, keeping what it held.
        local.add(io.BytesIO(b"more"), "more.bin")
        second = experiment.log_artifact(local)
    assert sorted(a.logical_path for a in second.assets) == ["more.bin", "r.bin", "w.bin"]
    assert (logged.version, second.version) == (Version("1.0.0"), Version("2.0.0"))
    # A version given must be above every one the artifact has.
    with Experiment() as experiment:
        third = Artifact(name, "model", version="2.1.0")
        third.add(io.BytesIO(b"third"), "w.bin")
        assert experiment.log_artifact(third).version == Version("2.1.0")
        lower = Artifact(name, "model", version="1.5.0")
        lower.add(io.BytesIO(b"lower"), "w.bin")
        with pytest.raises(Conflict):
            experiment.log_artifact(lower)


def _remote(tmp_path: Path) -> str:
    remote = tmp_path / "remote.bin"
    remote.write_bytes(b"remote")
    return remote.as_uri()


def test_remote_assets(
    url: str, tmp_path: Path, name: str, http_source: HttpSource, s3_source: S3Source
) -> None:
    """add_remote over a real HTTP server and an S3-compatible one: an s3:// prefix is one
    remote asset per object (sync_mode), downloaded with sync_mode=True, not with False."""
    (http_source.root / f"{name}.txt").write_text("over http")
    prefix = f"s3://{s3_source.bucket}/{name}/shards"
    s3_source.put(f"{name}/shards/0.bin", b"zero")
    s3_source.put(f"{name}/shards/1.bin", b"one")
    artifact = Artifact(name, "dataset")
    artifact.add(io.BytesIO(b"local"), "local.txt")
    artifact.add_remote(http_source.url(f"{name}.txt"), logical_path="page.txt", metadata={"k": 1})
    with pytest.raises(InvalidInput, match="max_objects"):
        artifact.add_remote(prefix, logical_path="shards", max_synced_objects=1)
    artifact.add_remote(prefix, logical_path="shards", max_synced_objects=2)
    with Experiment() as experiment:
        logged = experiment.log_artifact(artifact)
    assert sorted(a.logical_path for a in logged.remote_assets) == [
        "page.txt",
        "shards/0.bin",
        "shards/1.bin",
    ]
    assert logged.get_asset("page.txt").metadata == {"k": 1}
    assert logged.get_asset("shards/1.bin").link is not None

    local = logged.download(str(tmp_path / "synced"))
    assert Path(str(local.download_local_path), "shards", "0.bin").read_bytes() == b"zero"
    assert (tmp_path / "synced" / "page.txt").read_text() == "over http"
    logged.download(str(tmp_path / "unsynced"), sync_mode=False)
    assert sorted(p.name for p in (tmp_path / "unsynced").rglob("*")) == ["local.txt"]
