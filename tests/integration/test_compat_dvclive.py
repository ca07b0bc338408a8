"""``artfs.compat.dvclive`` and ``artfs log``: DVCLive's ``log_artifact(path, …)`` one-liner,
through the SDK and the command line, against a real registry."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import artfs
from artfs.compat import wandb
from artfs.compat.dvclive import InvalidDataTypeError, Live
from artfs.errors import InvalidInput
from artfs.sdk.paths import path_artifact
from tests.support.http_source import HttpSource
from tests.support.mount import mounted
from tests.support.registry import RegistryProcess


@pytest.fixture
def url(shared_registry: RegistryProcess, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    monkeypatch.setenv("ARTFS_URL", shared_registry.url)
    monkeypatch.chdir(tmp_path)
    return shared_registry.url


def test_the_documented_usage(
    registry: RegistryProcess, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """DVCLive's own example, as written, with only the import changed (a registry of its
    own, since the example's name is fixed)."""
    monkeypatch.setenv("ARTFS_URL", registry.url)
    monkeypatch.chdir(tmp_path)

    # Create example file
    Path("model.pt").write_text("weights")

    with Live() as live:
        live.log_artifact(
            "model.pt",
            type="model",
            name="mymodel",
            desc="Fine-tuned Resnet50",
            labels=["resnet", "imagenet"],
        )

    logged = artfs.get_artifact("mymodel:latest")
    assert (logged.type, logged.description) == ("model", "Fine-tuned Resnet50")
    assert sorted(logged.version_tags) == ["imagenet", "resnet"]
    assert [asset.logical_path for asset in logged.assets] == ["model.pt"]
    assert logged.get_asset("model.pt").uri is None  # cache=True: the bytes are stored
    logged.download(tmp_path / "out")
    assert (tmp_path / "out" / "model.pt").read_text() == "weights"
    # The run Live is, recorded as the producer; type="model": in the model registry.
    producer = logged.logged_by()
    assert producer is not None
    assert producer.kind == "run"
    assert artfs.get_artifact("model-registry/mymodel:v1").digest == logged.digest


def test_name_from_the_stem_meta_copy_and_no_cache(url: str, tmp_path: Path, name: str) -> None:
    Path(f"{name}.pt").write_text("v1")
    Path("data").mkdir()
    Path("data/a.csv").write_text("a")
    with Live(dir="out", exp_name=f"{name}-exp") as live:
        live.log_artifact(f"{name}.pt", meta={"epochs": 3})
        # copy=True: logged from a copy in <dir>/artifacts, as DVCLive keeps one.
        live.log_artifact("data", name=f"{name}-data", copy=True)
        # cache=False: the annotation only; the file stays where it is, as a reference.
        live.log_artifact(f"{name}.pt", name=f"{name}-ref", cache=False)

    logged = artfs.get_artifact(f"{name}:latest")
    assert (logged.metadata, logged.type) == ({"epochs": 3}, "dataset")
    producer = logged.logged_by()
    assert producer is not None
    assert producer.id == f"{name}-exp"
    assert Path("out/artifacts/data/a.csv").read_text() == "a"
    assert [a.logical_path for a in artfs.get_artifact(f"{name}-data").assets] == ["a.csv"]
    [ref] = artfs.get_artifact(f"{name}-ref").assets
    assert ref.uri == (tmp_path / f"{name}.pt").as_uri()
    assert (ref.size, ref.logical_path) == (2, f"{name}.pt")


def test_bad_paths(url: str) -> None:
    with Live() as live:
        with pytest.raises(InvalidDataTypeError, match="not supported type"):
            live.log_artifact(42)  # type: ignore[arg-type]
        with pytest.raises(InvalidInput, match="neither a file nor a directory"):
            live.log_artifact("missing.pt")
        with pytest.raises(InvalidInput, match="neither a file nor a directory"):
            live.log_artifact("missing.pt", copy=True)
        Path("bad name.pt").write_text("x")
        with pytest.raises(InvalidInput, match="give a name"):
            live.log_artifact("bad name.pt")
    assert not Path("dvclive").exists()


def test_copy_snapshots_what_the_path_held(tmp_path: Path, url: str, name: str) -> None:
    source = tmp_path / "model.bin"
    source.write_bytes(b"before")
    artifact = path_artifact(source, name, copy=True)
    source.write_bytes(b"after!")
    with artfs.Client() as client:
        logged = client.log_artifact(artifact)
    logged.download(tmp_path / "out")
    assert (tmp_path / "out" / "model.bin").read_bytes() == b"before"


def artfs_cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "artfs", *args],
        env={**os.environ, "ARTFS_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_artfs_log(tmp_path: Path, url: str, name: str) -> None:
    Path("ckpt").mkdir()
    Path(f"ckpt/{name}.pt").write_text("weights")
    result = artfs_cli(
        url,
        "log",
        f"ckpt/{name}.pt",
        "--type",
        "model",
        "--desc",
        "resnet",
        "--label",
        "a",
        "--label",
        "b",
        "--meta",
        "epochs=3",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "v1"
    logged = artfs.get_artifact(f"{name}:v1")
    assert (logged.type, logged.description, logged.metadata) == ("model", "resnet", {"epochs": 3})
    assert sorted(logged.version_tags) == ["a", "b"]

    result = artfs_cli(url, "log", "ckpt", "--name", name, "--copy")
    assert result.stdout.splitlines()[-1] == "v1"  # the same content: the no-op
    assert "identical" in result.stderr

    result = artfs_cli(url, "log", "ckpt", "--name", f"{name}-refs", "--no-cache")
    assert result.returncode == 0, result.stderr
    [ref] = artfs.get_artifact(f"{name}-refs").assets
    assert ref.uri == (tmp_path / "ckpt" / f"{name}.pt").as_uri()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["log", "missing.pt"], "does not exist"),
        (["log", "x.pt", "--copy", "--no-cache"], "exclude each other"),
        (["log", "x.pt", "--meta", "novalue"], "KEY=VALUE"),
        (["log", "bad name.pt"], "give a name"),
    ],
)
def test_artfs_log_refuses(url: str, args: list[str], message: str) -> None:
    Path("x.pt").write_text("x")
    Path("bad name.pt").write_text("x")
    result = artfs_cli(url, *args)
    assert result.returncode != 0
    [line] = result.stderr.splitlines()
    assert line.startswith("artfs: error: ")
    assert message in line


def test_artfs_log_help() -> None:
    result = artfs_cli("http://127.0.0.1:1", "log", "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: artfs log [OPTIONS] PATH")
    for flag in ("--name", "--type", "--desc", "--label", "--meta", "--copy", "--no-cache"):
        assert flag in result.stdout


def test_what_the_one_liners_log_reads_through_the_mount(
    url: str, tmp_path: Path, name: str, http_source: HttpSource
) -> None:
    """DVCLive's log_artifact (a model, so in the model registry), artfs log --no-cache and a
    W&B reference over HTTP, each read back through a real mount."""
    Path(f"{name}.pt").write_bytes(b"weights" * 100)
    with Live() as live:
        live.log_artifact(f"{name}.pt", type="model")
    Path("labels.csv").write_text("id,label\n")
    result = artfs_cli(url, "log", "labels.csv", "--name", f"{name}-labels", "--no-cache")
    assert result.returncode == 0, result.stderr
    (http_source.root / f"{name}.json").write_text('{"a": 1}')
    remote = wandb.Artifact(f"{name}-remote", type="dataset")
    remote.add_reference(http_source.url(f"{name}.json"), name="page.json")
    remote.save()

    mountpoint = tmp_path / "mnt"
    with mounted(mountpoint, url, tmp_path / "cache"):
        assert (mountpoint / name / "latest" / f"{name}.pt").read_bytes() == b"weights" * 100
        linked = mountpoint / ".collections" / "model-registry" / name / "v1" / f"{name}.pt"
        assert linked.read_bytes() == b"weights" * 100
        labels = mountpoint / f"{name}-labels" / "v1" / "labels.csv"
        assert labels.read_text() == "id,label\n"
        uri = os.getxattr(labels, "user.artfs.uri").decode()
        assert uri.startswith((tmp_path / "labels.csv").as_uri())
        page = mountpoint / f"{name}-remote" / "latest" / "page.json"
        assert page.read_text() == '{"a": 1}'
