"""Blob GETs and HEADs answered ahead of FastAPI: the registry's hot path.

Every mount read ends here, often 64 at a time, so a successful blob read
skips what FastAPI would spend on it: routing through every route, the
dependency injection, the sync route's and ``FileResponse``'s worker-thread
handoffs (about six per response). What is left is a regex, a dictionary
lookup for the visibility check, ``open`` and ``fstat``, and a send straight
from a mapping of the blob file when the page cache holds the range (checked
with ``mincore``, so the event loop never waits for a disk); whatever is not
cached is read by a worker thread, so a cold blob does not stall the other
requests.

Anything else goes on to the FastAPI routes unchanged, which answer it as
before: a project or digest that is not valid, a digest the project does not
(or not yet knowingly) reference, a blob missing on disk, ``If-Range``,
several ranges, and a ``Range`` that is malformed or not satisfiable. The
answers and error bodies stay the routes' own; this only makes the common
case cheap.
"""

from __future__ import annotations

import asyncio
import ctypes
import mmap
import os
import re
from email.utils import formatdate

import anyio
from cachetools import TTLCache
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from artfs import names
from artfs.errors import Corrupt, InvalidInput, NotFound
from artfs.server.registry import Registry

__all__ = ["PIECE", "BlobReadMiddleware", "absurd_range", "blob_headers", "single_range"]

#: Bytes read and sent at once: a range of up to this size is one read and one
#: send, and longer responses go in pieces of this size, which also bounds the
#: memory one download holds.
PIECE = 1 << 20
#: Blob files kept mapped at once, and for how long after their first request.
MAPPINGS = 1024
MAPPING_TTL = 30.0

_BLOB_PATH = re.compile(r"/api/v1/projects/([^/]+)/blobs/([0-9a-f]{64})")
_RANGE = re.compile(r"\s*bytes\s*=\s*([0-9]{0,19})\s*-\s*([0-9]{0,19})\s*", re.IGNORECASE)
#: A byte position this long is past any file, and int() refuses 4,301 digits and more.
_HUGE_NUMBER = re.compile(r"[0-9]{20}")


def absurd_range(header: str) -> bool:
    """Whether a ``Range`` names a position no file has (``FileResponse`` would fail on it)."""
    return _HUGE_NUMBER.search(header) is not None


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


class _Mapping:
    """A blob file mapped read-only, and which of its pages the page cache holds.

    Shared and read-only, so a mapping costs no commit charge however large the
    blob (a private writable one of a 100 GiB blob is refused with ENOMEM).
    Never closed explicitly: a response may still hold a view of it, and the
    mapping goes when the last view does. While it lives, its inode cannot be
    reused, so the inode number is a safe key for it.
    """

    def __init__(self, fd: int, size: int) -> None:
        self.map = mmap.mmap(fd, size, access=mmap.ACCESS_READ)
        self._address = _buffer_address(self.map)
        self.view = memoryview(self.map)

    def resident(self, start: int, end: int) -> bool:
        """Whether every page of ``[start, end)`` is in the page cache (so sending never waits)."""
        first = start - start % mmap.PAGESIZE
        pages = bytearray(-(-(end - first) // mmap.PAGESIZE))
        vector = (ctypes.c_ubyte * len(pages)).from_buffer(pages)
        if _mincore(self._address + first, end - first, vector) != 0:
            return False
        return 0 not in pages


_libc = ctypes.CDLL(None, use_errno=True)
_mincore = _libc.mincore
_mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_ubyte)]
_mincore.restype = ctypes.c_int


class _PyBuffer(ctypes.Structure):
    _fields_ = [
        ("buf", ctypes.c_void_p),
        ("obj", ctypes.py_object),
        ("len", ctypes.c_ssize_t),
        ("itemsize", ctypes.c_ssize_t),
        ("readonly", ctypes.c_int),
        ("ndim", ctypes.c_int),
        ("format", ctypes.c_char_p),
        ("shape", ctypes.c_void_p),
        ("strides", ctypes.c_void_p),
        ("suboffsets", ctypes.c_void_p),
        ("internal", ctypes.c_void_p),
    ]


def _buffer_address(mapped: mmap.mmap) -> int:
    """Where ``mapped`` lies in memory (ctypes' ``from_buffer`` wants a writable buffer).

    The address stays valid while the mmap lives: it is never resized or closed.
    """
    view = _PyBuffer()
    if ctypes.pythonapi.PyObject_GetBuffer(ctypes.py_object(mapped), ctypes.byref(view), 0) != 0:
        raise OSError("cannot take the address of a blob mapping")
    try:
        return int(view.buf or 0)
    finally:
        ctypes.pythonapi.PyBuffer_Release(ctypes.byref(view))


class _Reader:
    """Bytes of blob files for the event loop, which must never wait for a disk.

    Pieces the page cache holds are sent straight from a shared mapping of the
    blob file: no copy into a buffer of ours, and no buffer to allocate and
    clear, the two largest costs of a send otherwise. Blob files never
    change once written, so a mapping is kept (by inode) for ``MAPPING_TTL``
    seconds and serves every request for that blob meanwhile; a file deleted by
    gc stops taking space once its mapping expires. Anything not cached is read
    into a fresh buffer by a worker thread.
    """

    def __init__(self) -> None:
        self._maps: TTLCache[tuple[int, int], _Mapping] = TTLCache(
            maxsize=MAPPINGS, ttl=MAPPING_TTL
        )

    async def read(
        self, fd: int, stat: os.stat_result, offset: int, size: int
    ) -> memoryview | bytearray:
        if size <= 0:
            return bytearray()
        mapping = self._mapping(fd, stat)
        if mapping is not None and mapping.resident(offset, offset + size):
            return mapping.view[offset : offset + size]
        buffer = bytearray(size)
        await anyio.to_thread.run_sync(_read_fully, fd, memoryview(buffer), offset)
        return buffer

    def _mapping(self, fd: int, stat: os.stat_result) -> _Mapping | None:
        key = (stat.st_dev, stat.st_ino)
        mapping = self._maps.get(key)
        if mapping is None:
            try:
                mapping = self._maps[key] = _Mapping(fd, stat.st_size)
            except OSError:
                return None  # out of address space or mappings: the thread path still works
        return mapping


def _read_fully(fd: int, buffer: memoryview, offset: int) -> None:
    while buffer:
        count = os.preadv(fd, [buffer], offset)
        if count == 0:
            raise Corrupt(f"blob file ended {len(buffer)} bytes early")
        buffer, offset = buffer[count:], offset + count


class BlobReadMiddleware:
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
        except (NotFound, Corrupt, FileNotFoundError):  # not stored, collected, quarantined
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
            body = await self._reader.read(fd, stat, start, end - start)
            await send({"type": "http.response.body", "body": body})
        else:
            await self._stream(receive, send, fd, stat, start, end)
        return True

    async def _stream(
        self, receive: Receive, send: Send, fd: int, stat: os.stat_result, start: int, end: int
    ) -> None:
        """Send ``[start, end)`` piece by piece, stopping early if the client goes away.

        Pieces, not one buffer: 1 MiB at a time also moves a long range faster
        than one buffer of the whole range would. uvicorn's ``send``
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
                body = await self._reader.read(fd, stat, offset, min(PIECE, end - offset))
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
