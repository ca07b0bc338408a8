"""References: files of a version whose bytes stay at a URI (``file://``, ``http(s)://``,
``s3://``), read from there and verified against what was recorded when they were logged.

At log time a reference is described once (``describe``): a directory or an S3 prefix
expands to one entry per object; with ``checksum=True`` each object is streamed once
and its sha256 recorded as the entry's digest, with ``checksum=False`` only what the
source offers (ETag, S3 version id, mtime) is recorded, as the URI's *pin* (``pins``).
A reader (``download``, the mount's ``ReferenceSource``) opens the URI through an
``ObjectStore`` (``stores``) and refuses bytes that differ from the record:
``SourceChanged``, naming the file. docs/design.md, "References", says what is
verified how for each scheme.
"""

from __future__ import annotations

from artfs.references.describe import DEFAULT_MAX_OBJECTS, Described, describe
from artfs.references.pins import Pin, pin_uri, split_pin
from artfs.references.reading import ReferenceRead, hash_reference, open_reference
from artfs.references.stores import ObjectStore, RemoteObject, store_for

__all__ = [
    "DEFAULT_MAX_OBJECTS",
    "Described",
    "ObjectStore",
    "Pin",
    "ReferenceRead",
    "RemoteObject",
    "describe",
    "hash_reference",
    "open_reference",
    "pin_uri",
    "split_pin",
    "store_for",
]
