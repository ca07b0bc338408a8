"""Every query the registry runs to answer a request is served from an index.

A bad plan does not show in small tests: the blob-batch visibility check once
walked every file of the project, which cost nothing here and 34 ms per batch
next to a 100,000-file version. So this test records the statements of real
registry calls on a real SQLite database and asks SQLite for each one's plan.
Only garbage collection may scan a table.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, insert

from artfs.server.db.engine import create_registry_engine, migrate
from artfs.server.db.schema import blobs, held_blobs
from artfs.server.registry import FileEntry, Registry
from artfs.store.local import LocalBlobStore

FILES = 3000


def digest(i: int) -> str:
    return hashlib.sha256(b"blob %d" % i).hexdigest()


def entries(prefix: str, count: int) -> list[FileEntry]:
    return [
        FileEntry.parse({"path": f"{prefix}/f{i:06d}", "size": 1, "digest": digest(i)})
        for i in range(count)
    ]


UPLOAD: dict[str, Any] = {
    "type_": None,
    "description": "",
    "metadata": {},
    "semver": None,
    "source": {},
    "ttl_seconds": None,
}


def publish(registry: Registry, project: str, name: str, files: list[FileEntry]) -> None:
    started = registry.start_upload(project, name, entries=files, **UPLOAD)
    registry.commit_upload(
        project, started["upload_id"], aliases_=["prod"], tags=["t"], alias_expect={}, force=False
    )


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[tuple[Registry, Engine]]:
    engine = create_registry_engine(f"sqlite:///{tmp_path / 'registry.db'}")
    migrate(engine)
    with engine.begin() as conn:  # blob rows without bytes: only the metadata matters here
        now = datetime.now(UTC)
        conn.execute(
            insert(blobs),
            [
                {"digest": digest(i), "size": 1, "chunk_size": 1 << 20,
                 "chunk_digests": bytes(32), "created_at": now}
                for i in range(FILES)
            ],
        )  # fmt: skip
        conn.execute(  # and held by the two projects, as if they had sent the bytes
            insert(held_blobs),
            [{"project": project, "digest": digest(i)} for project in ("p", "other")
             for i in range(FILES)],
        )  # fmt: skip
    registry = Registry(engine, LocalBlobStore(tmp_path / "blobs"))
    publish(registry, "p", "big", entries("a", FILES))
    publish(registry, "other", "elsewhere", entries("b", 10))
    try:
        yield registry, engine
    finally:
        engine.dispose()


def request_paths(registry: Registry) -> None:
    """What clients make the registry do, next to a version of ``FILES`` files."""
    publish(registry, "p", "small", entries("c", 20))
    for ref in ("v1", "prod", "latest"):
        registry.get_version("p", "big", ref)
    registry.list_versions("p", "big", None, 50)
    registry.list_files("p", "big", "v1", None, 100, "a/f0001")
    registry.list_files("p", "big", "v1", "a/f000100", 100, None)
    registry.manifest("p", "big", "v1")
    registry.missing_blobs("p", [digest(i) for i in range(10)])
    registry.blob_visible("p", digest(5))
    registry.blob_visible("nobody", digest(6))
    registry.blobs_visible("p", [digest(i) for i in range(300)])
    registry.blob_uploadable("nobody", digest(7))
    registry.blobs_uploadable("p", [digest(i) for i in range(300)])
    registry.set_alias("p", "big", "stable", "v1", None, False)
    registry.add_tag("p", "big", "v1", "checked")
    collections = registry.collections
    collections.link("p", "reg/models", "big", "v1", ["production"])
    collections.link("p", "reg/models", "small", "v1", [])
    collections.list_collections("p", None, 10)
    collections.list_collections("p", "reg/a", 10)
    collections.get_collection("p", "reg/models")
    collections.list_members("p", "reg/models", None, 10)
    collections.get_member("p", "reg/models", "production")
    collections.set_alias("p", "reg/models", "production", "v2", "v1", True)
    collections.delete_alias("p", "reg/models", "production")
    collections.unlink("p", "reg/models", "v1")
    registry.delete_version("p", "small", "v1", True)


def plans(engine: Engine, run: Any) -> dict[str, list[str]]:
    """Each distinct read, update or delete statement ``run`` executes, with SQLite's plan."""
    seen: dict[str, Any] = {}

    def record(_conn: Any, _cursor: Any, statement: str, params: Any, *_rest: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE")):
            seen.setdefault(statement, params)

    event.listen(engine, "before_cursor_execute", record)
    try:
        run()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    with engine.connect() as conn:
        sqlite = conn.connection.driver_connection
        assert sqlite is not None
        return {
            " ".join(statement.split()): [
                row[3] for row in sqlite.execute(f"EXPLAIN QUERY PLAN {statement}", params)
            ]
            for statement, params in seen.items()
        }


def test_request_paths_never_scan_a_table(registry: tuple[Registry, Engine]) -> None:
    reg, engine = registry
    reg._visible = type(reg._visible)()  # ask the database, not the memory of earlier answers
    reg._uploadable = type(reg._uploadable)()
    found = plans(engine, lambda: request_paths(reg))
    assert len(found) >= 15, "the calls above stopped reaching the database"
    scans = {sql: plan for sql, plan in found.items() if any(s.startswith("SCAN") for s in plan)}
    assert scans == {}


def test_lookups_by_digest_start_from_the_digest_index(registry: tuple[Registry, Engine]) -> None:
    reg, engine = registry
    reg._visible = type(reg._visible)()
    reg._uploadable = type(reg._uploadable)()
    found = plans(engine, lambda: request_paths(reg))
    by_digest = {
        sql: plan
        for sql, plan in found.items()
        if "files.digest =" in sql or "files.digest IN" in sql
    }
    assert len(by_digest) >= 2  # blob_uploadable and blobs_uploadable
    for sql, plan in by_digest.items():
        # Driven from the project instead, the query walks every file of every
        # version of the project: a SEARCH too, so the index is named.
        assert "ix_files_digest" in plan[0], (sql, plan)


def test_only_garbage_collection_scans(registry: tuple[Registry, Engine]) -> None:
    reg, engine = registry
    found = plans(engine, lambda: reg.gc(dry_run=True))
    assert found, "gc ran no query"
    for plan in found.values():
        for step in plan:
            if step.startswith("SCAN"):
                # Finding garbage and expired versions means looking at all of them;
                # each candidate is then checked through an index.
                assert step.split()[1] in {"blobs", "versions"}, plan
