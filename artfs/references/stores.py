"""``ObjectStore``: what a reference needs of the place its bytes live, one per scheme.

A store answers three questions about a URI (without a pin): what the object is
(``stat``), which objects lie below it when it is a directory or a prefix
(``list``), and its bytes ``[start, end)`` (``open``), each answer carrying what the
source says about the object it came from (``RemoteObject``), so a reader can
check the pin on every read. Errors are the domain's: ``NotFound`` for an object
that is not there, ``Transient`` for what is worth a retry, ``InvalidInput`` for a
URI no store can read.
"""

from __future__ import annotations

import os
import stat
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from artfs.client.streams import fill
from artfs.errors import ArtfsError, InvalidInput, LocalError, NotFound
from artfs.references.pins import Pin

__all__ = [
    "SCHEMES",
    "Body",
    "EnvClient",
    "ObjectStore",
    "RemoteObject",
    "StreamBody",
    "listed_prefix",
    "remote_object",
    "split_cloud",
    "store_for",
    "translating",
]

#: The schemes a reference may use.
SCHEMES = ("file", "http", "https", "s3", "gs", "az")


@dataclass(frozen=True)
class RemoteObject:
    """One object as its source describes it."""

    uri: str
    size: int
    etag: str | None = None
    version_id: str | None = None
    mtime_ns: int | None = None

    def pin(self, *, checksum: bool) -> Pin:
        """What to record of it: with a checksum only a version id (which names the
        bytes), without one everything the source offers."""
        if checksum:
            return Pin(version_id=self.version_id)
        return Pin(self.etag, self.version_id, self.mtime_ns)


def remote_object(
    uri: str, size: int, etag: str | None, version_id: str | None, modified: datetime | None
) -> RemoteObject:
    """A cloud object's description, its modification time in whole seconds."""
    mtime_ns = int(modified.timestamp()) * 10**9 if modified is not None else None
    return RemoteObject(uri, size, etag, version_id, mtime_ns)


class Body(Protocol):
    """Bytes being read from a source, and what the source said about their object."""

    found: RemoteObject

    def read_into(self, view: memoryview) -> bool:
        """Fill ``view`` completely; ``False`` if the bytes ended first."""
        ...


class ObjectStore(Protocol):
    def stat(self, uri: str, pin: Pin) -> RemoteObject: ...

    def list(self, uri: str, limit: int) -> list[RemoteObject] | None:
        """The objects at or below ``uri`` if it is a directory or a prefix (at most
        ``limit`` + 1, so a caller sees that there are more), else ``None``."""
        ...

    def open(self, uri: str, pin: Pin, start: int, end: int) -> AbstractContextManager[Body]: ...


class Readable(Protocol):
    def readinto(self, buffer: memoryview, /) -> int | None: ...


def split_cloud(uri: str) -> tuple[str, str]:
    """``scheme://ROOT/PATH`` → (ROOT, PATH): the bucket or container, and the key."""
    scheme, _, rest = uri.partition("://")
    root, _, path = rest.partition("/")
    if not root:
        raise InvalidInput(f"reference {uri!r}: a {scheme}:// URI names a bucket or container")
    return root, path


def listed_prefix(store: ObjectStore, uri: str, key: str) -> str | None:
    """The prefix a cloud key lists (``key/``; all for an empty key), or ``None`` when
    the key names an object."""
    if key and not key.endswith("/"):
        try:
            store.stat(uri, Pin())
        except NotFound:
            pass
        else:
            return None
    return key.rstrip("/") + "/" if key else ""


@contextmanager
def translating(uri: str, error: Callable[[str, Exception], ArtfsError]) -> Iterator[None]:
    """A cloud SDK's exceptions as the domain's (``error``), raised ``from`` them."""
    try:
        yield
    except ArtfsError:
        raise
    except Exception as exc:
        raise error(uri, exc) from exc


C = TypeVar("C")


class EnvClient(Generic[C]):
    """One client of a cloud SDK, made anew when the environment settings it was made
    from change (thread-safe: the SDKs' clients are, their sessions are not)."""

    def __init__(self, names: tuple[str, ...], make: Callable[[list[str | None]], C]) -> None:
        self._names = names
        self._make = make
        self._lock = threading.Lock()
        self._made: tuple[tuple[str | None, ...], C] | None = None

    def get(self) -> C:
        settings = tuple(os.environ.get(name) for name in self._names)
        with self._lock:
            if self._made is None or self._made[0] != settings:
                self._made = (settings, self._make(list(settings)))
            return self._made[1]


class StreamBody:
    """A ``Body`` over a file-like object (a local file, an HTTP or S3 response)."""

    def __init__(self, stream: Readable, found: RemoteObject) -> None:
        self._stream = stream
        self.found = found

    def read_into(self, view: memoryview) -> bool:
        return fill(self._stream, view)


def _local_path(uri: str) -> Path:
    parsed = urllib.parse.urlparse(uri)
    if parsed.netloc not in ("", "localhost"):
        raise InvalidInput(f"reference {uri!r}: a file:// URI must name a local path")
    return Path(urllib.parse.unquote(parsed.path))


class FileStore:
    """``file://``: a local (or network-mounted) file, or a directory's files."""

    def _object(self, uri: str, info: os.stat_result) -> RemoteObject:
        return RemoteObject(uri, info.st_size, mtime_ns=info.st_mtime_ns)

    def stat(self, uri: str, pin: Pin) -> RemoteObject:
        path = _local_path(uri)
        try:
            info = path.stat()
        except FileNotFoundError:
            raise NotFound(f"reference {uri!r}: no such file") from None
        except OSError as exc:
            raise LocalError(exc.errno or 0, f"reference {uri!r}: {exc.strerror}") from exc
        if not stat.S_ISREG(info.st_mode):
            raise NotFound(f"reference {uri!r}: not a regular file")
        return self._object(uri, info)

    def list(self, uri: str, limit: int) -> list[RemoteObject] | None:
        root = _local_path(uri)
        if not root.is_dir():
            return None
        found: list[RemoteObject] = []
        for folder, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(files):
                path = Path(folder) / name
                info = path.stat()
                if stat.S_ISREG(info.st_mode):
                    found.append(self._object(path.as_uri(), info))
                    if len(found) > limit:
                        return found
        return found

    @contextmanager
    def _open(self, uri: str, start: int) -> Iterator[Body]:
        try:
            stream = open(_local_path(uri), "rb")  # noqa: SIM115
        except FileNotFoundError:
            raise NotFound(f"reference {uri!r}: no such file") from None
        with stream:
            # What was opened, not what the path names now: a rename in between is seen.
            found = self._object(uri, os.fstat(stream.fileno()))
            stream.seek(start)
            yield StreamBody(stream, found)

    def open(self, uri: str, pin: Pin, start: int, end: int) -> AbstractContextManager[Body]:
        return self._open(uri, start)


@cache
def _stores() -> dict[str, ObjectStore]:
    """One store per scheme and process: the HTTP and S3 ones keep connection pools."""
    from artfs.references.azure import AzureStore
    from artfs.references.gcs import GcsStore
    from artfs.references.http import HttpStore
    from artfs.references.s3 import S3Store

    http = HttpStore()
    return {
        "file": FileStore(),
        "http": http,
        "https": http,
        "s3": S3Store(),
        "gs": GcsStore(),
        "az": AzureStore(),
    }


def store_for(uri: str) -> ObjectStore:
    scheme = urllib.parse.urlparse(uri).scheme
    if scheme not in SCHEMES:
        raise InvalidInput(f"reference {uri!r}: the scheme must be one of {', '.join(SCHEMES)}")
    return _stores()[scheme]
