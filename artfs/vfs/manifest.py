"""``ManifestIndex``: a committed version's files as a directory tree, for fast lookups.

Built from the registry's columnar manifest (paths in sorted order with their
sizes and digests) without walking it: a path lookup is one dict probe, and a
directory's children are found on first use by binary search — every path below
``dir/`` is one contiguous run of the sorted list, and each subdirectory in it
is skipped over with one more search. A fresh mount of a 100,000-file version
thus answers its first lookup without indexing 100,000 entries first.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass

from artfs.client.models import FileRecord, Manifest

__all__ = ["ManifestFile", "ManifestIndex"]

# The code point right after "/": the first string above every "prefix/…".
_AFTER_SLASH = chr(ord("/") + 1)


@dataclass(frozen=True, slots=True)
class ManifestFile:
    path: str
    size: int
    digest: str | None
    uri: str | None


class ManifestIndex:
    def __init__(
        self,
        paths: list[str],
        sizes: list[int],
        digests: list[str | None],
        uris: dict[int, str] | None = None,
    ) -> None:
        if not len(paths) == len(sizes) == len(digests):
            raise ValueError("manifest columns differ in length")
        self._paths = paths
        self._sizes = sizes
        self._digests = digests
        self._uris = uris or {}
        self._positions = dict(zip(paths, range(len(paths)), strict=True))
        self._children: dict[str, list[tuple[str, bool]]] = {}

    @classmethod
    def from_columns(cls, manifest: Manifest) -> ManifestIndex:
        """From the registry's columnar manifest (``RegistryAPI.manifest``)."""
        return cls(manifest.paths, manifest.sizes, manifest.digests, manifest.uris)

    @classmethod
    def from_entries(cls, entries: Sequence[FileRecord]) -> ManifestIndex:
        """From file entries in any order."""
        ordered = sorted(entries, key=lambda entry: entry.path)
        return cls(
            [entry.path for entry in ordered],
            [entry.size for entry in ordered],
            [entry.digest for entry in ordered],
            {i: entry.uri for i, entry in enumerate(ordered) if entry.uri},
        )

    def __len__(self) -> int:
        return len(self._paths)

    def file(self, path: str) -> ManifestFile | None:
        position = self._positions.get(path)
        if position is None:
            return None
        return self.entry_at(position)

    def position(self, path: str) -> int | None:
        """Where a file is in the sorted path order: a tree walk's order, nearly.

        (Exactly, but where a directory's name followed by a character sorting
        below ``/`` names a sibling: ``a.txt`` sorts before ``a/x``.)
        """
        return self._positions.get(path)

    def entry_at(self, position: int) -> ManifestFile:
        return ManifestFile(
            self._paths[position],
            self._sizes[position],
            self._digests[position],
            self._uris.get(position),
        )

    def subtree(self, path: str) -> range:
        """The positions of every file below directory ``path`` ("" the root): one run."""
        if not path:
            return range(len(self._paths))
        start = bisect_left(self._paths, path + "/")
        return range(start, bisect_left(self._paths, path + _AFTER_SLASH, start))

    def files(self) -> list[ManifestFile]:
        return [self.entry_at(position) for position in range(len(self._paths))]

    def is_dir(self, path: str) -> bool:
        if not path:
            return True
        prefix = path + "/"
        position = bisect_left(self._paths, prefix)
        return position < len(self._paths) and self._paths[position].startswith(prefix)

    def children(self, path: str) -> list[tuple[str, bool]]:
        """A directory's entries as (name, is_dir), sorted by name; [] if it is none."""
        found = self._children.get(path)
        if found is None:
            found = self._children[path] = self._list(path)
        return found

    def _list(self, path: str) -> list[tuple[str, bool]]:
        paths = self._paths
        prefix = path + "/" if path else ""
        position = bisect_left(paths, prefix)
        end = len(paths) if not prefix else bisect_left(paths, path + _AFTER_SLASH, position)
        found: list[tuple[str, bool]] = []
        while position < end:
            rest = paths[position][len(prefix) :]
            name, slash, _ = rest.partition("/")
            if slash:
                found.append((name, True))
                # Jump past every path below this subdirectory.
                position = bisect_left(paths, prefix + name + _AFTER_SLASH, position, end)
            else:
                found.append((name, False))
                position += 1
        found.sort()
        return found

    @staticmethod
    def child_path(parent: str, name: str) -> str:
        return f"{parent}/{name}" if parent else name
