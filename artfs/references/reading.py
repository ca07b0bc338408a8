"""Reading a reference, verified against what was logged.

Every answer of the source is checked before any of its bytes are used: the
size must be the recorded one and each pinned field (ETag, version id, mtime)
the pinned value, else ``SourceChanged``. Bytes are then checked by content:
``hash_reference`` streams the whole object once, never holding it in memory,
and compares its sha256 with the recorded digest (if one was recorded), giving
the chunk digests a ranged reader verifies each chunk against.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from artfs.cache.layout import ChunkLayout
from artfs.digests import CHUNK_HASH, CHUNK_SIZE, BlobHasher
from artfs.errors import SourceChanged
from artfs.references.pins import split_pin
from artfs.references.stores import Body, store_for

__all__ = ["READ_BLOCK", "ReferenceRead", "hash_reference", "open_reference"]

READ_BLOCK = 1 << 20


@dataclass(frozen=True)
class ReferenceRead:
    """A file of a version whose bytes live at ``uri`` (pinned or not)."""

    path: str
    uri: str
    size: int
    #: The sha256 recorded at log time; None when logged with ``checksum=False``.
    digest: str | None

    def changed(self, what: str) -> SourceChanged:
        base, _ = split_pin(self.uri)
        return SourceChanged(
            f"{self.path}: its source {base} changed since it was logged ({what}); "
            "its bytes are refused"
        )


def _check(ref: ReferenceRead, body: Body) -> None:
    _, pin = split_pin(ref.uri)
    found = body.found
    if found.size != ref.size:
        raise ref.changed(f"{found.size} bytes, logged with {ref.size}")
    for name in ("etag", "version_id", "mtime_ns"):
        wanted = getattr(pin, name)
        if wanted is not None and getattr(found, name) != wanted:
            raise ref.changed(f"{name} {getattr(found, name)}, logged with {wanted}")


@contextmanager
def open_reference(ref: ReferenceRead, start: int, end: int) -> Iterator[Body]:
    """Bytes ``[start, end)`` of the reference, once its source's answer matches the record."""
    base, pin = split_pin(ref.uri)
    with store_for(base).open(base, pin, start, end) as body:
        _check(ref, body)
        yield body


def hash_reference(
    ref: ReferenceRead, write: Callable[[memoryview], object] | None = None
) -> ChunkLayout:
    """Stream the whole object once (through ``write``, if given): its layout (sha256
    and chunk digests), checked against the recorded digest if there is one."""
    hasher = BlobHasher(CHUNK_SIZE, CHUNK_HASH)
    buffer = bytearray(READ_BLOCK)
    with open_reference(ref, 0, ref.size) as body:
        left = ref.size
        while left:
            view = memoryview(buffer)[: min(left, READ_BLOCK)]
            if not body.read_into(view):
                raise ref.changed(f"it ended after {ref.size - left} bytes")
            hasher.update(view)
            if write is not None:
                write(view)
            left -= len(view)
    digest = hasher.finish()
    if ref.digest is not None and digest != ref.digest:
        raise ref.changed(f"sha256 {digest}, logged with {ref.digest}")
    return ChunkLayout(digest, ref.size, CHUNK_SIZE, b"".join(hasher.chunk_digests), CHUNK_HASH)
