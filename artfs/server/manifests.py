"""``ManifestCache``: a committed version's whole manifest, encoded once, served many times.

A mount needs every path of a version before it can answer a lookup in it, and
a fresh mount of a 100,000-file version must answer its first lookup in well
under a second. Paging through the files listing costs ~10 requests and a JSON
object per file; this form is one response of parallel arrays (columns), which
clients decode far faster. A committed version's files never change, so the
encoded bytes are kept (LRU, bounded by size) per version id (docs/design.md,
"Manifests and chunk lists").
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from typing import Any

from cachetools import LRUCache

__all__ = ["ManifestCache", "encode_manifest"]


def encode_manifest(version: str, rows: Sequence[Any]) -> bytes:
    """Rows of (path, size, digest, uri) in path order, as the columnar JSON document."""
    body = {
        "version": version,
        "paths": [row[0] for row in rows],
        "sizes": [row[1] for row in rows],
        "digests": [row[2] for row in rows],
        # Remote assets are rare: only theirs are listed, by position.
        "uris": {str(i): row[3] for i, row in enumerate(rows) if row[3] is not None},
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


class ManifestCache:
    def __init__(self, max_bytes: int = 256 << 20) -> None:
        self._encoded: LRUCache[int, bytes] = LRUCache(maxsize=max_bytes, getsizeof=len)
        self._lock = threading.Lock()

    def get(self, version_id: int, build: Callable[[], bytes]) -> bytes:
        with self._lock:
            cached = self._encoded.get(version_id)
        if cached is not None:
            return cached
        encoded = build()  # concurrent first askers may both build: same bytes, no harm
        if len(encoded) <= self._encoded.maxsize:
            with self._lock:
                self._encoded[version_id] = encoded
        return encoded
