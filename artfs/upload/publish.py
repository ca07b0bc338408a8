"""``publish``: the one way local files become a committed version.

Used by ``Client.log_artifact`` and by the mount's commit of ``.staging``:
hash what has no digest yet (in parallel; a file whose digest the mount
recorded as it was written is not read, see ``records``), create a PENDING
version with the
whole manifest (in batches), upload only the blobs the registry lacks (in
parallel, streamed, verified by the server), commit. If anything fails after
the PENDING version exists, it is aborted (best effort), so nothing half-made
is left; publishing again uploads only what is still missing. If the
registry finds an upload that does not match a recorded digest, the records
are dropped and the files hashed, once, before giving up.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from artfs.client.models import FileRecord, NewVersion, VersionRecord
from artfs.client.protocol import RegistryAPI
from artfs.digests import hash_file
from artfs.errors import ArtfsError, Conflict, DigestMismatch
from artfs.transfer.parallel import parallel
from artfs.transfer.progress import Progress
from artfs.transfer.uploads import UploadBlob, upload_blobs
from artfs.upload.records import drop_record, read_record

__all__ = ["LocalEntry", "Published", "VersionRequest", "publish"]

log = logging.getLogger("artfs.publish")


@dataclass
class LocalEntry:
    path: str
    size: int
    #: Bytes to upload if the registry lacks them; None for references and placeholders.
    local: Path | None
    digest: str | None = None
    uri: str | None = None
    metadata: dict[str, Any] | None = None

    def manifest(self) -> FileRecord:
        return FileRecord(self.path, self.size, self.digest, self.uri, self.metadata)


@dataclass
class VersionRequest:
    type: str | None = None
    description: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    semver: str | None = None
    source: dict[str, Any] = field(default_factory=dict)
    ttl_seconds: int | None = None
    aliases: Sequence[str] = ()
    tags: Sequence[str] = ()
    alias_expect: dict[str, str | None] = field(default_factory=dict)
    force: bool = False
    #: Told ``(bytes uploaded, bytes to upload)`` as blobs go up, from upload threads:
    #: how a mount's commit shows the CLI that asked for it a progress bar.
    progress: Callable[[int, int], None] | None = None


@dataclass(frozen=True)
class Published:
    record: VersionRecord
    noop: bool
    uploaded_bytes: int
    uploaded_blobs: int

    @property
    def version(self) -> dict[str, Any]:
        """The version in the registry's JSON form, for callers that read it by key."""
        return self.record.to_json()


def publish(
    registry: RegistryAPI,
    name: str,
    entries: Sequence[LocalEntry],
    request: VersionRequest,
    *,
    workers: int = 8,
    show_progress: bool | None = None,
) -> Published:
    recorded = _fill_digests(entries, workers)
    try:
        return _publish_once(registry, name, entries, request, workers, show_progress)
    except DigestMismatch:
        if not recorded:
            raise
        # A record was wrong (its file changed behind the mount's back): trust none.
        log.warning("an upload did not match a recorded digest; hashing the files instead")
        for entry in recorded:
            if entry.local is not None:
                drop_record(entry.local)
            entry.digest = None
        _fill_digests(entries, workers, use_records=False)
        return _publish_once(registry, name, entries, request, workers, show_progress)


def _fill_digests(
    entries: Sequence[LocalEntry], workers: int, *, use_records: bool = True
) -> list[LocalEntry]:
    """Give every local entry its digest and size; returns those taken from records."""
    unhashed = [
        (entry, entry.local)
        for entry in entries
        if entry.digest is None and entry.uri is None and entry.local is not None
    ]

    def one(item: tuple[LocalEntry, Path]) -> bool:
        entry, local = item
        found = read_record(local) if use_records else None
        recorded = found is not None
        if found is None:
            with open(local, "rb") as stream:
                found = hash_file(stream)
        entry.digest, entry.size = found
        return recorded

    from_records = parallel(one, unhashed, workers)
    return [entry for (entry, _), recorded in zip(unhashed, from_records, strict=True) if recorded]


def _publish_once(
    registry: RegistryAPI,
    name: str,
    entries: Sequence[LocalEntry],
    request: VersionRequest,
    workers: int,
    show_progress: bool | None,
) -> Published:
    version = NewVersion(
        type=request.type,
        description=request.description,
        metadata=request.metadata,
        semver=request.semver,
        source=request.source,
        ttl_seconds=request.ttl_seconds,
    )
    started = registry.start_upload(name, version, [entry.manifest() for entry in entries])
    upload_id, missing = started.upload_id, started.missing
    try:
        sources: dict[str, UploadBlob] = {}
        for entry in entries:
            if entry.digest not in missing or entry.uri is not None:
                continue
            if entry.local is None:
                raise Conflict(
                    f"{entry.path}: its bytes ({entry.digest}) are no longer in the registry "
                    "and there is no local copy to upload"
                )
            sources.setdefault(entry.digest, UploadBlob(entry.digest, entry.size, entry.local))
        total = sum(source.size for source in sources.values())
        with _ReportingProgress(total, f"push {name}", show_progress, request.progress) as progress:
            sent = upload_blobs(registry, list(sources.values()), progress, workers)
        committed = registry.commit_upload(
            upload_id,
            list(request.aliases),
            list(request.tags),
            alias_expect=request.alias_expect,
            force=request.force,
        )
    except (ArtfsError, OSError, KeyboardInterrupt):
        # If the server is gone, its gc drops the abandoned upload later.
        with contextlib.suppress(ArtfsError):
            registry.abort_upload(upload_id)
        raise
    return Published(committed.version, committed.noop, sent, len(sources))


class _ReportingProgress(Progress):
    """The push's own bar, and the same byte counts handed to a listener if there is one."""

    def __init__(
        self,
        total: int,
        description: str,
        enabled: bool | None,
        listener: Callable[[int, int], None] | None,
    ) -> None:
        super().__init__(total, description, enabled)
        self._total = total
        self._sent = 0
        self._lock = threading.Lock()
        self._listener = listener
        if listener is not None:
            listener(0, total)

    def update(self, count: int) -> None:
        super().update(count)
        if self._listener is not None:
            with self._lock:  # upload threads report at once
                self._sent += count
                self._listener(self._sent, self._total)
