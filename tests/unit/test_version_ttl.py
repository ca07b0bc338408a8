"""Version ttls expire on the registry's clock: tested by moving the clock, not by waiting."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert

from artfs.errors import NotFound
from artfs.server.db.engine import create_registry_engine, migrate
from artfs.server.db.schema import blobs, held_blobs
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
    assert registry.gc(dry_run=True).versions_expired == ["data:v2"]
    assert (
        registry.get_version("p", "data", "latest")["version"] == "v2"
    )  # a dry run changes nothing

    assert registry.gc(dry_run=False).versions_expired == ["data:v2"]
    assert registry.get_version("p", "data", "latest")["version"] == "v1"
    with pytest.raises(NotFound):
        registry.get_version("p", "data", "v2")
