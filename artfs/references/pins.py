"""A reference's *pin*: what the source said about an object when it was logged without
a checksum (ETag, S3 version id, mtime), kept in the URI's fragment.

A fragment is never sent to a server, so the pinned URI still names the object,
and keeping the pin inside the URI means every place that carries a reference
(the manifest, ``stage --from``, drafts, ``user.artfs.uri``) carries its pin too, and
the version digest (which hashes a checksum-less reference by its URI) changes
when the source says the object changed. A URI given by the user may therefore
not have a fragment of its own.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

__all__ = ["Pin", "pin_uri", "split_pin"]

_FIELDS = ("etag", "version_id", "mtime_ns")


@dataclass(frozen=True)
class Pin:
    etag: str | None = None
    version_id: str | None = None
    mtime_ns: int | None = None

    def __bool__(self) -> bool:
        return any(getattr(self, name) is not None for name in _FIELDS)


def pin_uri(uri: str, pin: Pin) -> str:
    """``uri`` with ``pin`` as its fragment (``uri`` itself if the pin is empty)."""
    if not pin:
        return uri
    fields = [(name, str(getattr(pin, name))) for name in _FIELDS if getattr(pin, name) is not None]
    return f"{uri}#{urllib.parse.urlencode(fields)}"


def split_pin(uri: str) -> tuple[str, Pin]:
    """The object's URI and the pin recorded with it (empty if none)."""
    base, _, fragment = uri.partition("#")
    fields = dict(urllib.parse.parse_qsl(fragment))
    mtime = fields.get("mtime_ns")
    return base, Pin(
        etag=fields.get("etag"),
        version_id=fields.get("version_id"),
        mtime_ns=int(mtime) if mtime is not None and mtime.isdigit() else None,
    )
