"""``OfflineRegistry``: the registry as this machine last saw it, without a byte of network.

With ``ARTFS_OFFLINE=1`` (or ``--offline``) the SDK, the CLI and the mount use
this in place of the HTTP client: listings, version records, alias targets and
file lists come from the ``AnswerBook`` that earlier runs recorded, and blob
bytes only from the chunk cache, which the layers above consult first. Anything
else (bytes that are not cached, a version never seen, any write) is an
``Offline`` error that says so; nothing here opens a socket.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, BinaryIO, NoReturn

from artfs import names
from artfs.client.answers import AnswerBook
from artfs.client.models import (
    ArtifactRecord,
    ChunkList,
    CollectionRecord,
    FileRecord,
    GcSummary,
    LineageGraph,
    Manifest,
    MemberRecord,
    NewVersion,
    RunInfo,
    RunStart,
    UploadCommitted,
    UploadStarted,
    VerifyProgress,
    VerifyReport,
    VersionRecord,
    VersionRuns,
)
from artfs.client.protocol import BlobRange
from artfs.errors import NotFound, Offline

__all__ = ["OFFLINE_HINT", "OfflineRegistry"]

OFFLINE_HINT = "artfs is offline (ARTFS_OFFLINE=1 or --offline)"


def _refuse(what: str) -> NoReturn:
    raise Offline(f"{what} needs the registry, and {OFFLINE_HINT}")


class OfflineRegistry:
    """A read-only ``RegistryAPI`` over one project's ``AnswerBook``."""

    def __init__(self, book: AnswerBook) -> None:
        self.book = book

    @property
    def url(self) -> str:
        return self.book.url

    @property
    def project(self) -> str:
        return self.book.project

    def close(self) -> None:
        """Nothing to let go of."""

    def health(self) -> None:
        """Nothing to reach: an offline registry is always there."""

    # -- what was recorded ----------------------------------------------------

    def list_artifacts(self) -> Iterator[ArtifactRecord]:
        return iter(self.book.artifacts())

    def get_artifact(self, name: str) -> ArtifactRecord:
        for record in self.book.artifacts():
            if record.name == name:
                return record
        raise NotFound(f"artifact {name!r} was never seen on this machine, and {OFFLINE_HINT}")

    def list_versions(self, name: str, include_deleted: bool = False) -> Iterator[VersionRecord]:
        return iter(self.book.versions(name))

    def get_version(self, name: str, ref: str) -> VersionRecord:
        wanted = names.parse_version_ref(ref)
        versions = self.book.versions(name)
        for record in versions:
            if (
                (wanted.kind == "number" and record.version == ref)
                or (wanted.kind == "semver" and record.semver == ref)
                or (wanted.kind == "alias" and ref in record.aliases)
            ):
                return record
        raise NotFound(f"{name}:{ref} was never seen on this machine, and {OFFLINE_HINT}")

    def list_files(self, name: str, ref: str, prefix: str | None = None) -> Iterator[FileRecord]:
        version = self.get_version(name, ref).version
        files = self.book.files(name, version)
        if files is None:
            manifest = self.book.manifest(name, version)
            if manifest is None:
                raise NotFound(
                    f"the file list of {name}:{version} is not on this machine, and {OFFLINE_HINT}"
                )
            files = [
                FileRecord(path, size, digest, manifest.uris.get(position))
                for position, (path, size, digest) in enumerate(
                    zip(manifest.paths, manifest.sizes, manifest.digests, strict=True)
                )
            ]
        return iter([f for f in files if prefix is None or f.path.startswith(prefix)])

    def manifest(self, name: str, ref: str) -> Manifest:
        version = self.get_version(name, ref).version
        recorded = self.book.manifest(name, version)
        if recorded is not None:
            return recorded
        files = list(self.list_files(name, version))
        return Manifest(
            version=version,
            paths=[f.path for f in files],
            sizes=[f.size for f in files],
            digests=[f.digest for f in files],
            uris={position: f.uri for position, f in enumerate(files) if f.uri is not None},
        )

    def list_collections(self) -> Iterator[CollectionRecord]:
        return iter(self.book.collections())

    def get_collection(self, path: str) -> CollectionRecord:
        names.check_collection_path(path)
        for record in self.book.collections():
            if record.path == path:
                return record
        raise NotFound(f"collection {path!r} was never seen on this machine, and {OFFLINE_HINT}")

    def list_members(self, path: str) -> Iterator[MemberRecord]:
        names.check_collection_path(path)
        return iter(self.book.members(path))

    def get_member(self, path: str, ref: str) -> MemberRecord:
        names.check_collection_path(path)
        wanted = names.parse_version_ref(ref)
        for record in self.book.members(path):
            if (wanted.kind == "number" and record.member == ref) or (
                wanted.kind == "alias" and ref in record.aliases
            ):
                return record
        raise NotFound(f"{path}:{ref} was never seen on this machine, and {OFFLINE_HINT}")

    def version_links(self, name: str, ref: str) -> list[MemberRecord]:
        """The members seen linking ``name:ref``, in every collection this machine saw."""
        version = self.get_version(name, ref).version
        return [
            member
            for collection in self.book.collections()
            for member in self.book.members(collection.path)
            if (member.version.artifact, member.version.version) == (name, version)
        ]

    # -- what needs the registry ----------------------------------------------

    def create_artifact(
        self,
        name: str,
        type_: str,
        description: str = "",
        metadata: dict[str, Any] | None = None,
    ) -> ArtifactRecord:
        _refuse(f"creating artifact {name!r}")

    def update_artifact(
        self, name: str, description: str | None = None, metadata: dict[str, Any] | None = None
    ) -> ArtifactRecord:
        _refuse(f"changing artifact {name!r}")

    def delete_artifact(self, name: str, force: bool = False) -> None:
        _refuse(f"deleting artifact {name!r}")

    def artifact_tags(self, name: str) -> list[str]:
        return list(self.get_artifact(name).tags)

    def set_artifact_tags(self, name: str, tags: Sequence[str]) -> list[str]:
        _refuse(f"tagging artifact {name!r}")

    def update_version(
        self,
        name: str,
        ref: str,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> VersionRecord:
        _refuse(f"changing {name}:{ref}")

    def set_ttl(self, name: str, ref: str, ttl_seconds: int | None) -> VersionRecord:
        _refuse(f"changing the ttl of {name}:{ref}")

    def delete_version(self, name: str, ref: str, delete_aliases: bool = False) -> VersionRecord:
        _refuse(f"deleting {name}:{ref}")

    def start_upload(
        self, name: str, version: NewVersion, entries: Sequence[FileRecord]
    ) -> UploadStarted:
        _refuse(f"a new version of {name!r}")

    def commit_upload(
        self,
        upload_id: str,
        aliases: list[str],
        tags: list[str],
        alias_expect: dict[str, str | None] | None = None,
        force: bool = False,
    ) -> UploadCommitted:
        _refuse("committing a version")

    def abort_upload(self, upload_id: str) -> None:
        _refuse("aborting an upload")

    def missing_blobs(self, digests: list[str]) -> set[str]:
        _refuse("uploading")

    def set_alias(
        self, name: str, alias: str, ref: str, expect: str | None = None, check_expect: bool = False
    ) -> VersionRecord:
        _refuse(f"moving alias {alias!r} of {name!r}")

    def delete_alias(self, name: str, alias: str) -> None:
        _refuse(f"removing alias {alias!r} of {name!r}")

    def add_tag(self, name: str, ref: str, tag: str) -> VersionRecord:
        _refuse(f"tagging {name}:{ref}")

    def remove_tag(self, name: str, ref: str, tag: str) -> VersionRecord:
        _refuse(f"untagging {name}:{ref}")

    def link(self, path: str, name: str, ref: str, aliases: Sequence[str] = ()) -> MemberRecord:
        _refuse(f"linking {name}:{ref} into {path!r}")

    def unlink(self, path: str, ref: str) -> MemberRecord:
        _refuse(f"unlinking {path}:{ref}")

    def set_collection_alias(
        self, path: str, alias: str, ref: str, expect: str | None = None, check_expect: bool = False
    ) -> MemberRecord:
        _refuse(f"moving alias {alias!r} of {path!r}")

    def delete_collection_alias(self, path: str, alias: str) -> None:
        _refuse(f"removing alias {alias!r} of {path!r}")

    def delete_collection(self, path: str) -> CollectionRecord:
        _refuse(f"deleting collection {path!r}")

    def start_run(self, run_id: str, run: RunStart) -> RunInfo:
        _refuse(f"starting run {run_id!r}")

    def get_run(self, run_id: str) -> RunInfo:
        _refuse(f"reading run {run_id!r}")

    def finish_run(self, run_id: str) -> RunInfo:
        _refuse(f"finishing run {run_id!r}")

    def record_use(self, run_id: str, run: RunStart, name: str, ref: str) -> bool:
        _refuse(f"recording that run {run_id!r} used {name}:{ref}")

    def version_runs(self, name: str, ref: str) -> VersionRuns:
        # Lineage is not in the answer book: it changes with every reader, so an old
        # answer would say less than the truth.
        _refuse(f"the runs of {name}:{ref}")

    def lineage(self, name: str, ref: str, direction: str = "both", depth: int = 3) -> LineageGraph:
        _refuse(f"the lineage of {name}:{ref}")

    def upload_blob(self, digest: str, body: BinaryIO | bytes, size: int) -> None:
        _refuse("uploading")

    def upload_blob_batch(self, blobs: Sequence[tuple[str, bytes]]) -> None:
        _refuse("uploading")

    def open_blob(
        self, digest: str, start: int = 0, block_size: int = 1 << 20
    ) -> AbstractContextManager[Iterator[bytes]]:
        _refuse(f"reading blob {digest[:12]} (not in this machine's cache)")

    def open_range(self, digest: str, start: int, end: int) -> AbstractContextManager[BlobRange]:
        _refuse(f"reading blob {digest[:12]} (not in this machine's cache)")

    def open_blob_batch(
        self, digests: Sequence[str], sizes: Sequence[int], timeout: float | None = None
    ) -> AbstractContextManager[Iterator[memoryview | None]]:
        _refuse(f"reading {len(digests)} blob(s) not in this machine's cache")

    def blob_chunks(self, digest: str) -> ChunkList:
        _refuse(f"reading blob {digest[:12]} (not in this machine's cache)")

    def gc(self, dry_run: bool = False) -> GcSummary:
        _refuse("gc")

    def verify(
        self,
        name: str | None,
        ref: str | None = None,
        *,
        dry_run: bool = False,
        on_progress: Callable[[VerifyProgress], None] | None = None,
    ) -> VerifyReport:
        _refuse("verify")
