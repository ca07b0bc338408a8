"""``RegistryAPI``: everything the client side asks of the registry, as one typed protocol.

``RegistryClient`` implements it over HTTP; code above depends on the protocol
where it can, so an in-process stand-in can take the registry's place in a
test without ``artfs serve``. Every method blocks (the mount calls them from
worker threads) and raises the domain's errors (``artfs.errors``):
``Transient`` for what is worth a retry, the exception of the registry's error
code for the rest. The calls themselves are described in docs/design.md,
"The wire API".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, BinaryIO, Protocol

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

__all__ = ["BlobRange", "RegistryAPI"]


class BlobRange(Protocol):
    """An open byte range of a blob, read in order into the caller's buffers."""

    def read_into(self, view: memoryview) -> bool:
        """Fill ``view`` completely; ``False`` if the range ended first."""
        ...


class RegistryAPI(Protocol):
    @property
    def url(self) -> str:
        """Where the registry is, for messages."""
        ...

    @property
    def project(self) -> str: ...

    def close(self) -> None: ...

    def health(self) -> None:
        """Return if the registry answers; ``Transient`` if nobody does."""
        ...

    # -- artifacts ----------------------------------------------------------

    def list_artifacts(self) -> Iterator[ArtifactRecord]: ...

    def get_artifact(self, name: str) -> ArtifactRecord: ...

    def create_artifact(
        self,
        name: str,
        type_: str,
        description: str = "",
        metadata: dict[str, Any] | None = None,
    ) -> ArtifactRecord: ...

    def update_artifact(
        self, name: str, description: str | None = None, metadata: dict[str, Any] | None = None
    ) -> ArtifactRecord: ...

    # -- versions -------------------------------------------------------------

    def delete_artifact(self, name: str, force: bool = False) -> None:
        """Delete an artifact with all its versions (refused while linked, unless ``force``)."""
        ...

    def artifact_tags(self, name: str) -> list[str]:
        """The artifact's own tags, sorted."""
        ...

    def set_artifact_tags(self, name: str, tags: Sequence[str]) -> list[str]:
        """Replace the artifact's tags; returns them as stored (sorted, each once)."""
        ...

    def list_versions(self, name: str, include_deleted: bool = False) -> Iterator[VersionRecord]:
        """Committed versions (and deleted ones, if asked), oldest first."""
        ...

    def get_version(self, name: str, ref: str) -> VersionRecord:
        """The version ``ref`` names: ``vN``, a semver label or an alias."""
        ...

    def update_version(
        self,
        name: str,
        ref: str,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> VersionRecord: ...

    def set_ttl(self, name: str, ref: str, ttl_seconds: int | None) -> VersionRecord:
        """Expire a version ``ttl_seconds`` after its commit (None: keep it for good)."""
        ...

    def delete_version(self, name: str, ref: str, delete_aliases: bool = False) -> VersionRecord:
        """Tombstone a version; refused while it has aliases, unless ``delete_aliases``."""
        ...

    def list_files(self, name: str, ref: str, prefix: str | None = None) -> Iterator[FileRecord]:
        """Every file of a version (below ``prefix``, if given), in path order."""
        ...

    def manifest(self, name: str, ref: str) -> Manifest:
        """A version's whole file list in one answer, in columns."""
        ...

    # -- uploads --------------------------------------------------------------

    def start_upload(
        self, name: str, version: NewVersion, entries: Sequence[FileRecord]
    ) -> UploadStarted:
        """Create a PENDING version with its whole manifest."""
        ...

    def commit_upload(
        self,
        upload_id: str,
        aliases: list[str],
        tags: list[str],
        alias_expect: dict[str, str | None] | None = None,
        force: bool = False,
    ) -> UploadCommitted: ...

    def abort_upload(self, upload_id: str) -> None: ...

    def missing_blobs(self, digests: list[str]) -> set[str]:
        """Which of ``digests`` the registry lacks."""
        ...

    # -- aliases and tags -----------------------------------------------------

    def set_alias(
        self, name: str, alias: str, ref: str, expect: str | None = None, check_expect: bool = False
    ) -> VersionRecord:
        """Point ``alias`` at ``ref``; with ``check_expect``, only if it points at ``expect``
        now (``None``: only if it does not exist). Returns the version it points at."""
        ...

    def delete_alias(self, name: str, alias: str) -> None: ...

    def add_tag(self, name: str, ref: str, tag: str) -> VersionRecord: ...

    def remove_tag(self, name: str, ref: str, tag: str) -> VersionRecord: ...

    # -- collections: ``path`` is ``REGISTRY/COLLECTION`` ------------------------

    def list_collections(self) -> Iterator[CollectionRecord]: ...

    def get_collection(self, path: str) -> CollectionRecord: ...

    def list_members(self, path: str) -> Iterator[MemberRecord]:
        """A collection's members in link order."""
        ...

    def get_member(self, path: str, ref: str) -> MemberRecord:
        """The member ``ref`` names: its number (``v2``) or an alias of the collection."""
        ...

    def link(self, path: str, name: str, ref: str, aliases: Sequence[str] = ()) -> MemberRecord:
        """Link version ``name:ref`` into ``path`` (made on first use) and point ``aliases``
        of the collection at it; a version linked already keeps its member."""
        ...

    def unlink(self, path: str, ref: str) -> MemberRecord:
        """Remove a member and its aliases; answers what it was."""
        ...

    def set_collection_alias(
        self, path: str, alias: str, ref: str, expect: str | None = None, check_expect: bool = False
    ) -> MemberRecord:
        """``set_alias`` for a collection: ``ref`` and ``expect`` name members."""
        ...

    def delete_collection_alias(self, path: str, alias: str) -> None: ...

    def delete_collection(self, path: str) -> CollectionRecord:
        """Remove a collection with its links and aliases (no version); answers what it was."""
        ...

    def version_links(self, name: str, ref: str) -> list[MemberRecord]:
        """Every member of a collection that links version ``name:ref``."""
        ...

    # -- runs and lineage -----------------------------------------------------

    def start_run(self, run_id: str, run: RunStart) -> RunInfo:
        """The run ``run_id``, made from ``run`` if new (an existing one is kept as it is)."""
        ...

    def get_run(self, run_id: str) -> RunInfo: ...

    def finish_run(self, run_id: str) -> RunInfo: ...

    def record_use(self, run_id: str, run: RunStart, name: str, ref: str) -> bool:
        """``run_id`` read ``name:ref``; True if that is news to the registry."""
        ...

    def version_runs(self, name: str, ref: str) -> VersionRuns:
        """The run that produced ``name:ref`` and the runs that read it."""
        ...

    def lineage(self, name: str, ref: str, direction: str = "both", depth: int = 3) -> LineageGraph:
        """The graph around ``name:ref``: ``up`` to producers, ``down`` to consumers."""
        ...

    # -- blobs ----------------------------------------------------------------

    def upload_blob(self, digest: str, body: BinaryIO | bytes, size: int) -> None:
        """Store one blob; the registry checks its bytes against ``digest``."""
        ...

    def upload_blob_batch(self, blobs: Sequence[tuple[str, bytes]]) -> None:
        """Store many small blobs in one request; if one is bad, none is stored."""
        ...

    def open_blob(
        self, digest: str, start: int = 0, block_size: int = 1 << 20
    ) -> AbstractContextManager[Iterator[bytes]]:
        """A blob's bytes from ``start`` to its end, in blocks of about ``block_size``.

        Unverified: the caller hashes what arrives. An answer that breaks off
        while it is read raises ``BodyCutOff``.
        """
        ...

    def open_range(self, digest: str, start: int, end: int) -> AbstractContextManager[BlobRange]:
        """Bytes ``[start, end)`` of a blob, to be read straight into the caller's buffers."""
        ...

    def open_blob_batch(
        self, digests: Sequence[str], sizes: Sequence[int], timeout: float | None = None
    ) -> AbstractContextManager[Iterator[memoryview | None]]:
        """Several blobs in one request: each one's bytes in order (``sizes`` says how many),
        ``None`` (and no more) if the answer ends early. Unverified: the caller checks each."""
        ...

    def blob_chunks(self, digest: str) -> ChunkList:
        """The chunk digests the registry recorded for a blob."""
        ...

    # -- admin ----------------------------------------------------------------

    def gc(self, dry_run: bool = False) -> GcSummary:
        """Expire versions past their ttl, drop abandoned uploads, reclaim unreferenced blobs."""
        ...

    def verify(
        self,
        name: str | None,
        ref: str | None = None,
        *,
        dry_run: bool = False,
        on_progress: Callable[[VerifyProgress], None] | None = None,
    ) -> VerifyReport:
        """Re-hash the stored blobs of ``name:ref`` (every committed version of ``name``
        without ``ref``; of every project with ``name=None``) and quarantine bad ones,
        unless ``dry_run``. ``on_progress`` hears about once a second how far it got."""
        ...
