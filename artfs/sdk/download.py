"""Downloading a version's files into a directory, safely and only as far as needed.

The plan is made before any byte is written: every target path is validated
(no ``..``, no absolute paths, no way out through a symlink already in the
destination), and with ``FAIL`` a conflicting existing file stops the download
before it starts. Files already present with the right digest are not fetched.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from artfs import names
from artfs.cache.chunks import ChunkCache
from artfs.client.http import RegistryClient
from artfs.client.transfer import Progress, fetch_blob, hash_paths, parallel
from artfs.errors import Conflict, InvalidInput

__all__ = ["DownloadEntry", "OverwriteStrategy", "download_entries", "safe_target"]

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
                f"overwrite_strategy must be FAIL, PRESERVE or OVERWRITE, not {value!r}"
            ) from exc


@dataclass(frozen=True)
class DownloadEntry:
    path: str
    size: int
    digest: str


def safe_target(root: Path, logical_path: str) -> Path:
    """Where ``logical_path`` lands under ``root``, refusing any way out of ``root``."""
    names.check_logical_path(logical_path)
    real_root = root.resolve()
    target = real_root.joinpath(*logical_path.split("/"))
    # Walk down from the root: an existing component that is a symlink (or resolves
    # elsewhere) must not lead outside, and the file itself must not be a symlink.
    current = real_root
    for part in logical_path.split("/"):
        current = current / part
        if current.is_symlink():
            raise InvalidInput(f"{logical_path!r} would be written through the symlink {current}")
        if not current.exists():
            break
    if not target.parent.resolve().is_relative_to(real_root) and target.parent.exists():
        raise InvalidInput(f"{logical_path!r} would escape {root}")
    return target


def download_entries(
    client: RegistryClient,
    entries: Sequence[DownloadEntry],
    root: Path,
    strategy: OverwriteStrategy,
    progress_label: str,
    workers: int = 8,
    cache: ChunkCache | None = None,
) -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    targets = [safe_target(root, entry.path) for entry in entries]
    existing = [i for i, target in enumerate(targets) if target.exists()]
    for i in existing:
        if not targets[i].is_file():
            raise InvalidInput(f"{targets[i]} exists and is not a regular file")
    existing_digests = hash_paths([targets[i] for i in existing], workers)
    differing = {
        i
        for i, (digest, _size) in zip(existing, existing_digests, strict=True)
        if digest != entries[i].digest
    }
    if differing and strategy is OverwriteStrategy.FAIL:
        first = min(differing)
        raise Conflict(
            f"{targets[first]} exists with different content "
            f"({len(differing)} file(s) differ); choose PRESERVE or OVERWRITE"
        )
    if strategy is OverwriteStrategy.PRESERVE:
        for i in sorted(differing):
            log.warning("preserving %s, which differs from %s", targets[i], entries[i].path)
    skip = set(existing) - (differing if strategy is OverwriteStrategy.OVERWRITE else set())
    todo = [i for i in range(len(entries)) if i not in skip]
    with Progress(sum(entries[i].size for i in todo), progress_label) as progress:

        def one(i: int) -> None:
            entry, target = entries[i], targets[i]
            target.parent.mkdir(parents=True, exist_ok=True)
            # The directories now exist: check once more that none of them leads out.
            if not target.parent.resolve().is_relative_to(root.resolve()):
                raise InvalidInput(f"{entry.path!r} would escape {root}")
            fetch_blob(client, entry.digest, entry.size, target, progress, cache)

        parallel(one, todo, workers)
    return targets
