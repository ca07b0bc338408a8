"""Direct reads from a store that throttles (503 SlowDown, 429) or fails (5xx): the
read waits and asks the store again, keeps its URL and never falls back to the
registry, whose bytes would come from the same store; a URL the store refuses (403)
still sends that read through the registry.

The store is a loopback HTTP server that answers a presigned path as a script says;
the registry is a real one (on a folder) holding the same blob."""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from artfs.client.http import RegistryClient
from artfs.client.presigned import STORE_TRIES, PresignedUrls
from artfs.client.ranged import RangeReader
from artfs.config import resolve_config
from artfs.errors import Transient
from tests.integration.test_cli import ok
from tests.support.registry import RegistryProcess

SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)
DENIED = b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"


class Store:
    """Answers ``GET /bucket/blob?…`` with the statuses of ``script`` in turn (the last
    one for ever after), 206 meaning the asked range of ``data`` and 200 all of it."""

    def __init__(self, data: bytes, script: list[int]) -> None:
        self.data = data
        self.script = script
        self.seen: list[int] = []  # the status of each answer given
        store = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # kept-alive connections, as S3 keeps them

            def do_GET(self) -> None:
                status = store.script[min(len(store.seen), len(store.script) - 1)]
                store.seen.append(status)
                if status == 200:
                    body = store.data
                    self.send_response(200)
                elif status == 206:
                    found = re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers["Range"] or "")
                    assert found is not None
                    start, last = int(found.group(1)), int(found.group(2))
                    body = store.data[start : last + 1]
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{last}/{len(store.data)}")
                else:
                    body = DENIED if status == 403 else SLOW_DOWN
                    self.send_response(status)
                    self.send_header("Content-Type", "application/xml")
                    if status in (429, 503):
                        self.send_header("Retry-After", "0")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/bucket/blob?X-Amz-Signature=s"


@pytest.fixture
def blob(registry: RegistryProcess, tmp_path: Path) -> tuple[str, bytes]:
    """A blob the registry holds: its digest and bytes."""
    data = os.urandom(256 << 10)
    (tmp_path / "weights.bin").write_bytes(data)
    ok(registry.url, "log", tmp_path / "weights.bin", "--name", "bert", "--type", "model")
    digest = hashlib.sha256(data).hexdigest()
    assert registry.stored(digest) == data
    return digest, data


@pytest.fixture
def reader(registry: RegistryProcess) -> Iterator[RangeReader]:
    reader = RangeReader(resolve_config(registry.url, "default"))
    try:
        yield reader
    finally:
        reader.close()


@contextmanager
def _store(data: bytes, script: list[int]) -> Iterator[Store]:
    store = Store(data, script)
    store.thread.start()
    try:
        yield store
    finally:
        store.server.shutdown()
        store.server.server_close()


def _through_store(reader: RangeReader, store: Store) -> list[str]:
    """Point ``reader``'s direct reads at ``store``; the digests it asks a URL for."""
    asked: list[str] = []

    def ask(digest: str) -> tuple[str | None, float]:
        asked.append(digest)
        return store.url, 3600.0

    reader.direct = PresignedUrls(ask)
    reader.direct.offered = True
    return asked


def _blob_bytes_served(registry: RegistryProcess, digest: str) -> list[str]:
    return [line for line in registry.requests_seen() if line.endswith(f"/blobs/{digest}")]


def _read(reader: RangeReader, digest: str, start: int, end: int) -> bytes:
    got = bytearray(end - start)
    with reader.open(digest, start, end) as body:
        assert body.read_into(memoryview(got))
    return bytes(got)


def test_a_throttling_store_is_asked_again_and_the_registry_never_serves_the_bytes(
    registry: RegistryProcess, blob: tuple[str, bytes], reader: RangeReader
) -> None:
    digest, data = blob
    with _store(data, [503, 429, 500, 206]) as store:
        asked = _through_store(reader, store)
        before = len(_blob_bytes_served(registry, digest))
        assert _read(reader, digest, 1000, 1100) == data[1000:1100]
        assert store.seen == [503, 429, 500, 206]
        assert reader.direct.store_retries == 3
        # Not a URL failure: nothing went through the registry, the URL was kept
        # and the store was not left alone.
        assert len(_blob_bytes_served(registry, digest)) == before
        assert reader.direct.fallbacks == 0
        assert _read(reader, digest, 5000, 6000) == data[5000:6000]
        assert asked == [digest]
        assert store.seen[-1] == 206
        assert len(_blob_bytes_served(registry, digest)) == before


def test_a_store_that_stays_throttled_fails_the_read_as_transient(
    registry: RegistryProcess, blob: tuple[str, bytes], reader: RangeReader
) -> None:
    digest, data = blob
    with _store(data, [503]) as store:
        asked = _through_store(reader, store)
        before = len(_blob_bytes_served(registry, digest))
        with pytest.raises(Transient, match=r"answered 503 SlowDown") as raised:
            _read(reader, digest, 0, 100)
        assert digest in str(raised.value)
        assert store.seen == [503] * STORE_TRIES
        assert len(_blob_bytes_served(registry, digest)) == before  # no fallback
        assert reader.direct.fallbacks == 0
        assert reader.direct.get(digest) is not None  # kept, and no pause
        assert asked == [digest]


def test_a_url_the_store_refuses_still_sends_the_read_through_the_registry(
    registry: RegistryProcess, blob: tuple[str, bytes], reader: RangeReader
) -> None:
    digest, data = blob
    with _store(data, [403, 206]) as store:
        asked = _through_store(reader, store)
        before = len(_blob_bytes_served(registry, digest))
        assert _read(reader, digest, 1000, 1100) == data[1000:1100]
        assert store.seen == [403]  # not asked again: the URL is refused, not busy
        assert len(_blob_bytes_served(registry, digest)) == before + 1
        assert reader.direct.fallbacks == 1
        assert reader.direct.store_retries == 0
        # The URL was forgotten: the next read asks for a fresh one.
        assert _read(reader, digest, 2000, 2100) == data[2000:2100]
        assert asked == [digest, digest]
        assert store.seen == [403, 206]


def test_a_download_from_a_throttling_store_waits_for_it_instead_of_the_registry(
    registry: RegistryProcess, blob: tuple[str, bytes]
) -> None:
    digest, data = blob
    client = RegistryClient(resolve_config(registry.url, "default"))
    try:
        with _store(data, [503, 503, 200]) as store:
            asked = _through_store(client.ranges, store)
            before = len(_blob_bytes_served(registry, digest))
            with client.open_blob(digest) as blocks:
                assert b"".join(blocks) == data
            assert store.seen == [503, 503, 200]
            assert client.ranges.direct.store_retries == 2
            assert client.ranges.direct.fallbacks == 0
            assert asked == [digest]
            store.script = [503]
            with pytest.raises(Transient, match=r"answered 503 SlowDown"), client.open_blob(digest):
                pass
            assert store.seen[3:] == [503] * STORE_TRIES
            assert len(_blob_bytes_served(registry, digest)) == before
    finally:
        client.close()
