"""``PresignedUrls``: where to read a blob straight from the object store.

A registry on an object store hands out presigned GET URLs (``GET
…/blobs/{digest}/url``), so that blob bytes go from the store to the reader
and the registry only answers metadata (docs/design.md, "Direct reads").
URLs are asked for only once the registry said it gives them (the
``artfs.config.DIRECT_READS_HEADER`` of a blob it served itself), so a registry on a folder
costs no request more. A URL is kept until shortly before it expires; one the
store refuses is forgotten, and that read goes through the registry instead;
a store that keeps failing, or a registry with no URL to give, is left alone
for a while.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from cachetools import TLRUCache

__all__ = ["FAILURES_TO_PAUSE", "FAILURE_WINDOW", "NO_URL_PAUSE", "Presigned", "PresignedUrls"]

#: Seconds a registry that gave no URL is left alone before it is asked again.
NO_URL_PAUSE = 300.0
#: Share of a URL's life after which it is asked for again rather than used.
USE_FOR = 0.8
#: Failed URLs within ``FAILURE_WINDOW`` seconds that make the client stop trying
#: the store for ``NO_URL_PAUSE``: a store this machine cannot reach would
#: otherwise cost every read a failed attempt first.
FAILURES_TO_PAUSE = 3
FAILURE_WINDOW = 60.0


@dataclass(frozen=True)
class Presigned:
    """One presigned GET URL, split as ``http.client`` takes it."""

    https: bool
    host: str
    port: int | None
    target: str  # path and query, as signed

    @property
    def url(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        return f"{'https' if self.https else 'http'}://{self.host}{port}{self.target}"

    @classmethod
    def parse(cls, url: str) -> Presigned:
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        return cls(parts.scheme == "https", parts.hostname or "", parts.port, target)


#: Asks the registry for a blob's URL: ``(url or None, seconds it is valid)``.
Ask = Callable[[str], tuple[str | None, float]]


class PresignedUrls:
    def __init__(self, ask: Ask, clock: Callable[[], float] = time.monotonic) -> None:
        self._ask = ask
        self._clock = clock
        self._urls: TLRUCache[str, tuple[Presigned, float]] = TLRUCache(
            maxsize=4096, ttu=lambda _key, value, _now: value[1], timer=clock
        )
        self._lock = threading.Lock()
        self._paused_until = 0.0
        #: Whether the registry said it gives URLs (``DIRECT_READS_HEADER``).
        self.offered = False
        self.fallbacks = 0  # reads that went through the registry after a URL failed
        self._failed_at: deque[float] = deque(maxlen=FAILURES_TO_PAUSE)

    def get(self, digest: str) -> Presigned | None:
        """The URL to read ``digest`` from; ``None``: read it through the registry."""
        if not self.offered:
            return None
        now = self._clock()
        with self._lock:
            if now < self._paused_until:
                return None
            kept = self._urls.get(digest)
        if kept is not None:
            return kept[0]
        url, seconds = self._ask(digest)
        with self._lock:
            if url is None:
                self._paused_until = now + NO_URL_PAUSE
                return None
            presigned = Presigned.parse(url)
            self._urls[digest] = (presigned, now + seconds * USE_FOR)
        return presigned

    def failed(self, digest: str) -> None:
        """The store refused or could not be reached with ``digest``'s URL: forget it."""
        now = self._clock()
        with self._lock:
            self._urls.pop(digest, None)
            self.fallbacks += 1
            self._failed_at.append(now)
            if len(self._failed_at) == FAILURES_TO_PAUSE and now - self._failed_at[0] < (
                FAILURE_WINDOW
            ):
                self._paused_until = now + NO_URL_PAUSE
                self._failed_at.clear()
