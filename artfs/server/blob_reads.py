"""Blob GETs and HEADs answered ahead of FastAPI: the registry's hot path.

Every mount read ends here, often 64 at a time, so a successful blob read
skips what FastAPI would spend on it: routing through every route, the
dependency injection, the sync route's and ``FileResponse``'s worker-thread
handoffs (about six per response). What is left is a regex, a dictionary
lookup for the visibility check, ``open`` and ``fstat``, and one ``preadv``
per piece of at most ``PIECE`` bytes into one buffer that goes to the socket
as it is.

The read is tried first with ``RWF_NOWAIT``, which takes only what is already
in the page cache and never blocks the event loop; whatever is not cached is
read by a worker thread. A warm blob therefore costs no thread at all, and a
cold one does not stall the other requests.

Anything else goes on to the FastAPI routes unchanged, which answer it as
before: a project or digest that is not valid, a digest the project does not
(or not yet knowingly) reference, a blob missing on disk, ``If-Range``,
several ranges, and a ``Range`` that is malformed or not satisfiable. The
answers and error bodies stay the routes' own; this only makes the common
case cheap.
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
from email.utils import formatdate

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from artfs import names
from artfs.errors import Corrupt, InvalidInput, NotFound
from artfs.server.registry import Registry

__all__ = ["PIECE", "BlobReads", "blob_headers", "single_range"]

#: Bytes read and sent at once: a range of up to this size is one read and one
#: send, and longer responses go in pieces of this size, which also bounds the
#: memory one download holds.
PIECE = 1 << 20

_BLOB_PATH = re.compile(r"/api/v1/projects/([^/]+)/blobs/([0-9a-f]{64})")
_RANGE = re.compile(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", re.IGNORECASE)


def blob_headers(digest: str) -> dict[str, str]:
    """What every blob response says: the digest is a strong ETag, and never changes."""
    return {"ETag": f'"{digest}"', "Cache-Control": "public, max-age=31536000, immutable"}


def single_range(header: str, size: int) -> tuple[int, int] | None:
    """The ``[start, end)`` a ``Range`` header of one satisfiable range asks for.

    ``None`` for anything else; ``FileResponse`` then gives the answer (416,
    400, multipart, or the whole blob), so the two never disagree. Parsed as
    ``FileResponse`` does: an end past the blob is cut to the blob.
    """
    match = _RANGE.fullmatch(header)
    if match is None:
        return None
    first, last = match.groups()
    if first:
        start = int(first)
        end = min(int(last) + 1, size) if last else size
    elif last:
        start, end = max(size - int(last), 0), size
    else:
        return None
    if not 0 <= start < end:
        return None
    return start, end


class _Reader:
    """``preadv`` from the page cache on the event loop, the rest in a worker thread."""

    def __init__(self) -> None:
        self._nowait = hasattr(os, "RWF_NOWAIT")

    async def read(self, fd: int, offset: int, size: int) -> bytearray:
        buffer = bytearray(size)
        done = self._read_cached(fd, buffer, offset)
        if done < size:
            await anyio.to_thread.run_sync(
                _read_fully, fd, memoryview(buffer)[done:], offset + done
            )
        return buffer

    def _read_cached(self, fd: int, buffer: bytearray, offset: int) -> int:
        if not self._nowait:
            return 0
        try:
            return os.preadv(fd, [buffer], offset, os.RWF_NOWAIT)
        except BlockingIOError:
            return 0
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                raise
            self._nowait = False  # a file system without it: every read goes to a thread
            return 0


def _read_fully(fd: int, buffer: memoryview, offset: int) -> None:
    while buffer:
        count = os.preadv(fd, [buffer], offset)
        if count == 0:
            raise Corrupt(f"blob file ended {len(buffer)} bytes early")
        buffer, offset = buffer[count:], offset + count


class BlobReads:
    """ASGI middleware answering successful blob reads itself (see the module doc)."""

    def __init__(self, app: ASGIApp, registry: Registry) -> None:
        self.app = app
        self.registry = registry
        self._reader = _Reader()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = None
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            match = _BLOB_PATH.fullmatch(scope["path"])
        fd = await self._open(match.group(1), match.group(2)) if match else None
        answered = False
        if match and fd is not None:
            try:
                answered = await self._answer(scope, receive, send, fd, match.group(2))
            finally:
                os.close(fd)
        if not answered:
            await self.app(scope, receive, send)

    async def _open(self, project: str, digest: str) -> int | None:
        """The blob's file, opened, if this project may read it and it is there."""
        try:
            names.check_name(project)
        except InvalidInput:
            return None
        registry = self.registry
        if not registry.blob_known_visible(project, digest) and not (
            await anyio.to_thread.run_sync(registry.blob_visible, project, digest)
        ):
            return None
        try:
            path = registry.store.local_path(digest)
            if path is None:
                return None
            return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except (NotFound, FileNotFoundError):  # never stored, or collected since
            return None

    async def _answer(
        self, scope: Scope, receive: Receive, send: Send, fd: int, digest: str
    ) -> bool:
        """Send the blob, or the range asked for; ``False`` (and nothing sent) to decline."""
        stat = os.fstat(fd)
        start, end = 0, stat.st_size
        headers = [
            (b"content-type", b"application/octet-stream"),
            (b"accept-ranges", b"bytes"),
            *(
                (name.lower().encode(), value.encode())
                for name, value in blob_headers(digest).items()
            ),
            (b"last-modified", formatdate(stat.st_mtime, usegmt=True).encode()),
        ]
        asked = _header(scope, b"range")
        if asked is not None:
            wanted = single_range(asked.decode("latin-1"), stat.st_size)
            if wanted is None or _header(scope, b"if-range") is not None:
                return False
            start, end = wanted
            headers.append((b"content-range", f"bytes {start}-{end - 1}/{stat.st_size}".encode()))
        headers.append((b"content-length", str(end - start).encode()))
        status = 200 if asked is None else 206
        await send({"type": "http.response.start", "status": status, "headers": headers})
        if scope["method"] == "HEAD":
            await send({"type": "http.response.body", "body": b""})
        elif end - start <= PIECE:
            body = await self._reader.read(fd, start, end - start)
            await send({"type": "http.response.body", "body": body})
        else:
            await self._stream(receive, send, fd, start, end)
        return True

    async def _stream(self, receive: Receive, send: Send, fd: int, start: int, end: int) -> None:
        """Send ``[start, end)`` piece by piece, stopping early if the client goes away.

        Pieces, not one buffer: 1 MiB at a time also moves a long range faster
        (an 8 MiB buffer halved the rate of 8 MiB ranges). uvicorn's ``send``
        returns quietly once the client is gone (ASGI 2.3), so a watcher on
        ``receive`` is what ends a download nobody reads any more.
        """
        gone = asyncio.Event()

        async def watch() -> None:
            message: Message = await receive()
            while message["type"] != "http.disconnect":
                message = await receive()
            gone.set()

        watcher = asyncio.create_task(watch())
        try:
            offset = start
            while offset < end and not gone.is_set():
                body = await self._reader.read(fd, offset, min(PIECE, end - offset))
                offset += len(body)
                await send({"type": "http.response.body", "body": body, "more_body": offset < end})
        finally:
            watcher.cancel()


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            found: bytes = value
            return found
    return None
