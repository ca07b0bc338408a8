"""``PresignedUrls``: asked for only once offered, kept until near expiry, dropped on failure,
and a registry with none to give left alone for a while."""

from __future__ import annotations

import time
from email.utils import formatdate

from artfs.client.presigned import (
    FAILURE_WINDOW,
    FAILURES_TO_PAUSE,
    FIRST_BACKOFF,
    NO_URL_PAUSE,
    RETRY_AFTER_CAP,
    STORE_TRIES,
    Presigned,
    PresignedUrls,
    store_backoff,
    store_busy,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Registry:
    def __init__(self, url: str | None) -> None:
        self.url = url
        self.asked: list[str] = []

    def __call__(self, digest: str) -> tuple[str | None, float]:
        self.asked.append(digest)
        return self.url, 100.0


URL = "https://store.example:9000/bucket/sha256/ab/abcd?X-Amz-Signature=s&X-Amz-Expires=100"


def test_urls_are_kept_until_shortly_before_they_expire_and_forgotten_when_refused() -> None:
    clock, registry = Clock(), Registry(URL)
    urls = PresignedUrls(registry, clock)
    assert urls.get("d1") is None
    assert registry.asked == []
    urls.offered = True
    got = urls.get("d1")
    assert got == Presigned(
        True, "store.example", 9000, "/bucket/sha256/ab/abcd?" + URL.split("?")[1]
    )
    clock.now += 79
    assert urls.get("d1") is got
    assert registry.asked == ["d1"]
    clock.now += 2  # past 80% of its 100 s
    assert urls.get("d1") == got
    assert registry.asked == ["d1", "d1"]
    urls.failed("d1")
    assert urls.fallbacks == 1
    urls.get("d1")
    assert registry.asked == ["d1", "d1", "d1"]


def test_a_registry_with_no_url_to_give_is_not_asked_again_for_a_while() -> None:
    clock, registry = Clock(), Registry(None)
    urls = PresignedUrls(registry, clock)
    urls.offered = True
    assert urls.get("d1") is None
    assert urls.get("d2") is None
    assert registry.asked == ["d1"]
    clock.now += NO_URL_PAUSE + 1
    registry.url = URL
    assert urls.get("d2") is not None
    assert registry.asked == ["d1", "d2"]


def test_a_store_that_keeps_failing_is_left_alone_for_a_while() -> None:
    clock, registry = Clock(), Registry(URL)
    urls = PresignedUrls(registry, clock)
    urls.offered = True
    for _ in range(FAILURES_TO_PAUSE):
        assert urls.get("d1") is not None
        urls.failed("d1")
        clock.now += 1
    assert urls.get("d1") is None  # every read goes through the registry now
    asked = len(registry.asked)
    clock.now += NO_URL_PAUSE
    assert urls.get("d1") is not None
    assert len(registry.asked) == asked + 1
    # Failures far apart are bad luck, not a store out of reach.
    for _ in range(FAILURES_TO_PAUSE):
        urls.failed("d1")
        clock.now += FAILURE_WINDOW
    assert urls.get("d1") is not None


def test_only_a_throttling_or_failing_store_is_waited_for_and_not_for_long() -> None:
    assert all(store_busy(status) for status in (429, 500, 502, 503, 504))
    assert not any(store_busy(status) for status in (200, 400, 403, 404, 416))
    for retry in range(1, STORE_TRIES):
        wait = store_backoff(retry)
        base = FIRST_BACKOFF * 2 ** (retry - 1)
        assert base / 2 <= wait <= base * 3 / 2
    assert store_backoff(1, "0.5") >= 0.5
    assert store_backoff(1, "3600") == RETRY_AFTER_CAP  # a store's ask, capped
    assert 0.3 < store_backoff(1, formatdate(time.time() + 1.5, usegmt=True)) <= 1.5
    assert store_backoff(1, "soon") <= FIRST_BACKOFF * 3 / 2
    # Every wait at its longest stays far below the mount's 30 s read timeout.
    assert (STORE_TRIES - 1) * RETRY_AFTER_CAP < 10
