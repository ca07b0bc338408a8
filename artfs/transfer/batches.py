"""Small blobs go many per request, both ways: one request per 4 KiB file costs more
than its bytes."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

__all__ = ["SMALL_BLOB", "small_batches"]

#: Blobs up to this size are moved many per request.
SMALL_BLOB = 256 << 10
#: Limits of one such request: files and bytes.
BATCH_FILES = 256
BATCH_BYTES = 4 << 20


def small_batches(
    items: Iterable[tuple[str, int, Path]],
) -> tuple[list[list[tuple[str, int, Path]]], list[tuple[str, int, Path]]]:
    """Group small blobs (digest, size, path) into request-sized batches; the others are
    returned apart."""
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
    # A batch of one saves nothing: a plain request it is (resumable, and by digest).
    others += [batch[0] for batch in batches if len(batch) == 1]
    return [batch for batch in batches if len(batch) > 1], others
