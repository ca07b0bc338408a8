"""Downloading blobs into files: verified, resumable, many small ones per request.

A download is hashed on arrival and renamed into place only when it matches.
An interrupted download leaves a ``.artfs-part`` file that the next attempt
continues from, with a ranged request. Every downloaded file is recorded in
the machine cache (``cached``), which a later download copies from.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from artfs.cache.chunks import ChunkCache
from artfs.cache.layout import ChunkLayout
from artfs.client.failures import BodyCutOff
from artfs.client.protocol import RegistryAPI
from artfs.digests import CHUNK_HASH, CHUNK_SIZE, BlobHasher
from artfs.errors import ArtfsError, Corrupt, Transient
from artfs.transfer.cached import copy_from_cache, record_external
from artfs.transfer.parallel import retrying
from artfs.transfer.progress import Progress

__all__ = ["fetch_blob", "fetch_small_blobs", "part_path"]

log = logging.getLogger("artfs.transfer")

READ_BLOCK = 1 << 20


def part_path(target: Path, digest: str) -> Path:
    return target.with_name(f".{target.name}.{digest[:16]}.artfs-part")


def fetch_blob(
    registry: RegistryAPI,
    digest: str,
    size: int,
    target: Path,
    progress: Progress | None = None,
    cache: ChunkCache | None = None,
    *,
    try_cache: bool = True,
) -> None:
    """Put a blob's bytes at ``target``, verified: from the machine cache if it has
    them all (unless the caller tried already), else from the registry (resuming
    a previous partial download), after which the cache records ``target`` as an
    external copy of the blob.
    """
    if try_cache and cache is not None and copy_from_cache(cache, digest, size, target, progress):
        return
    part = part_path(target, digest)
    chunk_digests: list[bytes] = []

    def attempt() -> None:
        hasher = BlobHasher(CHUNK_SIZE)
        have = part.stat().st_size if part.exists() else 0
        if have > size:
            part.unlink()
            have = 0
        if have:
            with open(part, "rb") as existing:
                for block in iter(lambda: existing.read(READ_BLOCK), b""):
                    hasher.update(block)
        with open(part, "ab") as out:
            if have < size:
                try:
                    with registry.open_blob(digest, have, READ_BLOCK) as blocks:
                        for block in blocks:
                            hasher.update(block)
                            out.write(block)
                            if progress is not None:
                                progress.update(len(block))
                except BodyCutOff as exc:
                    # The cause (urllib3's long text) stays attached for --debug.
                    raise Transient(
                        f"download of {target.name} from the registry at {registry.url} was cut off"
                    ) from exc
        # No fsync: a part file torn by a crash fails this check and starts over.
        if hasher.finish() != digest or part.stat().st_size != size:
            part.unlink()
            raise Corrupt(f"downloaded bytes of {target.name} do not match digest {digest}")
        os.replace(part, target)
        chunk_digests[:] = hasher.chunk_digests

    try:
        retrying(attempt, f"download of {target}")
    except Corrupt:
        # A stale or damaged part file: one clean attempt from the first byte.
        retrying(attempt, f"download of {target}")
    if size:
        layout = ChunkLayout(digest, size, CHUNK_SIZE, b"".join(chunk_digests), CHUNK_HASH)
        record_external(cache, layout, target)


def fetch_small_blobs(
    registry: RegistryAPI,
    items: Sequence[tuple[str, int, Path]],
    progress: Progress | None = None,
    cache: ChunkCache | None = None,
) -> None:
    """Download many small blobs (digest, size, target) in one ``POST /blob-batch``.

    Each blob is verified and renamed into place as ``fetch_blob`` would. One
    request instead of one per file is what makes a pull of 10,000 small files
    fast; if the batch fails part-way, the rest are fetched one by one, with
    ``fetch_blob``'s retries and resumption.
    """
    done = 0
    try:
        digests = [digest for digest, _, _ in items]
        with registry.open_blob_batch(digests, [size for _, size, _ in items]) as pieces:
            for (digest, size, target), data in zip(items, pieces, strict=False):
                if data is None:
                    raise Transient("the registry's blob batch ended early")
                layout = ChunkLayout.implied(digest, size)
                if layout is None or not layout.verify(0, data):
                    raise Corrupt(f"downloaded bytes of {target.name} do not match {digest}")
                part = part_path(target, digest)
                with open(part, "wb") as out:
                    out.write(data)
                os.replace(part, target)
                if progress is not None:
                    progress.update(size)
                record_external(cache, layout, target)
                done += 1
    except (ArtfsError, OSError) as exc:
        log.info("blob batch stopped after %d of %d files (%s)", done, len(items), exc)
        for digest, size, target in items[done:]:
            fetch_blob(registry, digest, size, target, progress, cache, try_cache=False)
