"""What a new user hit through a real mount: expected aliases moving, references read."""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import artfs
from tests.support.mount import Mount, mounted
from tests.support.mount import artfs as run_artfs
from tests.support.registry import RegistryProcess


@pytest.fixture
def mount(shared_registry: RegistryProcess, tmp_path: Path) -> Iterator[Mount]:
    with mounted(tmp_path / "mnt", shared_registry.url, tmp_path / "cache") as m:
        yield m


def commit_cli(target: Path, *args: str) -> str:
    result = run_artfs("commit", str(target), *args)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_artfs_commit_checks_an_expected_alias_without_moving_it(
    mount: Mount, shared_registry: RegistryProcess, name: str
) -> None:
    artifact = mount.path / name
    artifact.mkdir()
    (artifact / ".staging" / "f").write_text("one")
    assert commit_cli(artifact, "--alias", "production") == "v1"
    (artifact / ".staging" / "f").write_text("two")
    version = commit_cli(artifact, "--alias", "candidate", "--expect-alias", "production=v1")
    assert version == "v2"
    with artfs.Client(url=shared_registry.url) as client:
        assert sorted(client.get_artifact(name, "v2").aliases) == ["candidate", "latest"]
        assert client.get_artifact(name, "production").version == "v1"
    # The mount shows the same: production still reads v1's bytes.
    assert (artifact / "production" / "f").read_text() == "one"
    assert (artifact / "candidate" / "f").read_text() == "two"
    assert os.getxattr(artifact / "production", "user.artfs.version") == b"v1"
    # `mv .staging production` still moves production (its alias is asked for).
    (artifact / ".staging" / "f").write_text("three")
    os.rename(artifact / ".staging", artifact / "production")
    assert (artifact / "production" / "f").read_text() == "three"
    assert (artifact / "candidate" / "f").read_text() == "two"


def test_a_reference_shows_its_uri_in_an_xattr_and_reads_like_a_file(
    mount: Mount, shared_registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    outside = tmp_path / "outside.parquet"
    outside.write_bytes(b"bytes that stay where they are")
    artifact = artfs.Artifact(name)
    artifact.add(tmp_path / "outside.parquet", logical_path="local.parquet")
    artifact.add_reference(outside.as_uri(), logical_path="data/big.parquet")
    with artfs.Client(url=shared_registry.url) as client:
        assert client.log_artifact(artifact).version == "v1"
    reference = mount.path / name / "v1" / "data" / "big.parquet"
    assert os.getxattr(reference, "user.artfs.uri") == outside.as_uri().encode()
    assert "user.artfs.uri" in os.listxattr(reference)
    assert os.getxattr(reference, "user.artfs.sha256") == (
        hashlib.sha256(outside.read_bytes()).hexdigest().encode()
    )
    # A file of the registry's own has no uri.
    local = mount.path / name / "v1" / "local.parquet"
    assert "user.artfs.uri" not in os.listxattr(local)
    with pytest.raises(OSError) as caught:
        os.getxattr(local, "user.artfs.uri")
    assert caught.value.errno == errno.ENODATA
    # Read from its own URI (tests/integration/test_references_mount.py: a changed source).
    assert reference.read_bytes() == outside.read_bytes()
