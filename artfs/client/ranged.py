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
"""

from __future__ import annotations

import http.client
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from artfs.client.failures import error_from_answer, tls_failure, unreachable
from artfs.client.routes import Routes
from artfs.client.streams import fill
from artfs.config import ClientConfig
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
        self._timeout = timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[http.client.HTTPConnection] = []

    def _connection(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            if self._tls is not None:
                connection = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self._timeout, context=self._tls
                )
            else:
                connection = http.client.HTTPConnection(
                    self._host, self._port, timeout=self._timeout
                )
            self._local.connection = connection
            with self._lock:
                self._all.append(connection)
        return connection

    def _connected(self) -> http.client.HTTPConnection:
        """This thread's connection, connected. A refused connection is the registry
        being unreachable, reported as every other client path reports it."""
        connection = self._connection()
        if connection.sock is None:
            try:
                connection.connect()
            except ssl.SSLError as exc:
                self._drop()
                raise tls_failure(self._url, exc) from exc
            except OSError as exc:
                self._drop()
                raise unreachable(self._url) from exc
        return connection

    def _drop(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None
            with self._lock:
                if connection in self._all:
                    self._all.remove(connection)

    @contextmanager
    def open(self, digest: str, start: int, end: int) -> Iterator[RangeBody]:
        """Bytes ``[start, end)`` of a blob, on this thread's connection.

        The connection is kept for the next request only if the body was read
        to its end; otherwise it is closed (its unread bytes are of no use).
        """
        headers = {**self._headers, "Range": f"bytes={start}-{end - 1}"}
        path = f"{self._root}{self._routes.blob(digest)}"
        connection = self._connected()
        try:
            try:
                connection.request("GET", path, headers=headers)
                response = connection.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # The server closed an idle kept-alive connection: one fresh try.
                self._drop()
                connection = self._connected()
                connection.request("GET", path, headers=headers)
                response = connection.getresponse()
            if response.status >= 400:
                raise error_from_answer(response.status, response.read(), self._host)
            if response.status != 206 and start != 0:
                raise Transient(f"registry ignored the range request for blob {digest}")
            yield RangeBody(response, digest)
            if response.read(1):
                raise Transient(f"blob {digest} sent more than the range asked for")
        except (OSError, http.client.HTTPException) as exc:
            self._drop()
            raise Transient(f"fetch of blob {digest} failed: {exc}") from exc
        except BaseException:
            self._drop()
            raise

    def close(self) -> None:
        with self._lock:
            connections, self._all = self._all, []
        for connection in connections:
            connection.close()
