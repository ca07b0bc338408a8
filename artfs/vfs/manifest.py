"""``ManifestIndex``: a committed version's files as a directory tree, for O(1) lookups."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["FileEntry", "ManifestIndex"]


@dataclass(frozen=True, slots=True)
class FileEntry:
    path: str
    size: int
    digest: str | None
    uri: str | None


class ManifestIndex:
    """Files by path, and each directory's children (name -> is_dir) in sorted order."""

    def __init__(self, entries: Iterable[dict[str, Any]]) -> None:
        self.files: dict[str, FileEntry] = {}
        children: dict[str, dict[str, bool]] = {"": {}}
        for raw in entries:
            entry = FileEntry(raw["path"], int(raw["size"]), raw.get("digest"), raw.get("uri"))
            self.files[entry.path] = entry
            parts = entry.path.split("/")
            for depth in range(len(parts)):
                parent = "/".join(parts[:depth])
                is_dir = depth < len(parts) - 1
                siblings = children.setdefault(parent, {})
                siblings[parts[depth]] = is_dir
                if is_dir:
                    children.setdefault("/".join(parts[: depth + 1]), {})
        self.dirs: dict[str, list[tuple[str, bool]]] = {
            path: sorted(names.items()) for path, names in children.items()
        }

    def is_dir(self, path: str) -> bool:
        return path in self.dirs

    def child_path(self, parent: str, name: str) -> str:
        return f"{parent}/{name}" if parent else name
