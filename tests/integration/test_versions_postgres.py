"""Semantic versions, ttls, artifact tags and artifact deletion on a real PostgreSQL.

The same rules as tests/unit/test_version_ttl.py and test_artifact_level.py, on
a server of the module's own (the fixture of test_lineage_postgres), with the
registry's clock moved instead of waiting.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from artfs.errors import Conflict, NotFound
from artfs.server.registry import Registry
from artfs.store.local import LocalBlobStore
from tests.support.postgres import commit_reference_version, engine

__all__ = ["engine"]  # the fixture, used by name


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def _commit(registry: Registry, name: str, uri: str, semver: str | None = None) -> dict[str, str]:
    committed = commit_reference_version(registry, name, uri, semver=semver)
    return {"version": committed["version"], "semver": committed["semver"]}


def test_versions_ttls_tags_and_deletion_run_on_postgresql(engine: Engine, tmp_path: Path) -> None:
    clock = Clock()
    registry = Registry(engine, LocalBlobStore(tmp_path / "blobs"), clock=clock)
    assert _commit(registry, "bert", "https://example.invalid/1")["semver"] == "1.0.0"
    assert _commit(registry, "bert", "https://example.invalid/2")["semver"] == "2.0.0"
    with pytest.raises(Conflict, match="versions only increase"):
        _commit(registry, "bert", "https://example.invalid/3", "1.9.9")
    assert _commit(registry, "bert", "https://example.invalid/3", "2.0.1")["version"] == "v3"

    # A ttl set after the commit hides the version at once, latest included.
    registry.update_version("p", "bert", "v3", None, None, set_ttl=True, ttl_seconds=60)
    clock.now += timedelta(seconds=61)
    assert registry.get_version("p", "bert", "latest")["version"] == "v2"
    with pytest.raises(NotFound):
        registry.get_version("p", "bert", "2.0.1")
    assert registry.get_artifact("p", "bert")["version_count"] == 2
    assert registry.gc(dry_run=False).versions_expired == ["bert:v3"]
    assert _commit(registry, "bert", "https://example.invalid/4")["semver"] == "3.0.0"

    level = registry.artifact_level
    assert level.set_tags("p", "bert", ["nlp", "base", "nlp"]) == {"tags": ["base", "nlp"]}
    assert registry.get_artifact("p", "bert")["tags"] == ["base", "nlp"]
    registry.collections.link("p", "model-registry/bert", "bert", "v2", ["production"])
    with pytest.raises(Conflict, match="model-registry/bert:v1"):
        level.delete("p", "bert", force=False)
    assert level.delete("p", "bert", force=True)["versions_deleted"] == 3
    with pytest.raises(NotFound):
        registry.get_artifact("p", "bert")
    assert _commit(registry, "bert", "https://example.invalid/5") == {
        "version": "v1",
        "semver": "1.0.0",
    }
