"""``RecordingClient``: the HTTP client that also keeps the answers an offline run needs.

Every listing, version record, file list and manifest it receives is written
to the machine's ``AnswerBook`` as it passes, so the next run with
``ARTFS_OFFLINE=1`` (``OfflineRegistry``) knows what this one saw. Only whole
answers are kept: a file list asked with a prefix, or a listing the caller
stopped reading half-way, is not.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from artfs import names
from artfs.client.answers import AnswerBook
from artfs.client.http import RegistryClient
from artfs.client.models import (
    ArtifactRecord,
    CollectionRecord,
    FileRecord,
    Manifest,
    MemberRecord,
    VersionRecord,
)
from artfs.config import ClientConfig

__all__ = ["RecordingClient"]


class RecordingClient(RegistryClient):
    def __init__(self, config: ClientConfig, book: AnswerBook, **options: Any) -> None:
        super().__init__(config, **options)
        self.book = book

    def list_artifacts(self) -> Iterator[ArtifactRecord]:
        seen: list[ArtifactRecord] = []
        for record in super().list_artifacts():
            seen.append(record)
            yield record
        self.book.record_artifacts(seen)

    def get_artifact(self, name: str) -> ArtifactRecord:
        record = super().get_artifact(name)
        self.book.record_artifact(record)
        return record

    def list_versions(self, name: str, include_deleted: bool = False) -> Iterator[VersionRecord]:
        seen: list[VersionRecord] = []
        for record in super().list_versions(name, include_deleted):
            seen.append(record)
            yield record
        self.book.record_versions(name, (r for r in seen if r.state == "COMMITTED"))

    def get_version(self, name: str, ref: str) -> VersionRecord:
        record = super().get_version(name, ref)
        if record.state == "COMMITTED":
            self.book.record_version(record)
        return record

    def list_files(self, name: str, ref: str, prefix: str | None = None) -> Iterator[FileRecord]:
        seen: list[FileRecord] = []
        for record in super().list_files(name, ref, prefix):
            seen.append(record)
            yield record
        # Only under its id: an alias's files change when the alias moves.
        if prefix is None and names.parse_version_ref(ref).kind == "number":
            self.book.record_files(name, ref, seen)

    def manifest(self, name: str, ref: str) -> Manifest:
        manifest = super().manifest(name, ref)
        self.book.record_manifest(name, manifest)
        return manifest

    def list_collections(self) -> Iterator[CollectionRecord]:
        seen: list[CollectionRecord] = []
        for record in super().list_collections():
            seen.append(record)
            yield record
        self.book.record_collections(seen)

    def get_collection(self, path: str) -> CollectionRecord:
        record = super().get_collection(path)
        self.book.record_collection(record)
        return record

    def list_members(self, path: str) -> Iterator[MemberRecord]:
        seen: list[MemberRecord] = []
        for record in super().list_members(path):
            seen.append(record)
            yield record
        self.book.record_members(path, seen)

    def get_member(self, path: str, ref: str) -> MemberRecord:
        record = super().get_member(path, ref)
        self.book.record_member(record)
        self.book.record_version(record.version)  # read offline by its own name too
        return record
