"""``PresignedUrls``: where to read a blob straight from the object store.

A registry on an object store hands out presigned GET URLs (``GET
…/blobs/{digest}/url``), so that blob bytes go from the store to the reader
and the registry only answers metadata (docs/design.md, "Direct reads").
URLs are asked for only once the registry said it gives them (the
``artfs.config.DIRECT_READS_HEADER`` of a blob it served itself), so a registry on a folder
costs no request more. A URL is kept until shortly before it expires; one the
store refuses (403, 400, 404, no connection, no TLS, a 200 to a ranged GET) is
forgotten, and that read goes through the registry instead; a store that keeps
refusing, or a registry with no URL to give, is left alone for a while. A store
that is throttling or failing (429, 5xx) is not a refused URL: the registry's
bytes come from that same store, so the read waits (``store_backoff``) and asks
the store again, and after ``STORE_TRIES`` it fails as ``Transient``.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from cachetools import TLRUCache

from artfs.errors import Transient

__all__ = [
    "ERROR_BODY_MOST",
    "FAILURES_TO_PAUSE",
    "FAILURE_WINDOW",
    "FIRST_BACKOFF",
    "NO_URL_PAUSE",
    "RETRY_AFTER_CAP",
    "STORE_TRIES",
    "Presigned",
    "PresignedUrls",
    "store_backoff",
    "store_busy",
    "store_still_busy",
]

#: Seconds a registry that gave no URL is left alone before it is asked again.
NO_URL_PAUSE = 300.0
#: Share of a URL's life after which it is asked for again rather than used.
USE_FOR = 0.8
#: Failed URLs within ``FAILURE_WINDOW`` seconds that make the client stop trying
#: the store for ``NO_URL_PAUSE``: a store this machine cannot reach would
#: otherwise cost every read a failed attempt first.
FAILURES_TO_PAUSE = 3
FAILURE_WINDOW = 60.0
#: Tries of one read at a store that answers 429 or 5xx: enough to ride out a burst of
#: SlowDown, few enough that a store that is down fails the read well within its timeout.
STORE_TRIES = 4
#: Seconds before the first retry, doubled for each next one and jittered, so that a
#: fleet throttled together does not come back together: about 0.35 s over 4 tries.
FIRST_BACKOFF = 0.05
#: Most seconds a store's ``Retry-After`` is waited for: 3 waits stay far below the
#: mount's 30 s read timeout.
RETRY_AFTER_CAP = 2.0
#: Bytes of a store's error answer read, so that its connection can be used again; a
#: longer body closes the connection instead.
ERROR_BODY_MOST = 64 << 10
#: The error code in an S3 error body (``<Code>SlowDown</Code>``), for the message.
_STORE_CODE = re.compile(rb"<Code>([A-Za-z]{1,64})</Code>")


def store_busy(status: int) -> bool:
    """Whether the store answered that it is throttling (429, S3's 503 SlowDown) or
    failing (5xx): a reason to wait and try again, not to read through the registry."""
    return status == 429 or status >= 500


def store_backoff(retry: int, retry_after: str | None = None) -> float:
    """Seconds to wait before retry ``retry`` (1, 2, …) of a read the store was busy for:
    ``FIRST_BACKOFF`` doubled per retry, jittered, at least the store's ``Retry-After``
    (seconds or an HTTP date), which counts up to ``RETRY_AFTER_CAP``."""
    wait = FIRST_BACKOFF * 2.0 ** (retry - 1) * random.uniform(0.5, 1.5)  # noqa: S311
    asked = _seconds(retry_after)
    return max(wait, min(asked, RETRY_AFTER_CAP))


def store_still_busy(host: str, status: int, digest: str, body: bytes = b"") -> Transient:
    """The error of a read the store answered 429 or 5xx ``STORE_TRIES`` times, naming
    its status and the S3 error code of its ``body`` (``SlowDown``) if there is one."""
    code = _STORE_CODE.search(body)
    said = f" {code.group(1).decode('ascii')}" if code else ""
    return Transient(
        f"the object store at {host} answered {status}{said} for blob {digest} "
        f"{STORE_TRIES} times; the read is worth another try later"
    )


def _seconds(retry_after: str | None) -> float:
    if not retry_after:
        return 0.0
    try:
        return max(0.0, float(retry_after))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(retry_after).timestamp() - time.time())
    except (TypeError, ValueError, IndexError, OverflowError):
        return 0.0


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
        self.store_retries = 0  # times the store was asked again after a 429 or 5xx
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

    def retried(self) -> None:
        """The store answered a read with 429 or 5xx and is asked again: counted only,
        the URL is kept and the store not left alone (the registry would read from it)."""
        with self._lock:
            self.store_retries += 1
