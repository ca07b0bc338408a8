"""``RangeReader``: ranged blob GETs read straight into the caller's buffers.

The mount's one hot HTTP call. ``requests``/urllib3 cannot read a body into a
given buffer: their ``readinto`` reads a fresh ``bytes`` and copies it, twice
over with ``http.client`` below, a cost per byte the mount's cold reads cannot
afford (docs/benchmarks.md has the figures). So this module speaks to the
registry with the standard library's ``http.client``: one persistent
connection per worker thread, a ``Range`` header, ``readinto`` the chunk
buffers. Everything else (layouts, listings, auth errors in detail) stays on
``RegistryClient``.

Errors are translated here: connection failures, timeouts and 5xx answers are
``Transient``; a JSON error body becomes the domain exception of its code.

A registry on an object store gives presigned URLs (``PresignedUrls``): then
the range is asked of the store itself, on a connection of its own, and a URL
the store refuses (4xx, no connection, a 200 for a range) sends that read back
through the registry. A store that throttles or fails (429, 5xx) is asked
again after a jittered wait, a few times, and then the read is ``Transient``:
the registry reads the same store, so going through it would only add load.
The bytes are verified against the blob's chunk digests by the caller either
way.
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from artfs.client.failures import error_from_answer, tls_failure, unreachable
from artfs.client.presigned import (
    ERROR_BODY_MOST,
    STORE_TRIES,
    Presigned,
    PresignedUrls,
    store_backoff,
    store_busy,
    store_still_busy,
)
from artfs.client.routes import Routes
from artfs.client.streams import fill
from artfs.config import DIRECT_READS_HEADER, ClientConfig
from artfs.errors import Transient

__all__ = ["RangeBody", "RangeReader"]


class RangeBody:
    """The body of one ranged answer, read piece by piece into given buffers."""

    def __init__(self, response: http.client.HTTPResponse, digest: str) -> None:
        self._response = response
        self._digest = digest

    def read_into(self, view: memoryview) -> bool:
        """Fill ``view`` completely; ``False`` if the body ended first."""
        return fill(self._response, view)


class RangeReader:
    def __init__(self, config: ClientConfig, timeout: float = 30.0) -> None:
        parts = urlsplit(config.url)
        self._url = config.url
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port
        self._root = parts.path.rstrip("/")
        self._routes = Routes(config.project)
        self._headers = {"Authorization": f"Bearer {config.token}"} if config.token else {}
        self._tls = ssl.create_default_context(cafile=config.ca_bundle) if self._https else None
        self._ca_bundle = config.ca_bundle
        self._store_tls: ssl.SSLContext | None = None  # made on first use: loading CAs costs
        self.direct = PresignedUrls(self._ask_url)
        self._timeout = timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[http.client.HTTPConnection] = []

    def _connection(self, presigned: Presigned | None = None) -> http.client.HTTPConnection:
        """This thread's connection to the registry, or to the store of ``presigned``."""
        key = None if presigned is None else (presigned.https, presigned.host, presigned.port)
        connections: dict[object, http.client.HTTPConnection] | None = getattr(
            self._local, "connections", None
        )
        if connections is None:
            connections = self._local.connections = {}
        connection = connections.get(key)
        if connection is None:
            if presigned is None:
                https, host, port, tls = self._https, self._host, self._port, self._tls
            else:
                https, host, port = presigned.https, presigned.host, presigned.port
                tls = self._store_context() if https else None
            if https:
                connection = http.client.HTTPSConnection(
                    host, port, timeout=self._timeout, context=tls
                )
            else:
                connection = http.client.HTTPConnection(host, port, timeout=self._timeout)
            connections[key] = connection
            with self._lock:
                self._all.append(connection)
        return connection

    def _store_context(self) -> ssl.SSLContext:
        """TLS for the object store: the system's certificates and the registry's CA
        bundle, where a site keeps its private CA."""
        if self._store_tls is None:
            context = ssl.create_default_context()
            if self._ca_bundle:
                context.load_verify_locations(cafile=self._ca_bundle)
            self._store_tls = context
        return self._store_tls

    def _connected(self, presigned: Presigned | None = None) -> http.client.HTTPConnection:
        """This thread's connection, connected. A refused connection is the registry
        being unreachable, reported as every other client path reports it."""
        connection = self._connection(presigned)
        if connection.sock is None:
            where = self._url if presigned is None else f"the object store at {presigned.host}"
            try:
                connection.connect()
            except ssl.SSLError as exc:
                self._drop(presigned)
                raise tls_failure(where, exc) from exc
            except OSError as exc:
                self._drop(presigned)
                raise unreachable(where) from exc
        return connection

    def _drop(self, presigned: Presigned | None = None) -> None:
        key = None if presigned is None else (presigned.https, presigned.host, presigned.port)
        connections = getattr(self._local, "connections", None) or {}
        connection = connections.pop(key, None)
        if connection is not None:
            connection.close()
            with self._lock:
                if connection in self._all:
                    self._all.remove(connection)

    def _get(
        self, target: str, headers: dict[str, str], presigned: Presigned | None = None
    ) -> http.client.HTTPResponse:
        connection = self._connected(presigned)
        try:
            connection.request("GET", target, headers=headers)
            return connection.getresponse()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            # The server closed an idle kept-alive connection: one fresh try.
            self._drop(presigned)
            connection = self._connected(presigned)
            connection.request("GET", target, headers=headers)
            return connection.getresponse()

    def _ask_url(self, digest: str) -> tuple[str | None, float]:
        """The registry's presigned URL for ``digest``; none on any error (the read then
        goes through the registry, which reports that error itself)."""
        try:
            response = self._get(f"{self._root}{self._routes.blob_url(digest)}", self._headers)
            body = response.read()
        except (OSError, http.client.HTTPException, Transient):
            self._drop()
            return None, 0.0
        if response.status != 200:
            return None, 0.0
        try:
            answer = json.loads(body)
            url, seconds = answer["url"], float(answer["expires_in"])
        except (ValueError, KeyError, TypeError):
            return None, 0.0
        return (url if isinstance(url, str) else None), seconds

    def _from_store(
        self, digest: str, start: int, end: int
    ) -> tuple[http.client.HTTPResponse, Presigned] | None:
        """The range's answer from the object store; ``None``: go through the registry.

        A store that throttles or fails (429, 5xx) is asked again after a jittered
        wait, ``STORE_TRIES`` times in all, and then the read fails as ``Transient``:
        the registry would only read the same store on this client's behalf.
        """
        presigned = self.direct.get(digest)
        if presigned is None:
            return None
        headers = {"Range": f"bytes={start}-{end - 1}"}
        for attempt in range(1, STORE_TRIES + 1):
            try:
                response = self._get(presigned.target, headers, presigned)
            except (OSError, http.client.HTTPException, Transient):
                self._drop(presigned)
                self.direct.failed(digest)
                return None
            if response.status == 206:
                return response, presigned
            body = response.read(ERROR_BODY_MOST)
            if not response.isclosed():
                self._drop(presigned)  # an error body too long to read to its end
            if not store_busy(response.status):
                # Expired, refused, or a store that ignores ranges (a 200 would bring more
                # than the range): this read goes the registry's way, the URL is forgotten.
                self.direct.failed(digest)
                return None
            if attempt < STORE_TRIES:
                self.direct.retried()
                time.sleep(store_backoff(attempt, response.getheader("Retry-After")))
        raise store_still_busy(presigned.host, response.status, digest, body)

    @contextmanager
    def open(self, digest: str, start: int, end: int) -> Iterator[RangeBody]:
        """Bytes ``[start, end)`` of a blob, on this thread's connection.

        The connection is kept for the next request only if the body was read
        to its end; otherwise it is closed (its unread bytes are of no use).
        """
        presigned: Presigned | None = None
        try:
            direct = self._from_store(digest, start, end)
            if direct is not None:
                response, presigned = direct
            else:
                headers = {**self._headers, "Range": f"bytes={start}-{end - 1}"}
                response = self._get(f"{self._root}{self._routes.blob(digest)}", headers)
                if response.status >= 400:
                    raise error_from_answer(response.status, response.read(), self._host)
                if response.status != 206 and start != 0:
                    raise Transient(f"registry ignored the range request for blob {digest}")
                if response.getheader(DIRECT_READS_HEADER) == "on":
                    self.direct.offered = True
            yield RangeBody(response, digest)
            if response.read(1):
                raise Transient(f"blob {digest} sent more than the range asked for")
        except (OSError, http.client.HTTPException) as exc:
            self._drop(presigned)
            raise Transient(f"fetch of blob {digest} failed: {exc}") from exc
        except BaseException:
            self._drop(presigned)
            raise

    def close(self) -> None:
        with self._lock:
            connections, self._all = self._all, []
        for connection in connections:
            connection.close()
