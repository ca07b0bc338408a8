"""What ``Artifact.add_reference`` records: one entry per object at or below a URI.

A directory (``file://``) or a prefix (``s3://``) expands to its objects, each
named by its path below the URI, up to ``max_objects``: more is an error and
nothing is added. With ``checksum=True`` each object is streamed once and its
sha256 recorded; with ``checksum=False`` the URI is pinned with what the
source offers instead.
"""

from __future__ import annotations

import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import PurePosixPath

from artfs.errors import InvalidInput, NotFound
from artfs.references.pins import Pin, pin_uri
from artfs.references.reading import ReferenceRead, hash_reference
from artfs.references.stores import RemoteObject, store_for

__all__ = ["DEFAULT_MAX_OBJECTS", "Described", "describe"]

#: Objects a directory or prefix may expand to unless the caller allows more.
DEFAULT_MAX_OBJECTS = 10_000


@dataclass(frozen=True)
class Described:
    """One entry to record: where it goes below the reference's name, and what it is."""

    #: Its path below the URI given, or for a single object its file name.
    relative: str
    uri: str
    size: int
    digest: str | None
    #: Whether the URI was a directory or prefix (else ``relative`` is only a default).
    expanded: bool


def _check_uri(uri: str) -> None:
    parsed = urllib.parse.urlparse(uri)
    store_for(uri)  # the scheme
    if parsed.fragment or uri.endswith("#"):
        raise InvalidInput(
            f"reference {uri!r}: a URI with a fragment (#…) cannot be recorded; "
            "artfs keeps what the source says of the object there"
        )
    if parsed.scheme in ("http", "https", "s3", "gs", "az") and not parsed.netloc:
        raise InvalidInput(f"reference {uri!r}: names no host or bucket")


def _relative(root: str, found: RemoteObject) -> str:
    """``found``'s path below ``root``, both URIs of one store."""
    if root.startswith(("s3://", "gs://", "az://")):  # keys are not percent-encoded in these URIs
        prefix = root.rstrip("/") + "/"
        return found.uri.removeprefix(prefix) if root.count("/") > 2 else found.uri.split("/", 3)[3]
    base = urllib.parse.unquote(urllib.parse.urlparse(root).path).rstrip("/")
    path = urllib.parse.unquote(urllib.parse.urlparse(found.uri).path)
    return str(PurePosixPath(path).relative_to(base or "/"))


def describe(
    uri: str,
    *,
    checksum: bool,
    max_objects: int | None,
    workers: int = 8,
) -> list[Described]:
    """The entries ``uri`` stands for; a single object's ``relative`` is its file name."""
    _check_uri(uri)
    limit = DEFAULT_MAX_OBJECTS if max_objects is None else max_objects
    if limit < 1:
        raise InvalidInput(f"max_objects must be at least 1, not {max_objects}")
    store = store_for(uri)
    listed = store.list(uri, limit)
    if listed is None:
        found = store.stat(uri, Pin())
        name = PurePosixPath(urllib.parse.unquote(urllib.parse.urlparse(uri).path)).name
        objects = [(name or urllib.parse.urlparse(uri).netloc, found, False)]
    else:
        if len(listed) > limit:
            raise InvalidInput(
                f"reference {uri!r} holds more than {limit} objects; pass a larger "
                "max_objects (nothing was added)"
            )
        if not listed:
            raise NotFound(f"reference {uri!r}: no objects at or below it")
        objects = [(_relative(uri, found), found, True) for found in listed]

    # Hashing is reading: several objects at once, as a download would.
    def one(item: tuple[str, RemoteObject, bool]) -> Described:
        return _describe_one(*item, checksum=checksum)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, objects))


def _describe_one(relative: str, found: RemoteObject, expanded: bool, checksum: bool) -> Described:
    uri = pin_uri(found.uri, found.pin(checksum=checksum))
    digest = None
    if checksum:
        digest = hash_reference(ReferenceRead(relative, uri, found.size, None)).digest
    return Described(relative, uri, found.size, digest, expanded)
