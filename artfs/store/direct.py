"""``BlockWriter``: a new file written front to back, large blobs past the page cache.

A registry receiving a 1 GiB upload gains nothing from keeping its bytes in
the page cache (the next reader is a mount that caches them itself), yet the
copy into fresh page-cache pages was the largest cost of an upload: more CPU
than both sha256 passes together, and far more on a virtual machine whose
free pages the host has taken back. So once a file outgrows one block, whole
blocks go out with ``O_DIRECT`` from one page-aligned buffer; what is left at
the end (less than a block) goes through the page cache as usual. Small files
never touch the buffer. Filesystems that refuse ``O_DIRECT`` get plain writes.
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os

from artfs.fileio import write_all

__all__ = ["BLOCK_SIZE", "BlockWriter"]

#: Bytes per ``O_DIRECT`` write: large enough that the disk, not the call, sets the pace.
BLOCK_SIZE = 4 << 20


class BlockWriter:
    def __init__(self, path: str | os.PathLike[str], *, block_size: int = BLOCK_SIZE) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        self._block_size = block_size
        self._pending: list[bytes | memoryview] = []  # until the first block fills
        self._pending_bytes = 0
        self._block: mmap.mmap | None = None
        self._fill = 0
        self._direct = hasattr(os, "O_DIRECT")

    def write(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        if self._block is None:
            if self._pending_bytes + len(view) < self._block_size:
                # Immutable bytes are kept by reference; anything else is copied.
                self._pending.append(view if view.readonly else bytes(view))
                self._pending_bytes += len(view)
                return
            self._block = mmap.mmap(-1, self._block_size)
            pending, self._pending, self._pending_bytes = self._pending, [], 0
            for piece in pending:
                self._append(memoryview(piece))
        self._append(view)

    def _append(self, view: memoryview) -> None:
        assert self._block is not None
        while view:
            take = min(len(view), self._block_size - self._fill)
            self._block[self._fill : self._fill + take] = view[:take]
            self._fill += take
            view = view[take:]
            if self._fill == self._block_size:
                self._write_block(self._block_size)

    def _write_block(self, length: int) -> None:
        assert self._block is not None
        out = memoryview(self._block)[:length]
        if self._direct:
            try:
                self._set_direct(True)
                write_all(self.fd, out)
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                # Refused by this filesystem: plain writes from now on. A refused
                # O_DIRECT write wrote nothing, so the block is simply written again.
                self._direct = False
                self._set_direct(False)
                write_all(self.fd, out)
        else:
            write_all(self.fd, out)
        out.release()
        self._fill = 0

    def _set_direct(self, on: bool) -> None:
        flags = fcntl.fcntl(self.fd, fcntl.F_GETFL)
        wanted = flags | os.O_DIRECT if on else flags & ~os.O_DIRECT
        if wanted != flags:
            fcntl.fcntl(self.fd, fcntl.F_SETFL, wanted)

    def finish(self) -> None:
        """Write what is left and fsync; the file is then whole on disk."""
        if self._block is None:
            for piece in self._pending:
                write_all(self.fd, memoryview(piece))
            self._pending.clear()
        else:
            aligned = self._fill - self._fill % mmap.PAGESIZE
            tail = self._block[aligned : self._fill]
            if aligned:
                self._write_block(aligned)
            if self._direct:
                self._set_direct(False)
            write_all(self.fd, memoryview(tail))
            self._fill = 0
        os.fsync(self.fd)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self._block is not None:
            self._block.close()
            self._block = None
        self._pending.clear()
