"""Retention: versions past their ttl become DELETED at gc, and their blobs go."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

import artfs
from tests.support.mount import artfs as run_artfs
from tests.support.polling import wait_until
from tests.support.registry import RegistryProcess


def expired_in(
    result: subprocess.CompletedProcess[str],
) -> subprocess.CompletedProcess[str] | None:
    """The gc answer once it expires something (before then, None)."""
    return result if "expired 0 versions" not in result.stdout else None


def test_expired_versions_are_deleted_by_gc_and_latest_moves_back(
    registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    kept, doomed = tmp_path / "kept.bin", tmp_path / "doomed.bin"
    kept.write_bytes(b"keep me")
    doomed.write_bytes(b"short-lived bytes")
    with artfs.Client(url=registry.url) as client:
        first = artfs.Artifact(name)
        first.add(kept)
        client.log_artifact(first)
        second = artfs.Artifact(name, ttl_seconds=1)
        second.add(doomed)
        assert client.log_artifact(second).ttl_seconds == 1
        assert client.get_artifact(name).version == "v2"
        # The server's own clock decides; tests/unit/test_version_ttl.py moves it instead.
        dry = wait_until(
            lambda: expired_in(run_artfs("gc", "--dry-run", env={"ARTFS_URL": registry.url})),
            "a ttl of 1 s expiring",
        )
        assert dry is not None
        assert dry.returncode == 0
        assert "expired 1 version;" in dry.stdout
        # Invisible at once, before gc marks it: latest is back on v1.
        assert client.get_artifact(name).version == "v1"
        with pytest.raises(artfs.NotFound):
            client.get_artifact(name, "v2")
        assert [v.version for v in client.list_versions(name)] == ["v1"]
        real = run_artfs("gc", env={"ARTFS_URL": registry.url})
        assert real.returncode == 0, real.stderr
        assert "expired 1 version;" in real.stdout
        assert client.get_artifact(name).version == "v1"
    # The same gc run reclaimed the expired version's blob; the kept one stays.
    stored = registry.stored_digests()
    assert hashlib.sha256(b"keep me").hexdigest() in stored
    assert hashlib.sha256(b"short-lived bytes").hexdigest() not in stored
