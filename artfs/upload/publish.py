"""``publish``: the one way local files become a committed version.

Used by ``Client.log_artifact`` and by the mount's commit of ``.staging``:
hash what has no digest yet (in parallel), create a PENDING version with the
whole manifest (in batches), upload only the blobs the registry lacks (in
parallel, streamed, verified by the server), commit. If anything fails after
the PENDING version exists, it is aborted (best effort), so nothing half-made
is left; publishing again uploads only what is still missing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from artfs.client.http import RegistryClient
from artfs.client.transfer import BlobSource, Progress, hash_paths, upload_blobs
from artfs.errors import ArtfsError, Conflict

__all__ = ["LocalEntry", "Published", "VersionRequest", "publish"]


@dataclass
class LocalEntry:
    path: str
    size: int
    #: Bytes to upload if the registry lacks them; None for references and placeholders.
    local: Path | None
    digest: str | None = None
    uri: str | None = None
    metadata: dict[str, Any] | None = None

    def manifest(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"path": self.path, "size": self.size}
        if self.digest is not None:
            entry["digest"] = self.digest
        if self.uri is not None:
            entry["uri"] = self.uri
        if self.metadata:
            entry["metadata"] = self.metadata
        return entry


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


@dataclass(frozen=True)
class Published:
    version: dict[str, Any]
    noop: bool
    uploaded_bytes: int
    uploaded_blobs: int


def publish(
    client: RegistryClient,
    name: str,
    entries: Sequence[LocalEntry],
    request: VersionRequest,
    *,
    workers: int = 8,
    show_progress: bool | None = None,
) -> Published:
    unhashed = [entry for entry in entries if entry.digest is None and entry.uri is None]
    for entry, (digest, size) in zip(
        unhashed,
        hash_paths([entry.local for entry in unhashed if entry.local], workers),
        strict=True,
    ):
        entry.digest, entry.size = digest, size
    body = {
        "type": request.type,
        "description": request.description,
        "metadata": request.metadata,
        "semver": request.semver,
        "source": request.source,
        "ttl_seconds": request.ttl_seconds,
    }
    upload_id, missing = client.start_upload(name, body, [entry.manifest() for entry in entries])
    try:
        sources: dict[str, BlobSource] = {}
        for entry in entries:
            if entry.digest not in missing or entry.uri is not None:
                continue
            if entry.local is None:
                raise Conflict(
                    f"{entry.path}: its bytes ({entry.digest}) are no longer in the registry "
                    "and there is no local copy to upload"
                )
            sources.setdefault(entry.digest, BlobSource(entry.digest, entry.size, entry.local))
        total = sum(source.size for source in sources.values())
        with Progress(total, f"push {name}", show_progress) as progress:
            sent = upload_blobs(client, list(sources.values()), progress, workers)
        result = client.commit_upload(
            upload_id,
            list(request.aliases),
            list(request.tags),
            alias_expect=request.alias_expect,
            force=request.force,
        )
    except (ArtfsError, OSError, KeyboardInterrupt):
        # If the server is gone, its gc drops the abandoned upload later.
        with contextlib.suppress(ArtfsError):
            client.abort_upload(upload_id)
        raise
    return Published(result, bool(result.get("noop")), sent, len(sources))
