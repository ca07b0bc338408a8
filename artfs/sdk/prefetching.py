"""``LoggedArtifact.prefetch``: warm the machine's cache with a version, or part of it.

What to warm is chosen here (files and directories of the version, by logical
path); ``artfs.fetch.warming`` fetches and verifies it into the chunk cache
that every mount and pull on the machine reads. References are left out:
their bytes live at their own URIs, not in the registry.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from artfs.errors import InvalidInput
from artfs.transfer.progress import Progress

if TYPE_CHECKING:
    from artfs.fetch.warming import BlobToWarm
    from artfs.sdk.client import Client
    from artfs.sdk.logged import LoggedArtifact, LoggedAsset
    from artfs.vfs.trace import TracedRange

__all__ = ["prefetch", "replay", "select"]


def select(assets: Iterable[LoggedAsset], paths: Sequence[str] | None) -> list[LoggedAsset]:
    """The registry-held assets that are, or lie below, one of ``paths`` (all if ``None``).

    A path that names no file and no directory is ``InvalidInput``.
    """
    held = [asset for asset in assets if not asset.remote]
    if paths is None:
        return held
    chosen: dict[str, LoggedAsset] = {}
    for path in paths:
        prefix = path.strip("/")
        found = [
            a for a in held if a.logical_path == prefix or a.logical_path.startswith(prefix + "/")
        ]
        if not found:
            raise InvalidInput(f"no file or directory {path!r} in this version")
        chosen.update((a.logical_path, a) for a in found)
    return list(chosen.values())


def prefetch(
    logged: LoggedArtifact, paths: Sequence[str] | None, progress: bool | None = None
) -> int:
    """Warm the cache with ``paths`` of ``logged`` (all its files by default); the bytes warmed."""
    from artfs.fetch.warming import BlobToWarm  # trio only when warming

    chosen = select(logged.assets, paths)
    _note_listings(logged)
    blobs = [BlobToWarm(a.digest, a.size) for a in chosen if a.digest is not None]
    return _warm(logged.client, blobs, f"prefetch {logged.name}:{logged.version}", progress)


def replay(client: Client, ranges: Sequence[TracedRange], progress: bool | None = None) -> int:
    """Warm the cache with the ranges of a read trace (``artfs mount --trace``), in order."""
    from artfs.fetch.warming import BlobToWarm

    blobs = [BlobToWarm(r.digest, r.size, r.offset, r.offset + r.length) for r in ranges]
    return _warm(client, blobs, "prefetch trace", progress)


def _warm(client: Client, blobs: list[BlobToWarm], what: str, progress: bool | None) -> int:
    from artfs.fetch.warming import warm

    cache = client.cache
    if cache is None:
        raise InvalidInput("prefetch fills the machine's cache, and this client uses none")
    bar = Progress(sum(b.length for b in blobs), what, progress)
    try:
        return warm(client.registry, cache, blobs, bar.update)
    finally:
        bar.close()


def _note_listings(logged: LoggedArtifact) -> None:
    """Ask for the listings a mount walks to reach the version, so the client's answer
    book (kept beside the cache) has them: a mount with ``--offline`` then finds it too."""
    registry = logged.client.registry
    for _ in registry.list_artifacts():
        pass
    for _ in registry.list_versions(logged.name):
        pass
