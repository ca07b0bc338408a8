"""Version ttls expire on the registry's clock: tested by moving the clock, not by waiting."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from artfs.errors import Conflict, NotFound
from artfs.server.db.engine import create_registry_engine, migrate
from artfs.server.db.schema import blobs, collection_aliases, collection_members, held_blobs
from artfs.server.registry import Registry
from artfs.store.local import LocalBlobStore
from tests.unit.test_query_plans import UPLOAD, digest, entries


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def registry(tmp_path: Path, clock: Clock) -> Iterator[Registry]:
    engine = create_registry_engine(f"sqlite:///{tmp_path / 'registry.db'}")
    migrate(engine)
    with engine.begin() as conn:  # blob rows without bytes: only the metadata matters here
        conn.execute(
            insert(blobs),
            [
                {"digest": digest(i), "size": 1, "chunk_size": 1 << 20,
                 "chunk_digests": bytes(32), "created_at": clock.now}
                for i in range(4)
            ],
        )  # fmt: skip
        conn.execute(insert(held_blobs), [{"project": "p", "digest": digest(i)} for i in range(4)])
    try:
        yield Registry(engine, LocalBlobStore(tmp_path / "blobs"), clock=clock)
    finally:
        engine.dispose()


def commit(registry: Registry, first: int, ttl_seconds: int | None) -> None:
    files = [entries("f", 4)[first]]
    started = registry.start_upload(
        "p", "data", entries=files, **{**UPLOAD, "ttl_seconds": ttl_seconds}
    )
    registry.commit_upload(
        "p", started["upload_id"], aliases_=[], tags=[], alias_expect={}, force=False
    )


def test_a_version_expires_once_the_clock_passes_its_ttl(registry: Registry, clock: Clock) -> None:
    commit(registry, 0, None)
    commit(registry, 1, 60)
    assert registry.get_version("p", "data", "latest")["version"] == "v2"

    clock.now += timedelta(seconds=59)
    assert registry.gc(dry_run=True).versions_expired == []

    clock.now += timedelta(seconds=2)
    # Invisible at once, before any gc: every read, latest included.
    assert registry.get_version("p", "data", "latest")["version"] == "v1"
    with pytest.raises(NotFound):
        registry.get_version("p", "data", "v2")
    with pytest.raises(NotFound):
        registry.get_version("p", "data", "2.0.0")
    listed = registry.list_versions("p", "data", None, 10)["versions"]
    assert [v["version"] for v in listed] == ["v1"]
    assert registry.get_artifact("p", "data")["aliases"] == {"latest": "v1"}
    assert registry.get_artifact("p", "data")["version_count"] == 1
    with pytest.raises(NotFound):
        registry.list_files("p", "data", "v2", None, 10, None)
    every = registry.list_versions("p", "data", None, 10, include_deleted=True)["versions"]
    assert [(v["version"], v["state"]) for v in every] == [("v1", "COMMITTED"), ("v2", "DELETED")]

    assert registry.gc(dry_run=True).versions_expired == ["data:v2"]
    assert registry.gc(dry_run=False).versions_expired == ["data:v2"]
    assert registry.get_version("p", "data", "latest")["version"] == "v1"
    assert registry.gc(dry_run=False).versions_expired == []


def test_a_ttl_set_after_the_commit(registry: Registry, clock: Clock) -> None:
    commit(registry, 0, None)
    commit(registry, 1, None)
    changed = registry.update_version("p", "data", "v2", None, None, set_ttl=True, ttl_seconds=30)
    assert changed["ttl_seconds"] == 30
    # None keeps it for good again; leaving it out changes nothing.
    registry.update_version("p", "data", "v2", None, None, set_ttl=True, ttl_seconds=None)
    registry.update_version("p", "data", "v2", "described", None)
    clock.now += timedelta(days=1)
    assert registry.get_version("p", "data", "v2")["ttl_seconds"] is None
    # A ttl already past hides the version now.
    registry.update_version("p", "data", "v2", None, None, set_ttl=True, ttl_seconds=60)
    assert registry.get_version("p", "data", "latest")["version"] == "v1"


def test_labels_are_given_and_only_increase(registry: Registry, clock: Clock) -> None:
    commit(registry, 0, None)
    commit(registry, 1, None)
    labels = [v["semver"] for v in registry.list_versions("p", "data", None, 10)["versions"]]
    assert labels == ["1.0.0", "2.0.0"]
    files = [entries("f", 4)[2]]
    for lower in ("1.5.0", "2.0.0-rc.1", "2.0.0+build.7"):
        with pytest.raises(Conflict, match="versions only increase"):
            registry.start_upload("p", "data", entries=files, **{**UPLOAD, "semver": lower})
    started = registry.start_upload(
        "p", "data", entries=files, **{**UPLOAD, "semver": "2.1.0-rc.1"}
    )
    # Checked again at commit, in its transaction: a higher label committed meanwhile wins.
    late = registry.start_upload(
        "p", "data", entries=[entries("f", 4)[3]], **{**UPLOAD, "semver": "3.0.0"}
    )
    registry.commit_upload(
        "p", late["upload_id"], aliases_=[], tags=[], alias_expect={}, force=False
    )
    with pytest.raises(Conflict, match="versions only increase"):
        registry.commit_upload(
            "p", started["upload_id"], aliases_=[], tags=[], alias_expect={}, force=False
        )
    # An expired version's label still counts: never reused, never undercut.
    registry.update_version("p", "data", "3.0.0", None, None, set_ttl=True, ttl_seconds=1)
    clock.now += timedelta(seconds=2)
    commit(registry, 0, None)
    assert registry.get_version("p", "data", "latest")["semver"] == "4.0.0"


def test_a_collection_hides_a_member_whose_version_expired_and_gc_unlinks_it(
    registry: Registry, clock: Clock
) -> None:
    commit(registry, 0, ttl_seconds=None)
    commit(registry, 1, ttl_seconds=60)
    collections = registry.collections
    collections.link("p", "reg/data", "data", "v1", ["production"])
    collections.link("p", "reg/data", "data", "v2", ["staging"])
    assert collections.get_member("p", "reg/data", "latest")["member"] == "v2"

    clock.now += timedelta(seconds=61)  # v2 expired: invisible at once, before any gc
    listed = collections.list_members("p", "reg/data", None, 10)["members"]
    assert [(m["member"], m["aliases"]) for m in listed] == [("v1", ["latest", "production"])]
    assert collections.get_member("p", "reg/data", "latest")["member"] == "v1"
    for ref in ("v2", "staging"):
        with pytest.raises(NotFound):
            collections.get_member("p", "reg/data", ref)
    record = collections.get_collection("p", "reg/data")
    assert (record["aliases"], record["member_count"]) == ({"latest": "v1", "production": "v1"}, 1)

    registry.gc(dry_run=False)  # and gc drops the link for good, with its alias
    with registry.engine.connect() as conn:
        assert conn.execute(select(collection_members.c.number)).scalars().all() == [1]
        assert sorted(conn.execute(select(collection_aliases.c.name)).scalars()) == [
            "latest",
            "production",
        ]
    collections.link("p", "reg/data", "data", "v1", [])
    with pytest.raises(Conflict, match="is linked as reg/data:v1"):
        registry.delete_version("p", "data", "v1", delete_aliases=False)
    assert collections.get_collection("p", "reg/data")["member_count"] == 1
