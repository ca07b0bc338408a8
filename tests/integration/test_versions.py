"""Semantic versions as Comet numbers them, and ttls set after logging, against a real
registry, through the SDK, the CLI and a real mount."""

from __future__ import annotations

import io
import os
from datetime import timedelta
from pathlib import Path

import pytest

import artfs
from artfs.errors import Conflict, InvalidInput, NotFound
from tests.support.mount import artfs as run_artfs
from tests.support.mount import mounted
from tests.support.polling import wait_until
from tests.support.registry import RegistryProcess


def log(client: artfs.Client, name: str, data: bytes, **options: object) -> artfs.LoggedArtifact:
    artifact = artfs.Artifact(name, type="dataset", **options)  # type: ignore[arg-type]
    artifact.add(io.BytesIO(data), "f.txt")
    return client.log_artifact(artifact)


def test_versions_are_numbered_and_only_increase(
    shared_registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    with artfs.Client(url=shared_registry.url) as client:
        assert log(client, name, b"1").semver == "1.0.0"
        assert log(client, name, b"1").noop  # the no-op takes no label
        assert log(client, name, b"2").semver == "2.0.0"
        with pytest.raises(Conflict, match=r"versions only increase, so 1\.5\.0 cannot follow"):
            log(client, name, b"3", version="1.5.0")
        assert log(client, name, b"3", version="2.1.0").semver == "2.1.0"
        assert log(client, name, b"4").semver == "3.0.0"
        assert [v.semver for v in client.list_versions(name)] == [
            "1.0.0", "2.0.0", "2.1.0", "3.0.0",
        ]  # fmt: skip
        (tmp_path / "g.txt").write_bytes(b"5")
        env = {"ARTFS_URL": shared_registry.url}
        refused = run_artfs("push", name, str(tmp_path / "g.txt"), "--version", "0.9.0", env=env)
        assert refused.returncode != 0
        assert refused.stderr.count("\n") == 1
        assert "versions only increase" in refused.stderr
        pushed = run_artfs("push", name, str(tmp_path / "g.txt"), env=env)
        assert pushed.stdout.strip().splitlines()[-1] == "v5"
        assert client.get_artifact(name, "4.0.0").version == "v5"


def test_a_ttl_set_after_logging_hides_the_version_at_once(
    shared_registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    with artfs.Client(url=shared_registry.url) as client:
        v1 = log(client, name, b"kept")
        v2 = log(client, name, b"short-lived", aliases=["prod"])
        for wrong in (0, True, timedelta(seconds=1.5), "1"):
            with pytest.raises(InvalidInput, match="ttl"):
                v2.ttl = wrong  # type: ignore[assignment]
        v1.ttl = timedelta(days=30)
        assert client.get_artifact(name, "v1").ttl == timedelta(days=30)
        v1.ttl = None
        assert client.get_artifact(name, "v1").ttl is None

        with mounted(tmp_path / "mnt", shared_registry.url, tmp_path / "cache") as mount:
            artifact = mount.path / name
            assert "v2" in os.listdir(artifact)
            v2.ttl = 1  # seconds after its commit: past within a second
            assert v2.ttl == timedelta(seconds=1)
            wait_until(lambda: client.get_artifact(name).version == "v1", "latest back on v1")
            # Every read, before any gc: get, aliases, listings, the mount.
            for ref in ("v2", "prod", "2.0.0"):
                with pytest.raises(NotFound):
                    client.get_artifact(name, ref)
            assert [v.version for v in client.list_versions(name)] == ["v1"]
            listed = run_artfs("ls", name, env={"ARTFS_URL": shared_registry.url})
            assert "v2" not in listed.stdout
            assert "prod" not in listed.stdout
            wait_until(lambda: "v2" not in os.listdir(artifact), "v2 gone from the mount")
            assert sorted(os.listdir(artifact)) == [".staging", "1.0.0", "latest", "v1"]
            assert (artifact / "latest" / "f.txt").read_bytes() == b"kept"
