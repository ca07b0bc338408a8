"""``ManifestIndex``: lookups and directory listings agree with a plain walk of the paths."""

from __future__ import annotations

import random

from artfs.client.models import FileRecord, Manifest
from artfs.vfs.manifest import ManifestIndex

TRICKY = [
    "a.txt",
    "a-b/c",
    "a/b!",
    "a/b.c/d",
    "a/b/c/d/e.bin",
    "a/bb",
    "a0/x",
    "é/ü",
    "z",
    "Z/upper",
    "dir with space/file",
]


def expected_children(paths: list[str], directory: str) -> list[tuple[str, bool]]:
    prefix = directory + "/" if directory else ""
    found: dict[str, bool] = {}
    for path in paths:
        if path.startswith(prefix):
            name, slash, _ = path[len(prefix) :].partition("/")
            found[name] = bool(slash)
    return sorted(found.items())


def index_of(paths: list[str]) -> ManifestIndex:
    return ManifestIndex.from_entries(
        [FileRecord(path, len(path), f"{i:064x}") for i, path in enumerate(paths)]
    )


def all_dirs(paths: list[str]) -> set[str]:
    dirs = {""}
    for path in paths:
        parts = path.split("/")
        dirs.update("/".join(parts[:depth]) for depth in range(1, len(parts)))
    return dirs


def test_tricky_names_list_like_a_walk() -> None:
    index = index_of(TRICKY)
    for directory in all_dirs(TRICKY):
        assert index.is_dir(directory), directory
        assert index.children(directory) == expected_children(TRICKY, directory), directory
    for path in TRICKY:
        entry = index.file(path)
        assert entry is not None
        assert entry.size == len(path)
        assert not index.is_dir(path)
    assert index.file("a/b/c") is None
    assert index.is_dir("a/b/c")
    assert index.file("missing") is None
    assert not index.is_dir("missing")
    assert not index.is_dir("a/b/c/d/e")  # a prefix of a name is no directory
    assert index.children("missing") == []


def test_random_trees_list_like_a_walk() -> None:
    rng = random.Random(7)
    alphabet = ["a", "b", "a.b", "a-", "b0", "ä"]
    paths = sorted(
        {"/".join(rng.choice(alphabet) for _ in range(rng.randint(1, 4))) for _ in range(400)}
    )
    # A name used as a file cannot also be a directory.
    paths = [p for p in paths if not any(q.startswith(p + "/") for q in paths)]
    index = index_of(paths)
    for directory in all_dirs(paths):
        assert index.children(directory) == expected_children(paths, directory), directory
    assert [entry.path for entry in index.files()] == sorted(paths)


def test_columns_from_the_registry_keep_remote_uris() -> None:
    index = ManifestIndex.from_columns(
        Manifest.from_json(
            {
                "version": "v1",
                "paths": ["a", "b"],
                "sizes": [1, 2],
                "digests": ["0" * 64, None],
                "uris": {"1": "s3://bucket/b"},
            }
        )
    )
    remote, local = index.file("b"), index.file("a")
    assert remote is not None
    assert remote.uri == "s3://bucket/b"
    assert local is not None
    assert local.uri is None


def test_a_subtree_is_the_run_of_positions_below_a_directory() -> None:
    paths = sorted(TRICKY)
    index = ManifestIndex(paths, [1] * len(paths), [None] * len(paths))
    for directory in ("", "a", "a/b", "a/b.c", "Z", "é", "a0", "none"):
        prefix = directory + "/" if directory else ""
        below = [i for i, path in enumerate(paths) if path.startswith(prefix)]
        assert list(index.subtree(directory)) == below, directory
