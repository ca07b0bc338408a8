"""The recorded answers an offline run reads: ``AnswerBook``, ``OfflineRegistry`` and
how ``ARTFS_OFFLINE`` is read."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from artfs.client.answers import AnswerBook
from artfs.client.models import FileRecord, Manifest, VersionRecord
from artfs.client.offline import OfflineRegistry
from artfs.config import offline_setting, resolve_config
from artfs.errors import InvalidInput, NotFound, Offline

NOW = datetime(2026, 12, 5, tzinfo=UTC)


def version(number: int, *aliases: str, semver: str | None = None) -> VersionRecord:
    return VersionRecord(
        project="default",
        artifact="model",
        type="model",
        version=f"v{number}",
        number=number,
        semver=semver,
        state="COMMITTED",
        digest="d" * 64,
        size=10,
        file_count=1,
        metadata={},
        description="",
        source={},
        aliases=aliases,
        tags=(),
        created_at=NOW,
        committed_at=NOW,
        ttl_seconds=None,
    )


@pytest.fixture
def book(tmp_path: Path) -> AnswerBook:
    return AnswerBook(tmp_path, "http://127.0.0.1:8765", "default")


def test_an_alias_seen_on_a_newer_version_leaves_the_older_one(book: AnswerBook) -> None:
    book.record_versions("model", [version(1, "prod"), version(2, "latest")])
    book.record_version(version(2, "latest", "prod"))
    assert [v.aliases for v in book.versions("model")] == [(), ("latest", "prod")]
    registry = OfflineRegistry(book)
    assert registry.get_version("model", "prod").version == "v2"


def test_versions_are_found_by_id_semver_and_alias(book: AnswerBook) -> None:
    book.record_versions("model", [version(1, semver="1.0.0"), version(2, "latest")])
    registry = OfflineRegistry(book)
    assert registry.get_version("model", "v1").number == 1
    assert registry.get_version("model", "1.0.0").number == 1
    assert registry.get_version("model", "latest").number == 2
    with pytest.raises(NotFound, match="never seen on this machine"):
        registry.get_version("model", "v3")
    with pytest.raises(NotFound, match="never seen"):
        registry.get_artifact("model")


def test_a_file_list_comes_from_the_manifest_and_the_other_way_round(book: AnswerBook) -> None:
    book.record_versions("model", [version(1), version(2)])
    book.record_manifest(
        "model", Manifest("v1", ["a", "b/c"], [1, 2], ["a" * 64, None], {1: "s3://x/c"})
    )
    registry = OfflineRegistry(book)
    assert list(registry.list_files("model", "v1", prefix="b/")) == [
        FileRecord("b/c", 2, None, "s3://x/c")
    ]
    book.record_files("model", "v2", [FileRecord("z", 3, "b" * 64, metadata={"k": 1})])
    assert registry.manifest("model", "v2") == Manifest("v2", ["z"], [3], ["b" * 64], {})
    assert next(registry.list_files("model", "v2")).metadata == {"k": 1}


def test_damaged_or_unwritable_records_are_as_good_as_none(book: AnswerBook) -> None:
    book.record_versions("model", [version(1)])
    versions = book.root / "artifacts" / "model" / "versions.json"
    versions.write_bytes(b'[{"project": ')
    assert book.versions("model") == []
    # A book that cannot be written costs the answer, never the caller's call.
    blocked = AnswerBook(versions, "http://x", "p")  # its root lies under a file
    blocked.record_versions("model", [version(1)])
    assert blocked.versions("model") == []


def test_every_write_and_every_uncached_blob_is_refused(book: AnswerBook) -> None:
    registry = OfflineRegistry(book)
    registry.health()  # nothing to reach
    with pytest.raises(Offline, match="needs the registry"):
        registry.set_alias("model", "prod", "v1")
    with pytest.raises(Offline, match="not in this machine's cache"):
        registry.blob_chunks("a" * 64)
    with pytest.raises(Offline):
        registry.gc()


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("TRUE", True), ("yes", True), ("on", True), ("0", False), ("", False)],
)
def test_artfs_offline_reads_as_hf_hub_offline_does(
    value: str, expected: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARTFS_OFFLINE", value)
    assert resolve_config().offline is expected


def test_an_unclear_artfs_offline_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARTFS_OFFLINE", "maybe")
    with pytest.raises(InvalidInput, match="ARTFS_OFFLINE must be 1 or 0"):
        resolve_config()
    assert offline_setting(True, "x") is True
