"""Thread pools and retries shared by uploads and downloads."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from artfs.digests import hash_file
from artfs.errors import Transient

__all__ = ["DEFAULT_WORKERS", "hash_paths", "parallel", "retrying"]

DEFAULT_WORKERS = 8
ATTEMPTS = 5

T = TypeVar("T")
R = TypeVar("R")


def parallel(
    function: Callable[[T], R], items: Iterable[T], workers: int = DEFAULT_WORKERS
) -> list[R]:
    """``map`` on a thread pool; the first failure is raised once the others are done."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(function, items))


def retrying(action: Callable[[], R], what: str) -> R:
    """``action()``, tried again with backoff while it raises ``Transient``."""
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
