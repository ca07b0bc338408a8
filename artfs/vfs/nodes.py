"""The tree's building blocks: node kinds, nodes, their attributes, inode numbers."""

from __future__ import annotations

import enum
import hashlib
import stat
from dataclasses import dataclass, field
from pathlib import Path

from artfs.cache.layout import ChunkLayout
from artfs.fetch.readahead import ReadAhead

__all__ = ["ROOT_INODE", "Kind", "Node", "OpenFile", "Stat", "TreeSettings", "inode_for", "ns"]

ROOT_INODE = 1


class Kind(enum.Enum):
    ROOT = "root"
    ARTIFACT = "artifact"
    VERSION = "version"
    DIR = "dir"
    FILE = "file"
    STAGING = "staging"  # an artifact's .staging directory
    STAGED = "staged"  # anything below it: a file, directory or symlink on local disk
    COLLECTIONS = "collections"  # /.collections: the registries of the project's collections
    REGISTRY = "registry"  # /.collections/<registry>
    COLLECTION = "collection"  # /.collections/<registry>/<collection>: members and aliases


@dataclass(frozen=True)
class TreeSettings:
    #: Entry and attribute timeout for listings that can change (artifacts, aliases).
    listing_timeout: float = 1.0
    #: The same for a version id or semver label: fixed unless the version is deleted.
    version_timeout: float = 30.0
    #: The same for everything inside a committed version: it never changes.
    immutable_timeout: float = 86400.0
    #: A read that cannot be served within this many seconds fails (EIO).
    read_timeout: float = 30.0
    uid: int = 0
    gid: int = 0
    #: Where each artifact's .staging lives on local disk; None: a read-only mount.
    staging_root: Path | None = None


@dataclass(eq=False, slots=True)
class Node:
    inode: int
    kind: Kind
    name: str
    key: tuple[str, ...]
    artifact: str = ""
    number: int = 0
    label: str = ""
    path: str = ""
    size: int = 0
    mtime_ns: int = 0
    digest: str | None = None
    uri: str | None = None
    entry_timeout: float = 1.0
    lookups: int = 0
    #: Inode of the VERSION directory this node lies in (its own, for a VERSION).
    root: int = 0
    #: A .staging directory replaced by a fresh one after a commit: empty, unusable.
    retired: bool = False
    #: Below /.collections: the registry (REGISTRY) or ``REGISTRY/COLLECTION`` (a
    #: COLLECTION, a member's VERSION directory and everything in it).
    collection: str = ""

    @property
    def is_dir(self) -> bool:
        return self.kind is not Kind.FILE

    @property
    def mode(self) -> int:
        if self.kind is Kind.FILE:
            return stat.S_IFREG | 0o444
        if self.kind in (Kind.ROOT, Kind.ARTIFACT):
            return stat.S_IFDIR | 0o755
        return stat.S_IFDIR | 0o555


@dataclass(eq=False)
class OpenFile:
    fh: int
    node: Node
    layout: ChunkLayout
    readahead: ReadAhead = field(default_factory=ReadAhead)


def inode_for(key: tuple[str, ...]) -> int:
    digest = hashlib.blake2b("\x00".join(key).encode(), digest_size=8).digest()
    # Positive, 63 bits, never the root's number.
    return max(int.from_bytes(digest, "big") >> 1, ROOT_INODE + 1)


def ns(moment: float) -> int:
    return int(moment * 1e9)


@dataclass(frozen=True)
class Stat:
    """What ``getattr`` reports for a node."""

    mode: int
    size: int
    mtime_ns: int
    atime_ns: int
    ctime_ns: int
    nlink: int
    uid: int
    gid: int
    timeout: float
