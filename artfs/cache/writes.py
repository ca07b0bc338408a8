"""``ChunkWriter``: verified chunks onto the disk, as chunk files, packs and layout files.

Every file is written under a temporary name and renamed into place, so it is
either absent or complete under its name: a chunk file's temporary lies beside
it in its shard, a pack's is its name plus ``.part``, a layout file's lies in
``tmp/`` (``artfs.cache.ondisk`` names them all).

Chunks fetched together lie in one pack (``artfs.cache.packs``): the chunks of
one ranged request (a ``Run``, written chunk by chunk as they arrive, since a
file per chunk cost ext4 an inode each, dear in a cold read after many
deletions), and the small blobs of one batch (``write_pack``).

A page-aligned buffer of whole pages is written with ``O_DIRECT``: the bytes
go to the disk without a copy into the page cache, which, with the writeback
that follows, cost more CPU than hashing them; the cache's fresh tier serves
the readers who want them now. Whether the filesystem takes ``O_DIRECT`` is
learnt on its first refusal (``ChunkWriter.direct``); the cache's reads and
buffers follow it.

A write failing with ``ENOSPC`` raises ``NoSpace`` (``full_disk_is_no_space``),
which the cache answers by evicting its own chunks.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import mmap
import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from artfs.cache.layout import ChunkLayout, Key
from artfs.cache.ondisk import PART, chunk_path, remove
from artfs.cache.packs import ALIGN, PACK_SUFFIX, PackEntry, PackWriter, write_pack
from artfs.errors import NoSpace
from artfs.fileio import Buffer, write_all

__all__ = ["ChunkWriter", "Run", "full_disk_is_no_space"]

log = logging.getLogger("artfs.cache")


@contextlib.contextmanager
def full_disk_is_no_space(root: Path) -> Iterator[None]:
    """A cache write failing with ``ENOSPC`` raises ``NoSpace``, which the cache answers
    by evicting."""
    try:
        yield
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise NoSpace(f"cache disk full at {root}") from exc
        raise


@dataclass
class Run:
    """The pack one download's chunks go into (``ChunkCache.storing_run``)."""

    layout: ChunkLayout
    final: str
    planned: list[tuple[str, int, int]]
    writer: PackWriter | None = None
    keys: list[Key] = field(default_factory=list)

    @property
    def part(self) -> str:
        return self.final + PART


class ChunkWriter:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._chunks_root = str(root / "chunks")
        self._packs_root = str(root / "packs")
        self._writer_id = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._tmp_names = itertools.count()
        #: Whether chunk files may be written with O_DIRECT (learnt on the first refusal).
        self.direct = hasattr(os, "O_DIRECT")

    def write_chunk(self, digest: str, index: int, data: Buffer, *, direct: bool) -> None:
        """``write_atomically`` for the hot path: no pathlib, mkdir only when it is missing.

        A page-aligned buffer of whole pages is written with ``O_DIRECT`` (see
        the module doc).
        """
        final = chunk_path(self._chunks_root, digest, index)
        # Beside its final name: a rename within one directory locks only that one.
        # Unique among processes (pid) and threads (the counter), no syscall to draw it.
        tmp = f"{final}.{self._writer_id}-{next(self._tmp_names)}{PART}"
        with full_disk_is_no_space(self.root):
            try:
                direct = direct and self.direct and isinstance(data, mmap.mmap)
                direct = direct and len(data) % ALIGN == 0
                if not (direct and self._write_file(tmp, data, os.O_DIRECT)):
                    self._write_file(tmp, data, 0)
                os.replace(tmp, final)
            except OSError:
                remove(tmp)
                raise

    def new_pack_path(self) -> str:
        """A name for a new pack, unique among processes (pid) and threads (the counter)."""
        return f"{self._packs_root}/{self._writer_id}-{next(self._tmp_names)}{PACK_SUFFIX}"

    def write_pack(self, path: str, blobs: Sequence[tuple[str, Buffer]]) -> list[PackEntry]:
        """Write one-chunk blobs ``(digest, bytes)`` as one pack at ``path``; where each lies."""
        with full_disk_is_no_space(self.root):
            return write_pack(path, path + PART, blobs)

    def start_run(self, layout: ChunkLayout, indexes: range) -> Run:
        """The pack for chunks ``indexes`` of one download, to be opened by ``open_run``."""
        return Run(
            layout,
            self.new_pack_path(),
            [(layout.digest, i, layout.chunk_length(i)) for i in indexes],
        )

    def open_run(self, run: Run) -> None:
        """Create a run's pack, as its first chunk arrives."""
        with full_disk_is_no_space(self.root):
            run.writer = PackWriter(run.part, run.planned)

    def put_in_run(self, run: Run, index: int, data: Buffer, *, direct: bool) -> int:
        """Write a run's next chunk into its open pack; where in the pack it lies."""
        writer = run.writer
        assert writer is not None, "open_run first"
        with full_disk_is_no_space(self.root):
            offset = writer.put(run.layout.digest, index, data, direct=direct and self.direct)
        if writer.direct_refused:
            self.direct = False
        return offset

    def finish_run(self, run: Run) -> bool:
        """Close a run's pack with the chunks put so far; ``False`` if it was never opened."""
        if run.writer is None:
            return False
        try:
            run.writer.finish()
        except OSError as exc:
            # Removed: its chunks are found missing when read, and fetched again.
            log.warning("cannot finish cache pack %s: %s", run.part, exc)
        return True

    def write_atomically(self, path: Path, data: bytes | bytearray | memoryview) -> None:
        tmp = self.root / "tmp" / f"{uuid.uuid4().hex}.part"
        with full_disk_is_no_space(self.root):
            try:
                with open(tmp, "wb") as out:
                    out.write(data)
                path.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, path)
            except OSError:
                tmp.unlink(missing_ok=True)
                raise

    def _write_file(self, path: str, data: Buffer, flags: int) -> bool:
        """Write ``data`` to a new file; ``False`` if the filesystem refuses ``O_DIRECT``."""
        fd = None
        mode = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | flags
        try:
            try:
                fd = os.open(path, mode, 0o644)
            except FileNotFoundError:  # the shard's first chunk, or the cache was wiped
                os.makedirs(os.path.dirname(path), exist_ok=True)
                fd = os.open(path, mode, 0o644)
            write_all(fd, data)
        except OSError as exc:
            # O_DIRECT refused at open or at the first write: say so, never again.
            if flags and exc.errno == errno.EINVAL:
                self.direct = False
                return False
            raise
        finally:
            if fd is not None:
                os.close(fd)
        return True
