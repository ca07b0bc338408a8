"""Moving bytes: hashing local files, uploading blobs and downloading them, in parallel.

Every transfer streams in blocks (never a whole file in memory), is retried on
``Transient`` errors with backoff, and is verified: an upload is checked by the
server against its digest; a download is hashed on arrival and renamed into
place only when it matches. An interrupted download leaves a ``.artfs-part``
file that the next attempt continues from, with a ``Range`` request.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import requests

from artfs.cache.chunks import ChunkCache
from artfs.cache.layout import ChunkLayout
from artfs.client.http import RegistryClient
from artfs.client.streams import split_into
from artfs.digests import CHUNK_HASH, CHUNK_SIZE, BlobHasher, hash_file
from artfs.errors import ArtfsError, Corrupt, NoSpace, Transient
from artfs.fileio import write_all

if TYPE_CHECKING:
    from tqdm import tqdm

__all__ = [
    "DEFAULT_WORKERS",
    "BlobSource",
    "Progress",
    "copy_from_cache",
    "fetch_blob",
    "fetch_small_blobs",
    "hash_paths",
    "parallel",
    "small_batches",
    "upload_blobs",
]

log = logging.getLogger("artfs.transfer")

DEFAULT_WORKERS = 8
ATTEMPTS = 5
READ_BLOCK = 1 << 20
#: Blobs up to this size are downloaded many per request (``fetch_small_blobs``).
SMALL_BLOB = 256 << 10
#: Limits of one such request: files and bytes.
BATCH_FILES = 256
BATCH_BYTES = 4 << 20
#: Below this many bytes a transfer is over too soon for a progress bar to help.
PROGRESS_THRESHOLD = 4 << 20

T = TypeVar("T")
R = TypeVar("R")


class Progress:
    """A byte counter that draws a bar only on a terminal and only for big transfers."""

    def __init__(self, total: int, description: str, enabled: bool | None = None) -> None:
        show = sys.stderr.isatty() if enabled is None else enabled
        self._bar: tqdm[Any] | None = None
        if show and total >= PROGRESS_THRESHOLD:
            from tqdm import tqdm  # only now: most CLI runs draw no bar

            self._bar = tqdm(
                total=total, desc=description, unit="B", unit_scale=True, unit_divisor=1024
            )

    def update(self, count: int) -> None:
        if self._bar is not None:
            self._bar.update(count)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def parallel(
    function: Callable[[T], R], items: Iterable[T], workers: int = DEFAULT_WORKERS
) -> list[R]:
    """``map`` on a thread pool; the first failure is raised once the others are done."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(function, items))


def _retrying(action: Callable[[], R], what: str) -> R:
    delay = 0.2
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return action()
        except Transient:
            if attempt == ATTEMPTS:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
    raise AssertionError(f"unreachable: {what}")


def hash_paths(paths: Sequence[Path], workers: int = DEFAULT_WORKERS) -> list[tuple[str, int]]:
    """sha256 and size of each file; hashlib releases the GIL, so threads run in parallel."""

    def one(path: Path) -> tuple[str, int]:
        with open(path, "rb") as stream:
            return hash_file(stream)

    return parallel(one, paths, workers)


@dataclass(frozen=True)
class BlobSource:
    digest: str
    size: int
    path: Path


def upload_blobs(
    client: RegistryClient,
    sources: Sequence[BlobSource],
    progress: Progress | None = None,
    workers: int = DEFAULT_WORKERS,
) -> int:
    """Upload each blob from its local file; returns the bytes sent.

    Small blobs go many per request (``RegistryClient.upload_blob_batch``), the
    way walks fetch them: one request per 4 KiB file cost more than its bytes.
    """

    def one(source: BlobSource) -> int:
        def attempt() -> int:
            with open(source.path, "rb") as stream:
                client.upload_blob(source.digest, stream, source.size)
            return source.size

        sent = _retrying(attempt, f"upload of {source.path}")
        if progress is not None:
            progress.update(sent)
        return sent

    def batch(sources: list[BlobSource]) -> int:
        blobs = [(source.digest, source.path.read_bytes()) for source in sources]
        if any(len(data) != source.size for (_, data), source in zip(blobs, sources, strict=True)):
            # Changed since it was hashed: one by one, so the registry names the file.
            return sum(one(source) for source in sources)
        _retrying(lambda: client.upload_blob_batch(blobs), f"upload of {len(blobs)} small files")
        sent = sum(source.size for source in sources)
        if progress is not None:
            progress.update(sent)
        return sent

    by_digest = {source.digest: source for source in sources}
    batches, singles = small_batches(
        (source.digest, source.size, source.path) for source in by_digest.values()
    )
    # Big blobs first: the pool stays busy to the end instead of waiting on one straggler.
    ordered = sorted((by_digest[digest] for digest, _, _ in singles), key=lambda s: -s.size)
    jobs = [functools.partial(one, source) for source in ordered]
    jobs += [
        functools.partial(batch, [by_digest[digest] for digest, _, _ in group]) for group in batches
    ]
    return sum(parallel(lambda job: job(), jobs, workers))


def part_path(target: Path, digest: str) -> Path:
    return target.with_name(f".{target.name}.{digest[:16]}.artfs-part")


def fetch_blob(
    client: RegistryClient,
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
                    with client.open_blob(digest, have) as response:
                        for block in response.iter_content(READ_BLOCK):
                            hasher.update(block)
                            out.write(block)
                            if progress is not None:
                                progress.update(len(block))
                except requests.RequestException as exc:
                    # The cause (urllib3's long text) stays attached for --debug.
                    raise Transient(
                        f"download of {target.name} from the registry at {client.config.url} "
                        "was cut off"
                    ) from exc
        # No fsync: a part file torn by a crash fails this check and starts over.
        if hasher.finish() != digest or part.stat().st_size != size:
            part.unlink()
            raise Corrupt(f"downloaded bytes of {target.name} do not match digest {digest}")
        os.replace(part, target)
        chunk_digests[:] = hasher.chunk_digests

    try:
        _retrying(attempt, f"download of {target}")
    except Corrupt:
        # A stale or damaged part file: one clean attempt from the first byte.
        _retrying(attempt, f"download of {target}")
    if size:
        layout = ChunkLayout(digest, size, CHUNK_SIZE, b"".join(chunk_digests), CHUNK_HASH)
        _record(cache, layout, target)


def _record(cache: ChunkCache | None, layout: ChunkLayout, target: Path) -> None:
    """Tell the machine cache that ``target`` now holds the (verified) blob."""
    if cache is None:
        return
    try:
        cache.add_external(layout, target)
    except (NoSpace, OSError) as exc:
        log.warning("could not record %s in the cache: %s", target.name, exc)


def fetch_small_blobs(
    client: RegistryClient,
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
        with client.open_blob_batch([digest for digest, _, _ in items]) as answer:
            pieces = split_into(answer.raw, [size for _, size, _ in items])
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
                _record(cache, layout, target)
                done += 1
    except (ArtfsError, requests.RequestException, OSError) as exc:
        log.info("blob batch stopped after %d of %d files (%s)", done, len(items), exc)
        for digest, size, target in items[done:]:
            fetch_blob(client, digest, size, target, progress, cache, try_cache=False)


def small_batches(
    items: Iterable[tuple[str, int, Path]],
) -> tuple[list[list[tuple[str, int, Path]]], list[tuple[str, int, Path]]]:
    """Group small blobs into request-sized batches; the others are returned apart."""
    batches: list[list[tuple[str, int, Path]]] = []
    others: list[tuple[str, int, Path]] = []
    total = 0
    for item in items:
        size = item[1]
        if not 0 < size <= SMALL_BLOB:
            others.append(item)
            continue
        if not batches or len(batches[-1]) >= BATCH_FILES or total + size > BATCH_BYTES:
            batches.append([])
            total = 0
        batches[-1].append(item)
        total += size
    # A batch of one saves nothing: a plain GET it is (resumable, and by digest).
    others += [batch[0] for batch in batches if len(batch) == 1]
    return [batch for batch in batches if len(batch) > 1], others


def copy_from_cache(
    cache: ChunkCache, digest: str, size: int, target: Path, progress: Progress | None = None
) -> bool:
    """Assemble ``target`` from cached chunks; False (and nothing written) if any is missing."""
    layout = cache.layout(digest, size)
    if layout is None or cache.missing(layout, range(layout.chunk_count)):
        return False
    part = target.with_name(f".{target.name}.{digest[:16]}.artfs-cache")
    buffer = bytearray(min(layout.chunk_size, size))
    placed = False
    # Plain descriptors, not ``open()``: a pull of 1,000 cached small files is
    # mostly file creation, and a buffered file object adds three system calls
    # (fstat, ioctl, lseek) to each.
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    try:
        try:
            for index in range(layout.chunk_count):
                view = memoryview(buffer)[: layout.chunk_length(index)]
                # Verified by the cache against the chunk's digest (once per process
                # and file): hashing the whole again would only repeat that.
                if cache.read(layout, index, 0, view) != len(view):
                    return False  # evicted or found corrupt meanwhile: use the network
                write_all(fd, view)
        finally:
            os.close(fd)
        os.replace(part, target)
        placed = True
    finally:
        if not placed:
            part.unlink(missing_ok=True)
    if progress is not None:
        progress.update(size)
    return True
