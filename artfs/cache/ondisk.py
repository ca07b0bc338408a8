"""The cache directory: what lies where and under which name, and reading it back.

Layout under the cache dir::

    chunks/<d[:2]>/<digest>.<index>      one chunk's bytes (the last one may be short)
    packs/<writer>-<n>.pack              chunks fetched together: the chunks of one ranged
                                         request, or small blobs (``artfs.cache.packs``)
    layouts/<d[:2]>/<digest>             the blob's size, chunk size, chunk digests and their hash
    external.log                         where verified whole copies lie outside the cache
                                         (``artfs.cache.externals``)
    tmp/                                 layout files being written

Chunks lie flat in their shard: a directory per blob cost ext4 a second inode
per cached blob, which a walk over small files paid for. A cache in the older
layout (``<digest>/<index>``) is moved over when it is scanned (``scan``).
Files are written under a temporary name ending in ``.part`` and renamed; one
left behind by a writer that crashed is removed once it is old enough not to
be another process's write in progress.

Several processes may share the directory: each reads it back when it starts
(``scan``), and the tools and tests read it without a cache (``chunk_places``).
docs/design.md, "The cache", says why the cache is laid out so.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from artfs.cache.layout import DIGEST_BYTES, Key
from artfs.cache.packs import PACK_SUFFIX, read_index

__all__ = [
    "PART",
    "STALE_PART_SECONDS",
    "ChunkPlace",
    "cached_chunks",
    "chunk_path",
    "chunk_places",
    "default_cache_dir",
    "layout_path",
    "make_dirs",
    "parse_chunk_name",
    "remove",
    "scan",
]

log = logging.getLogger("artfs.cache")

#: The suffix of a file being written, renamed without it when complete.
PART = ".part"
#: A temporary chunk file this old was left by a writer that crashed.
STALE_PART_SECONDS = 3600.0

#: (mtime, chunk, size) of a chunk found on disk.
Found = tuple[float, Key, int]


def default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("artfs"))


def make_dirs(root: Path) -> None:
    for name in ("chunks", "layouts", "tmp", "packs"):
        (root / name).mkdir(parents=True, exist_ok=True)


def chunk_path(chunks_root: str, digest: str, index: int) -> str:
    # A plain string, not a Path: built once per read on the hot path.
    return f"{chunks_root}/{digest[:2]}/{digest}.{index}"


def layout_path(root: Path, digest: str) -> Path:
    return root / "layouts" / digest[:2] / digest


def parse_chunk_name(name: str) -> Key | None:
    """``<digest>.<index>`` → ``(digest, index)``; ``None`` for any other name."""
    digest, dot, index = name.partition(".")
    if dot and len(digest) == 2 * DIGEST_BYTES and index.isdigit() and index.isascii():
        return digest, int(index)
    return None


@dataclass(frozen=True)
class ChunkPlace:
    """Where a cached chunk's bytes lie: a file of its own (offset 0) or a pack."""

    path: str
    offset: int
    size: int


def chunk_places(root: Path) -> dict[Key, ChunkPlace]:
    """The chunks a cache directory holds and where (reads only; for tools and tests)."""
    found, packed, _ = _list_disk(root)
    places: dict[Key, ChunkPlace] = {}
    for _, key, size in found:
        path, offset = packed.get(key) or (chunk_path(f"{root}/chunks", *key), 0)
        places[key] = ChunkPlace(path, offset, size)
    return places


def cached_chunks(root: Path) -> dict[Key, int]:
    """The chunks a cache directory holds, with their sizes (reads only; for tools and tests)."""
    return {key: size for _, key, size in _list_disk(root)[0]}


def scan(root: Path) -> tuple[list[Found], dict[Key, tuple[str, int]]]:
    """The chunks on disk, oldest mtime first, and where the packed ones lie.

    First moves chunks of the older per-blob-directory layout into place and
    removes what a crashed writer left behind (temporary files older than
    ``STALE_PART_SECONDS``); last removes damaged packs, and packs whose every
    chunk is stored on its own now.
    """
    now = time.time()
    chunks_root = str(root / "chunks")
    packs_root = str(root / "packs")
    for shard in os.scandir(chunks_root):
        if shard.is_dir(follow_symlinks=False):
            for entry in os.scandir(shard.path):
                if entry.is_dir(follow_symlinks=False):
                    _migrate_blob_dir(entry.path)
                else:
                    _remove_if_stale(entry, now)
    for entry in os.scandir(packs_root):
        _remove_if_stale(entry, now)
    found, packed, damaged = _list_disk(root)
    for path in damaged:
        log.warning("dropping damaged cache pack %s", path)
    listed = {path for path, _ in packed.values()}
    remove(
        *(
            e.path
            for e in _entries(packs_root)
            if e.name.endswith(PACK_SUFFIX) and e.path not in listed
        )
    )
    return found, packed


def _migrate_blob_dir(blob_dir: str) -> None:
    """``<shard>/<digest>/<index>`` → ``<shard>/<digest>.<index>`` (the older layout)."""
    digest = os.path.basename(blob_dir)
    shard = os.path.dirname(blob_dir)
    for chunk in os.scandir(blob_dir):
        if chunk.name.isdigit() and parse_chunk_name(f"{digest}.{chunk.name}") is not None:
            with contextlib.suppress(FileNotFoundError):  # another process moved it
                os.replace(chunk.path, f"{shard}/{digest}.{chunk.name}")
        else:
            remove(chunk.path)  # a stray: not a chunk of the older layout
    with contextlib.suppress(OSError):
        os.rmdir(blob_dir)


def _list_disk(root: Path) -> tuple[list[Found], dict[Key, tuple[str, int]], list[str]]:
    """(mtime, key, size) of every chunk on disk, oldest first; where packed ones lie;
    and the packs found damaged."""
    found: list[Found] = []
    for shard in _entries(root / "chunks"):
        if not shard.is_dir(follow_symlinks=False):
            continue
        for entry in _entries(shard.path):
            key = parse_chunk_name(entry.name)
            if key is None:
                continue
            with contextlib.suppress(FileNotFoundError):  # evicted meanwhile
                found.append(
                    (entry.stat(follow_symlinks=False).st_mtime, key, entry.stat().st_size)
                )
    on_their_own = {key for _, key, _ in found}
    packed: dict[Key, tuple[str, int]] = {}
    damaged: list[str] = []
    for entry in _entries(root / "packs"):
        if not entry.name.endswith(PACK_SUFFIX):
            continue
        index = read_index(entry.path)
        if index is None:
            damaged.append(entry.path)
            continue
        try:
            mtime = entry.stat(follow_symlinks=False).st_mtime
        except FileNotFoundError:
            continue
        for digest, chunk, offset, size in index:
            key = (digest, chunk)
            # A chunk in a file of its own was stored after the pack (a refetch).
            if key not in on_their_own and key not in packed:
                packed[key] = (entry.path, offset)
                found.append((mtime, key, size))
    found.sort()
    return found, packed, damaged


def remove(*paths: str | None) -> None:
    """Delete these files; one already gone (or ``None``) is no matter."""
    for path in paths:
        if path is not None:
            with contextlib.suppress(OSError):
                os.unlink(path)


def _entries(directory: str | Path) -> list[os.DirEntry[str]]:
    """A directory's entries; none if it is gone (removed by another process, or never made)."""
    try:
        with os.scandir(directory) as listing:
            return list(listing)
    except FileNotFoundError:
        return []


def _remove_if_stale(entry: os.DirEntry[str], now: float) -> None:
    """Remove a temporary file a crashed writer left behind."""
    if not entry.name.endswith(PART):
        return
    with contextlib.suppress(OSError):
        if now - entry.stat(follow_symlinks=False).st_mtime > STALE_PART_SECONDS:
            os.unlink(entry.path)
