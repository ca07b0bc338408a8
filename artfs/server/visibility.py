"""A short-lived memory of which blobs a project may read and upload.

Blobs are shared across projects in the store, so every blob request checks
that some version of its project (pending ones too) names the digest: a join
over three tables. An upload of 10,000 small files would pay it 10,000 times,
so positive answers are kept for ``ttl`` seconds, and the digests a new upload
reports missing are known to be visible the moment its transaction commits,
so the PUTs that follow need no query at all. Negative answers are never kept:
a blob becomes visible as soon as an upload names it.

A kept answer goes stale only when the upload that named the blob is dropped
(abort, gc of an abandoned upload); those clear this process's memory. Other
server processes may still answer "visible" for up to ``ttl`` seconds, which
is harmless: the bytes are immutable and the project named them moments ago.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from cachetools import TTLCache

__all__ = ["VisibleBlobs"]


class VisibleBlobs:
    def __init__(self, maxsize: int = 100_000, ttl: float = 60.0) -> None:
        self._known: TTLCache[tuple[str, str], bool] = TTLCache(maxsize=maxsize, ttl=ttl)
        self._lock = threading.Lock()

    def known(self, project: str, digest: str) -> bool:
        with self._lock:
            return (project, digest) in self._known

    def remember(self, project: str, digests: Iterable[str]) -> None:
        with self._lock:
            for digest in digests:
                self._known[project, digest] = True

    def forget_all(self) -> None:
        with self._lock:
            self._known.clear()
