"""``artfs stage --from`` keeps everything of the version it starts from: references,
per-file metadata and the version's metadata, through a real mount and a real registry."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest

import artfs
from tests.integration.test_newcomer_mount import commit_cli
from tests.support.artifacts import draft_with_references
from tests.support.mount import artfs as run_artfs
from tests.support.mount import mounted
from tests.support.registry import RegistryProcess


def entries(logged: artfs.LoggedArtifact) -> dict[str, tuple[str | None, str | None, object]]:
    return {a.logical_path: (a.digest, a.uri, a.metadata) for a in logged.assets}


def stage(target: Path, source: str) -> str:
    result = run_artfs("stage", str(target), "--from", source)
    assert result.returncode == 0, result.stderr
    return result.stderr


def test_stage_from_keeps_references_and_metadata(
    shared_registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    with artfs.Client(url=shared_registry.url) as client:
        v1 = client.log_artifact(draft_with_references(tmp_path, name))
        with mounted(tmp_path / "mnt", shared_registry.url, tmp_path / "cache") as mount:
            target = mount.path / name
            staging = target / ".staging"
            assert "staged 5 files" in stage(target, "v1")
            assert (staging / "remote" / "extra.bin").stat().st_size == 300
            assert (staging / "data" / "a.txt").read_bytes() == b"alpha"
            remote = (tmp_path / "remote" / "labels.csv").as_uri().encode()
            assert os.getxattr(staging / "remote" / "labels.csv", "user.artfs.uri") == remote

            # Committed back unchanged: the same content, the no-op.
            assert commit_cli(target) == "v1"
            assert not any(staging.iterdir())
            latest = client.get_artifact(name)
            assert (latest.version, latest.digest) == ("v1", v1.digest)
            assert [v.version for v in client.list_versions(name)] == ["v1"]

            # Changed: what was not changed is kept, references and metadata included.
            stage(target, "latest")
            (staging / "d.txt").write_bytes(b"delta")
            os.rename(staging / "data" / "a.txt", staging / "data" / "a2.txt")
            assert commit_cli(target, "--meta", "rows=4") == "v2"
            v2 = client.get_artifact(name, "v2")
            got, before = entries(v2), entries(v1)
            assert got["remote/labels.csv"] == before["remote/labels.csv"]
            assert got["remote/extra.bin"] == before["remote/extra.bin"]
            assert got["remote/labels.csv"][1] == (tmp_path / "remote" / "labels.csv").as_uri()
            assert got["data/a2.txt"] == before["data/a.txt"]  # renamed: metadata kept
            assert sorted(got) == [
                "c.txt",
                "d.txt",
                "data/a2.txt",
                "data/b.txt",
                "remote/extra.bin",
                "remote/labels.csv",
            ]
            assert (v2.metadata, v2.description) == ({"rows": 4}, "three")

            # A reference is replaced whole, not edited in place.
            stage(target, "v2")
            with pytest.raises(OSError) as caught:
                open(staging / "remote" / "extra.bin", "r+b").close()
            assert caught.value.errno == errno.EPERM
            (staging / "remote" / "extra.bin").write_bytes(b"now local")
            assert commit_cli(target) == "v3"
            v3 = client.get_artifact(name, "v3")
            assert entries(v3)["remote/extra.bin"][1] is None
            assert v3.get_asset("remote/extra.bin").size == len(b"now local")
            assert v3.metadata == {"rows": 4}

            # Emptied, .staging forgets the version it came from.
            stage(target, "v3")
            for child in list(staging.iterdir()):
                shutil.rmtree(child) if child.is_dir() else child.unlink()
            (staging / "fresh.txt").write_bytes(b"fresh")
            assert commit_cli(target) == "v4"
            v4 = client.get_artifact(name, "v4")
            assert (v4.metadata, v4.description) == ({}, "")
            assert sorted(entries(v4)) == ["fresh.txt"]
