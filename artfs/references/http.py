"""``http(s)://`` references, on ``requests``: one object per URI (HTTP has no listing),
read with ``Range`` requests where the server honours them.

A server that answers a ranged request with the whole body (200) is still read:
the bytes before ``start`` are skipped, so a source without range support works,
only slower. What the server says of the object (``ETag``, ``Last-Modified``,
the length) comes with every answer and is checked against the pin by the reader.
"""

from __future__ import annotations

import email.utils
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import requests

from artfs.errors import Forbidden, NotFound, Transient
from artfs.references.pins import Pin
from artfs.references.stores import Body, RemoteObject, StreamBody

__all__ = ["HttpStore"]

#: Seconds to connect, and to wait for each piece of an answer.
TIMEOUT = (10.0, 60.0)
SKIP_BLOCK = 1 << 20


def _object(uri: str, response: requests.Response, size: int) -> RemoteObject:
    modified = response.headers.get("Last-Modified")
    mtime_ns = None
    if modified:
        try:
            mtime_ns = int(email.utils.parsedate_to_datetime(modified).timestamp()) * 10**9
        except (TypeError, ValueError):
            mtime_ns = None
    return RemoteObject(uri, size, etag=response.headers.get("ETag"), mtime_ns=mtime_ns)


def _check(uri: str, response: requests.Response) -> None:
    if response.status_code in (404, 410):
        raise NotFound(f"reference {uri}: the server answers {response.status_code}")
    if response.status_code in (401, 403):
        raise Forbidden(f"reference {uri}: the server answers {response.status_code}")
    if response.status_code >= 500 or response.status_code == 429:
        raise Transient(f"reference {uri}: the server answers {response.status_code}")
    if response.status_code >= 400:
        raise NotFound(f"reference {uri}: the server answers {response.status_code}")


class HttpStore:
    def __init__(self) -> None:
        # A session per thread: requests does not promise that one is thread-safe.
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def _get(self, uri: str, headers: dict[str, str]) -> requests.Response:
        try:
            response = self._session().get(uri, headers=headers, stream=True, timeout=TIMEOUT)
        except requests.RequestException as exc:
            raise Transient(f"reference {uri}: {type(exc).__name__}") from exc
        if response.status_code >= 300:
            response.close()
            _check(uri, response)
        return response

    def stat(self, uri: str, pin: Pin) -> RemoteObject:
        try:
            response = self._session().head(uri, timeout=TIMEOUT, allow_redirects=True)
        except requests.RequestException as exc:
            raise Transient(f"reference {uri}: {type(exc).__name__}") from exc
        length = response.headers.get("Content-Length")
        if response.status_code < 300 and length is not None and length.isdigit():
            return _object(uri, response, int(length))
        if response.status_code not in (405, 501) and response.status_code >= 300:
            _check(uri, response)
        # No HEAD, or no length: the first byte's answer says the total.
        with self._open(uri, 0, 1) as body:
            return body.found

    def list(self, uri: str, limit: int) -> list[RemoteObject] | None:
        return None

    @contextmanager
    def _open(self, uri: str, start: int, end: int) -> Iterator[Body]:
        headers = {"Accept-Encoding": "identity"}
        if end > start:
            headers["Range"] = f"bytes={start}-{end - 1}"
        response = self._get(uri, headers)
        with response:
            if response.status_code == 206:
                total = response.headers.get("Content-Range", "").rpartition("/")[2]
                size = int(total) if total.isdigit() else end
                skip = 0
            else:
                length = response.headers.get("Content-Length", "")
                size = int(length) if length.isdigit() else end
                skip = start  # the whole body: skip to ``start``
            raw = response.raw
            while skip:
                got = len(raw.read(min(skip, SKIP_BLOCK)))
                if not got:
                    break
                skip -= got
            yield StreamBody(raw, _object(uri, response, size))

    def open(self, uri: str, pin: Pin, start: int, end: int) -> AbstractContextManager[Body]:
        return self._open(uri, start, end)
