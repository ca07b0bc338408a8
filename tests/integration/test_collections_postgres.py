"""Collections on a real PostgreSQL: links, member numbers, alias compare-and-swap, refusals.

The registry's queries are SQLAlchemy Core so that they run on PostgreSQL too;
this runs the collection rules there, on a server of the module's own (the
fixture of test_lineage_postgres), migrated from nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from artfs.errors import Conflict, NotFound
from artfs.server.registry import Registry
from artfs.store.local import LocalBlobStore
from tests.support.postgres import commit_reference_version, engine

__all__ = ["engine"]  # the fixture, used by name


def _commit(registry: Registry, name: str, uri: str) -> str:
    return str(commit_reference_version(registry, name, uri)["version"])


def test_collections_run_on_postgresql(engine: Engine, tmp_path: Path) -> None:
    registry = Registry(engine, LocalBlobStore(tmp_path / "blobs"))
    collections = registry.collections
    assert _commit(registry, "resnet", "https://example.invalid/1") == "v1"
    assert _commit(registry, "resnet", "https://example.invalid/2") == "v2"

    first = collections.link("p", "model-registry/resnet", "resnet", "v1", ["production"])
    assert (first["member"], first["aliases"]) == ("v1", ["latest", "production"])
    second = collections.link("p", "model-registry/resnet", "resnet", "v2", [])
    assert second["member"] == "v2"
    again = collections.link("p", "model-registry/resnet", "resnet", "v1", ["staging"])
    assert again["member"] == "v1"
    listed = collections.list_members("p", "model-registry/resnet", None, 10)["members"]
    assert [(m["member"], m["version"]["version"]) for m in listed] == [("v1", "v1"), ("v2", "v2")]
    assert collections.list_collections("p", None, 10)["collections"][0]["aliases"] == {
        "latest": "v2",
        "production": "v1",
        "staging": "v1",
    }
    assert collections.list_collections("p", "model-registry/resnet", 10)["collections"] == []

    with pytest.raises(Conflict, match="points at v1, not v2"):
        collections.set_alias("p", "model-registry/resnet", "production", "v2", "v2", True)
    moved = collections.set_alias("p", "model-registry/resnet", "production", "v2", "v1", True)
    assert moved["aliases"] == ["latest", "production"]

    with pytest.raises(Conflict, match="is linked as model-registry/resnet:v2"):
        registry.delete_version("p", "resnet", "v2", delete_aliases=False)
    collections.unlink("p", "model-registry/resnet", "production")
    with pytest.raises(NotFound):
        collections.get_member("p", "model-registry/resnet", "production")
    assert collections.get_member("p", "model-registry/resnet", "latest")["member"] == "v1"
    relinked = collections.link("p", "model-registry/resnet", "resnet", "v2", [])
    assert relinked["member"] == "v3"  # numbers are never reused
