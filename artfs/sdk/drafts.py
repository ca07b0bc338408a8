"""Drafts that start from a committed version: ``new_draft`` and incremental logging.

Both keep everything of the version they start from that the caller does not
change: each entry (blobs by digest, so nothing is downloaded or uploaded
again; references by their URI and recorded checksum), each entry's metadata,
and the version's metadata and description. ``LoggedArtifact.new_draft`` copies
the version into a local ``Artifact`` at once (W&B); ``Artifact(...,
incremental=True)`` is laid over the artifact's ``latest`` when it is logged,
under a compare-and-swap on ``latest``, so a version committed in between is
never silently left out (docs/design.md, "Drafts").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from artfs.client.models import FileRecord, VersionRecord
from artfs.client.protocol import RegistryAPI
from artfs.errors import InvalidInput, NotFound
from artfs.sdk.artifact import Artifact, PendingAsset

if TYPE_CHECKING:
    from artfs.sdk.logged import LoggedArtifact

__all__ = ["Merged", "merge_incremental", "new_draft"]

LATEST = "latest"


def new_draft(logged: LoggedArtifact) -> Artifact:
    """A draft holding everything ``logged`` holds, ready to change and log as a new version."""
    draft = Artifact(
        logged.name,
        type=logged.type,
        metadata=logged.metadata,
        description=logged.description,
    )
    for asset in logged.assets:
        entry = _pending(asset.logical_path, asset.size, asset.digest, asset.uri, asset.metadata)
        draft._put(entry, overwrite=False)
    return draft


def _pending(
    path: str, size: int, digest: str | None, uri: str | None, metadata: dict[str, Any] | None
) -> PendingAsset:
    return PendingAsset(path, None, size=size, digest=digest, uri=uri, metadata=metadata or None)


@dataclass
class Merged:
    """An incremental draft laid over its base: what to log, and the base it expects."""

    assets: list[PendingAsset]
    metadata: dict[str, Any]
    description: str
    #: The version ``latest`` must still point at when the merge commits (None: no version).
    base: str | None

    @property
    def alias_expect(self) -> dict[str, str | None]:
        return {LATEST: self.base}


def merge_incremental(registry: RegistryAPI, artifact: Artifact) -> Merged:
    """The entries of ``latest``, less what the draft removes, with what it adds on top.

    A removed path that is neither in the base nor added is refused, before
    anything is sent: the draft names something that is not there.
    """
    base: VersionRecord | None
    try:
        base = registry.get_version(artifact.name, LATEST)
    except NotFound:
        base = None
    files: list[FileRecord] = (
        [] if base is None else list(registry.list_files(artifact.name, base.version))
    )
    removed = set(artifact.removed)
    matched = {prefix for f in files for prefix in _self_and_parents(f.path)} & removed
    unmatched = sorted(removed - matched)
    if unmatched:
        where = f"{artifact.name}:{base.version}" if base is not None else "a first version"
        raise InvalidInput(
            f"incremental draft of {artifact.name} removes {', '.join(unmatched)}, "
            f"which {where} does not have; nothing was logged"
        )
    added = {asset.logical_path: asset for asset in artifact.assets}
    # A base entry goes if it, or a directory above it, is removed or added over
    # (a file added where the base has a directory), or if an added file lies below it.
    replaced = removed | set(added)
    added_dirs = {parent for path in added for parent in _self_and_parents(path)[1:]}
    kept = [
        _pending(f.path, f.size, f.digest, f.uri, f.metadata)
        for f in files
        if f.path not in added_dirs and replaced.isdisjoint(_self_and_parents(f.path))
    ]
    return Merged(
        assets=sorted([*kept, *added.values()], key=lambda asset: asset.logical_path),
        metadata=dict(artifact.metadata or {}) or (dict(base.metadata) if base else {}),
        description=artifact.description or (base.description if base else ""),
        base=None if base is None else base.version,
    )


def _self_and_parents(path: str) -> list[str]:
    """``a/b/c`` → ``[a/b/c, a/b, a]``."""
    parts = path.split("/")
    return ["/".join(parts[:depth]) for depth in range(len(parts), 0, -1)]
