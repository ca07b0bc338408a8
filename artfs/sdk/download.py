"""Downloading a version's files into a directory, safely and only as far as needed.

The plan is made before any byte is written: every target path is validated
(no ``..``, no absolute paths, no way out through a symlink already in the
destination), and with ``FAIL`` a conflicting existing file stops the download
before it starts. Files already present with the right digest are not fetched.
"""

from __future__ import annotations

import logging
import stat
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from artfs import names
from artfs.cache.chunks import ChunkCache
from artfs.client.protocol import RegistryAPI
from artfs.errors import ArtfsError, Conflict, InvalidInput, Offline, SourceChanged
from artfs.references import ReferenceRead
from artfs.transfer.batches import small_batches
from artfs.transfer.cached import copy_from_cache, is_cached
from artfs.transfer.downloads import fetch_blob, fetch_small_blobs
from artfs.transfer.parallel import hash_paths
from artfs.transfer.progress import Progress
from artfs.transfer.references import fetch_reference

__all__ = ["DownloadEntry", "OverwriteStrategy", "Unfetched", "download_entries", "safe_target"]

log = logging.getLogger("artfs.download")


class OverwriteStrategy(StrEnum):
    FAIL = "FAIL"
    PRESERVE = "PRESERVE"
    OVERWRITE = "OVERWRITE"

    @classmethod
    def parse(cls, value: str | bool) -> OverwriteStrategy:
        # Comet accepts booleans too: False is FAIL, True is OVERWRITE.
        if value is False:
            return cls.FAIL
        if value is True:
            return cls.OVERWRITE
        try:
            return cls(str(value).upper())
        except ValueError as exc:
            raise InvalidInput(
                f"overwrite_strategy must be fail, preserve or overwrite, not {value!r}"
            ) from exc


@dataclass(frozen=True)
class DownloadEntry:
    path: str
    size: int
    #: None only for a reference logged without a checksum.
    digest: str | None
    #: Where a reference's bytes live (pinned); None for the registry's blobs.
    uri: str | None = None
    #: What messages call it, where that is not ``path`` (the artifact's logical path).
    shown: str | None = None


@dataclass(frozen=True)
class Unfetched:
    """A reference a download could not fetch, and why."""

    entry: DownloadEntry
    error: ArtfsError


def safe_target(root: Path, logical_path: str) -> Path:
    """Where ``logical_path`` lands under ``root``, refusing any way out of ``root``."""
    return _Targets(root).target(logical_path)[0]


class _Targets:
    """Target paths under one root, each directory on the way checked once.

    A pull of 10,000 files into a few directories then costs one ``lstat`` per
    file, not a walk and two ``realpath`` calls per file.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.real_root = root.resolve()
        #: Directories under the root known to exist and not to be symlinks.
        self._checked: set[Path] = {self.real_root}

    def target(self, logical_path: str) -> tuple[Path, bool]:
        """The path ``logical_path`` lands on, and whether a regular file is there already."""
        names.check_logical_path(logical_path)
        parts = logical_path.split("/")
        target = self.real_root.joinpath(*parts)
        # Walk down from the root: no existing component may be a symlink (which
        # could lead outside), and the file itself must not be one either.
        current = self.real_root
        for part in parts:
            current = current / part
            if current in self._checked:
                continue
            try:
                mode = current.lstat().st_mode
            except FileNotFoundError:
                return target, False  # the rest is still to be made
            if stat.S_ISLNK(mode):
                raise InvalidInput(
                    f"{logical_path!r} would be written through the symlink {current}"
                )
            if current == target:
                if not stat.S_ISREG(mode):
                    raise InvalidInput(f"{target} exists and is not a regular file")
                return target, True
            if not stat.S_ISDIR(mode):
                raise InvalidInput(f"{current} exists and is not a directory")
            self._checked.add(current)
        # With ".." refused and no symlink on the way, nothing can lead out.
        return target, False

    def make_parent(self, target: Path, logical_path: str) -> None:
        """Create ``target``'s directory; then check once more that none of it leads out."""
        parent = target.parent
        if parent in self._checked:
            return
        parent.mkdir(parents=True, exist_ok=True)
        if not parent.resolve().is_relative_to(self.real_root):
            raise InvalidInput(f"{logical_path!r} would escape {self.root}")
        self._checked.add(parent)


def _make_root(root: Path) -> None:
    """Create the directory a download writes into, or say in a sentence why it cannot be."""
    try:
        root.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        # Something that is not a directory stands at root or above it: name it.
        blocker = next(
            (path for path in (root, *root.parents) if path.is_symlink() or path.exists()), root
        )
        what = "is a file" if blocker.is_file() else "exists and is not a directory"
        if blocker == root:
            raise InvalidInput(
                f"{root} {what}; a download needs a directory to write into"
            ) from None
        raise InvalidInput(f"cannot make the directory {root}: {blocker} {what}") from None


#: Files an offline download that cannot be done names before it counts the rest.
SHOWN_MISSING = 5


def _refuse_uncached(
    entries: Sequence[DownloadEntry], todo: list[int], cache: ChunkCache | None
) -> None:
    """Offline, a download is all from the cache or not started: say which files are not."""
    missing = [
        entries[i].path
        for i in todo
        if cache is None
        or entries[i].digest is None
        or not is_cached(cache, entries[i].digest, entries[i].size)  # type: ignore[arg-type]
    ]
    if missing:
        more = f" and {len(missing) - SHOWN_MISSING} more" if len(missing) > SHOWN_MISSING else ""
        raise Offline(
            f"{len(missing)} file(s) are not in this machine's cache ("
            f"{', '.join(missing[:SHOWN_MISSING])}{more}), and artfs is offline "
            "(ARTFS_OFFLINE=1 or --offline); nothing was written"
        )


def download_entries(
    registry: RegistryAPI,
    entries: Sequence[DownloadEntry],
    root: Path,
    strategy: OverwriteStrategy,
    progress_label: str,
    workers: int = 8,
    cache: ChunkCache | None = None,
    offline: bool = False,
    unfetched: list[Unfetched] | None = None,
) -> list[Path]:
    """Write ``entries`` under ``root``; returns their targets.

    References are fetched from their URIs; one that cannot be (gone,
    unreachable) is added to ``unfetched`` if the caller passed a list, else
    its error is raised; one whose source changed is always an error
    (``SourceChanged``), raised once every other file is written.
    """
    _make_root(root)
    checker = _Targets(root)
    planned = [checker.target(entry.path) for entry in entries]
    targets = [target for target, _ in planned]
    existing = [i for i, (_, present) in enumerate(planned) if present]
    existing_digests = hash_paths([targets[i] for i in existing], workers)
    differing = {
        i
        for i, (digest, _size) in zip(existing, existing_digests, strict=True)
        # A reference without a checksum cannot be compared: it differs.
        if entries[i].digest is None or digest != entries[i].digest
    }
    if differing and strategy is OverwriteStrategy.FAIL:
        first = min(differing)
        raise Conflict(
            f"{targets[first]} exists with different content "
            f"({len(differing)} file(s) differ), so under overwrite strategy fail nothing "
            "was written; choose preserve (keep them) or overwrite (replace them)"
        )
    if strategy is OverwriteStrategy.PRESERVE:
        for i in sorted(differing):
            log.warning("preserving %s, which differs from %s", targets[i], entries[i].path)
    skip = set(existing) - (differing if strategy is OverwriteStrategy.OVERWRITE else set())
    todo = [i for i in range(len(entries)) if i not in skip]
    if offline:
        _refuse_uncached(entries, todo, cache)
    with (
        Progress(sum(entries[i].size for i in todo), progress_label) as progress,
        ThreadPoolExecutor(max_workers=workers) as pool,
    ):
        fetches = []
        references = []
        wanted: list[tuple[str, int, Path]] = []
        for i in todo:
            entry, target = entries[i], targets[i]
            checker.make_parent(target, entry.path)
            if entry.uri is not None:
                ref = ReferenceRead(entry.shown or entry.path, entry.uri, entry.size, entry.digest)
                references.append(
                    (entry, pool.submit(fetch_reference, ref, target, progress, cache))
                )
                continue
            assert entry.digest is not None
            # A copy from the machine cache is local work of a few system calls:
            # done here, one after the other, while the pool fetches the rest.
            # (Threads would only pass the GIL around for it.)
            if cache is not None and copy_from_cache(
                cache, entry.digest, entry.size, target, progress
            ):
                continue
            wanted.append((entry.digest, entry.size, target))
        batches, singles = small_batches(wanted)
        for batch in batches:
            fetches.append(pool.submit(fetch_small_blobs, registry, batch, progress, cache))
        for digest, size, target in singles:
            fetches.append(
                pool.submit(
                    fetch_blob, registry, digest, size, target, progress, cache, try_cache=False
                )
            )
        for fetch in fetches:
            fetch.result()
        changed: list[SourceChanged] = []
        for entry, future in sorted(references, key=lambda item: item[0].path):
            try:
                future.result()
            except SourceChanged as exc:
                changed.append(exc)
            except ArtfsError as exc:
                if unfetched is None:
                    raise
                unfetched.append(Unfetched(entry, exc))
    if changed:
        more = f" (and {len(changed) - 1} more changed)" if len(changed) > 1 else ""
        raise SourceChanged(changed[0].message + more)
    return targets
