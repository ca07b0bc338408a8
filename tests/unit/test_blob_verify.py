"""``artfs.server.integrity.verify`` on an in-process registry: paging, progress, quarantine.

The end-to-end behaviour (CLI, HTTP, reads, healing) is in
tests/integration/test_verify.py; this checks what a small registry cannot
show there: the walk over many pages of digests, and the progress steps.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from artfs.errors import Corrupt, NotFound
from artfs.server import integrity
from artfs.server.db.engine import create_registry_engine, migrate
from artfs.server.integrity import Progress, VerifyReport, VerifyScope, resolve_scope, verify
from artfs.server.registry import FileEntry, Registry
from artfs.store.local import LocalBlobStore


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    engine = create_registry_engine(f"sqlite:///{tmp_path / 'registry.db'}")
    migrate(engine)
    try:
        yield Registry(engine, LocalBlobStore(tmp_path / "blobs"))
    finally:
        engine.dispose()


def publish(registry: Registry, project: str, name: str, files: dict[str, bytes]) -> None:
    entries = [
        FileEntry(path, len(data), hashlib.sha256(data).hexdigest()) for path, data in files.items()
    ]
    started = registry.start_upload(
        project, name, entries=entries, type_=None, description="", metadata={}, semver=None,
        source={}, ttl_seconds=None,
    )  # fmt: skip
    for data in files.values():
        writer = registry.store.writer(hashlib.sha256(data).hexdigest())
        writer.write(data)
        registry.record_blob(writer.commit(), project)
    registry.commit_upload(
        project, started["upload_id"], aliases_=[], tags=[], alias_expect={}, force=False
    )


def run(registry: Registry, scope: VerifyScope, dry_run: bool = False) -> list[Any]:
    return list(verify(registry, scope, dry_run))


def test_every_digest_is_checked_once_across_pages(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(integrity, "PAGE", 2)
    monkeypatch.setattr(integrity, "PROGRESS_EVERY", 0.0)
    blobs = {f"f{i}": b"blob %d" % i for i in range(7)}
    publish(registry, "p", "a", blobs)
    publish(registry, "p", "b", {"same": b"blob 3", "new": b"blob 7"})
    publish(registry, "q", "c", {"elsewhere": b"blob 8"})
    bad = hashlib.sha256(b"blob 3").hexdigest()
    stored = registry.store.local_path(bad)
    assert stored is not None
    stored.write_bytes(b"blob X")

    steps = run(registry, VerifyScope(project="p"), dry_run=True)
    report = steps[-1]
    assert isinstance(report, VerifyReport)
    assert all(isinstance(step, Progress) for step in steps[:-1])
    assert len(steps) > 1
    assert report.blobs_checked == 8  # blobs 0-7, blob 3 once though two versions name it
    assert [(b.digest, b.problem, b.quarantined) for b in report.bad] == [(bad, "corrupt", False)]
    assert [(u.artifact, u.path) for u in report.bad[0].used_by] == [("a", "f3"), ("b", "same")]
    assert report.needs_reupload == ("p/a:v1", "p/b:v1")

    everything = run(registry, VerifyScope())[-1]
    assert everything.blobs_checked == 9
    assert everything.bad[0].quarantined
    with pytest.raises(Corrupt, match="quarantined"):
        registry.store.local_path(bad)
    assert registry.missing_blobs("p", [bad]) == [bad], "uploads must be told to send it again"


def test_a_scope_that_names_nothing_is_not_found(registry: Registry) -> None:
    publish(registry, "p", "a", {"f": b"x"})
    with pytest.raises(NotFound):
        resolve_scope(registry, "p", "nosuch", None)
    with pytest.raises(NotFound):
        resolve_scope(registry, "p", "a", "v2")
    assert resolve_scope(registry, "p", "a", "latest") == VerifyScope("p", "a", "latest", 1)


def test_a_blob_whose_versions_went_meanwhile_is_no_loss(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish(registry, "p", "a", {"f": b"x"})
    digest = hashlib.sha256(b"x").hexdigest()
    walk = integrity._digests

    def then_deleted(registry: Registry, scope: VerifyScope) -> Iterator[str]:
        for found in walk(registry, scope):
            registry.delete_version("p", "a", "v1", delete_aliases=True)
            registry.gc(dry_run=False)  # takes the file: nothing names it now
            yield found

    monkeypatch.setattr(integrity, "_digests", then_deleted)
    report = run(registry, VerifyScope())[-1]
    assert report.blobs_checked == 1
    assert report.bad == ()
    assert not registry.store.exists(digest)
