"""Digest records: a file's sha256, computed while it was written, kept on the file itself.

The mount hashes a staged file as it is written, when the writes arrive in
order from an empty file, and records the result in the file's
``user.artfs.sha256`` extended attribute as ``digest:size:mtime_ns``, once the
last writer has closed it. A commit then need not read the file a second time
before uploading it.

A record is trusted only while the file's size and mtime are the ones it
names, as the chunk cache trusts an external copy. The mount removes the record
before it lets anything write to the file again, so a daemon killed between a
write and the record leaves no record rather than a stale one. Whatever slips
through (an edit of the backing file behind the mount's back within one mtime
tick, keeping its size) is caught by the registry, which verifies every
uploaded blob: ``publish`` then drops the records and hashes the files.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from artfs.digests import check_digest
from artfs.errors import InvalidInput

__all__ = ["DIGEST_XATTR", "drop_record", "read_record", "write_record"]

DIGEST_XATTR = "user.artfs.sha256"


def read_record(target: int | Path | str) -> tuple[str, int] | None:
    """The recorded ``(sha256, size)`` of a file (an fd or a path) if the record still
    describes it."""
    try:
        raw = os.getxattr(target, DIGEST_XATTR)
        info = os.stat(target)
    except OSError:
        return None
    try:
        digest, size, mtime_ns = raw.decode().split(":")
        check_digest(digest)
        recorded = (int(size), int(mtime_ns))
    except (UnicodeDecodeError, ValueError, InvalidInput):
        return None
    if recorded != (info.st_size, info.st_mtime_ns):
        return None
    return digest, info.st_size


def write_record(fd: int, digest: str) -> None:
    """Record ``digest`` for the file open at ``fd``, with its current size and mtime.

    Setting an xattr changes the ctime only, so the mtime read here stays valid.
    """
    info = os.fstat(fd)
    value = f"{digest}:{info.st_size}:{info.st_mtime_ns}".encode()
    with contextlib.suppress(OSError):  # a filesystem without user xattrs: just no shortcut
        os.setxattr(fd, DIGEST_XATTR, value)


def drop_record(target: int | Path | str) -> None:
    """Remove the record, if any; an fd or a path (a symlink is not followed)."""
    try:
        if isinstance(target, int):
            os.removexattr(target, DIGEST_XATTR)
        else:
            os.removexattr(target, DIGEST_XATTR, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in (errno.ENODATA, errno.ENOTSUP, errno.ENOENT):
            raise
