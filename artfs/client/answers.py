"""``AnswerBook``: the registry's last answers about one project, kept on this machine.

What a machine saw (artifact lists, version records with their aliases, file
lists and manifests of versions) is written next to the chunk cache, so that
with the network off limits (``ARTFS_OFFLINE=1``) a pull or a mount answers
from it, and the cached chunks supply the bytes. Version ids are immutable, so
a version's file list never goes out of date; lists of artifacts and versions,
and where aliases point, are the last ones seen (docs/design.md, "Outages and
offline mounts").

Recording is a convenience, never a reason to fail: a book that cannot be
written (full disk, no permission) loses the answer and logs it once at debug.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from artfs.client.models import (
    ArtifactRecord,
    CollectionRecord,
    FileRecord,
    Manifest,
    MemberRecord,
    VersionRecord,
)

__all__ = ["AnswerBook"]

log = logging.getLogger("artfs.client.answers")


class AnswerBook:
    """One registry and project's recorded answers, under ``cache_dir/answers``."""

    def __init__(self, cache_dir: Path, url: str, project: str) -> None:
        self.url = url
        self.project = project
        key = hashlib.sha256(f"{url}\0{project}".encode()).hexdigest()[:20]
        self.root = cache_dir / "answers" / key

    # -- writing ------------------------------------------------------------

    def record_artifacts(self, records: Iterable[ArtifactRecord]) -> None:
        self._write(self.root / "artifacts.json", [record.to_json() for record in records])

    def record_artifact(self, record: ArtifactRecord) -> None:
        known = {artifact.name: artifact for artifact in self.artifacts()}
        known[record.name] = record
        self.record_artifacts(sorted(known.values(), key=lambda artifact: artifact.name))

    def record_versions(self, name: str, records: Iterable[VersionRecord]) -> None:
        """A whole version list: it replaces what was known of the artifact's versions."""
        ordered = sorted(records, key=lambda record: record.number)
        self._write(self._artifact_dir(name) / "versions.json", [r.to_json() for r in ordered])

    def record_version(self, record: VersionRecord) -> None:
        """One version as last described: its aliases move to it from any other version."""
        moved = set(record.aliases)
        known = {
            other.number: _without_aliases(other, moved)
            for other in self.versions(record.artifact)
            if other.number != record.number
        }
        known[record.number] = record
        self.record_versions(record.artifact, known.values())

    def record_files(self, name: str, version: str, files: list[FileRecord]) -> None:
        self._write(
            self._artifact_dir(name) / "files" / f"{version}.json", [f.to_json() for f in files]
        )

    def record_manifest(self, name: str, manifest: Manifest) -> None:
        path = self._artifact_dir(name) / "manifests" / f"{manifest.version}.json"
        if not path.exists():  # a version's manifest never changes
            self._write(path, manifest.to_json())

    def record_collections(self, records: Iterable[CollectionRecord]) -> None:
        self._write(self.root / "collections.json", [record.to_json() for record in records])

    def record_collection(self, record: CollectionRecord) -> None:
        known = {collection.path: collection for collection in self.collections()}
        known[record.path] = record
        self.record_collections(sorted(known.values(), key=lambda collection: collection.path))

    def record_members(self, path: str, records: Iterable[MemberRecord]) -> None:
        """A collection's whole member list: it replaces what was known of it."""
        ordered = sorted(records, key=lambda record: record.number)
        self._write(self._collection_file(path), [record.to_json() for record in ordered])

    def record_member(self, record: MemberRecord) -> None:
        """One member as last described: its aliases move to it from any other member."""
        moved = set(record.aliases)
        known = {
            other.number: _without_aliases(other, moved)
            for other in self.members(record.collection)
            if other.number != record.number
        }
        known[record.number] = record
        self.record_members(record.collection, known.values())

    # -- reading ------------------------------------------------------------

    def artifacts(self) -> list[ArtifactRecord]:
        data = self._read(self.root / "artifacts.json")
        return [ArtifactRecord.from_json(item) for item in data or []]

    def versions(self, name: str) -> list[VersionRecord]:
        data = self._read(self._artifact_dir(name) / "versions.json")
        return [VersionRecord.from_json(item) for item in data or []]

    def files(self, name: str, version: str) -> list[FileRecord] | None:
        data = self._read(self._artifact_dir(name) / "files" / f"{version}.json")
        if data is None:
            return None
        return [FileRecord.from_json(item) for item in data]

    def manifest(self, name: str, version: str) -> Manifest | None:
        data = self._read(self._artifact_dir(name) / "manifests" / f"{version}.json")
        return None if data is None else Manifest.from_json(data)

    def collections(self) -> list[CollectionRecord]:
        data = self._read(self.root / "collections.json")
        return [CollectionRecord.from_json(item) for item in data or []]

    def members(self, path: str) -> list[MemberRecord]:
        data = self._read(self._collection_file(path))
        return [MemberRecord.from_json(item) for item in data or []]

    # -- files --------------------------------------------------------------

    def _artifact_dir(self, name: str) -> Path:
        # Quoted: a name from a registry's answer never steps out of its directory.
        return self.root / "artifacts" / quote(name, safe="")

    def _collection_file(self, path: str) -> Path:
        return self.root / "collections" / f"{quote(path, safe='')}.json"

    def _read(self, path: Path) -> Any:
        try:
            return json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            # A damaged record is as good as none: the registry's next answer replaces it.
            log.warning("ignoring the unreadable recorded answer %s: %s", path, exc)
            return None

    def _write(self, path: Path, data: Any) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(json.dumps(data, separators=(",", ":")).encode())
                os.replace(temporary, path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError as exc:
            log.debug("could not record %s: %s", path, exc)


#: A record whose aliases move between its kind: versions of an artifact, members of a
#: collection.
Aliased = TypeVar("Aliased", VersionRecord, MemberRecord)


def _without_aliases(record: Aliased, moved: set[str]) -> Aliased:
    if not moved.intersection(record.aliases):
        return record
    kept = tuple(alias for alias in record.aliases if alias not in moved)
    return dataclasses.replace(record, aliases=kept)
