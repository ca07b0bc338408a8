"""One cache per machine (docs/design.md, "The cache"): SDK pulls and mounts read what the
other fetched.

Each test fetches once, then deletes the blobs from the registry's own disk, so
any later success can only have come from the local cache.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import artfs
from artfs.cache.externals import ExternalCopies
from artfs.cache.ondisk import cached_chunks, chunk_places
from tests.integration.trees import push_tree
from tests.support.mount import mounted, write_chunk
from tests.support.registry import RegistryProcess

MiB = 1 << 20


def _push_tree(url: str, name: str, source: Path) -> dict[str, bytes]:
    rng = random.Random(9)
    files = {"big.bin": rng.randbytes(2 * MiB + 3), "small.txt": b"small", "empty": b""}
    push_tree(url, name, source, files)
    return files


def _drop_server_blobs(registry: RegistryProcess) -> None:
    blobs = [p for p in (registry.data_dir / "blobs" / "sha256").rglob("*") if p.is_file()]
    assert blobs
    for blob in blobs:
        blob.unlink()


def _pull(url: str, name: str, cache: Path, dest: Path) -> None:
    with artfs.Client(url=url, cache_dir=cache) as client:
        client.get_artifact(name).download(dest)


def _read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_a_second_pull_comes_from_the_cache(
    registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    (tmp_path / "src").mkdir()
    files = _push_tree(registry.url, name, tmp_path / "src")
    cache = tmp_path / "cache"
    _pull(registry.url, name, cache, tmp_path / "first")
    _drop_server_blobs(registry)
    _pull(registry.url, name, cache, tmp_path / "second")
    assert _read_tree(tmp_path / "second") == files


def test_a_pull_fills_the_cache_the_mount_reads(
    registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    (tmp_path / "src").mkdir()
    files = _push_tree(registry.url, name, tmp_path / "src")
    cache = tmp_path / "cache"
    _pull(registry.url, name, cache, tmp_path / "pulled")
    _drop_server_blobs(registry)
    with mounted(tmp_path / "mnt", registry.url, cache) as mount:
        assert _read_tree(mount.path / name / "v1") == files


def test_what_a_mount_read_a_pull_needs_not_fetch(
    registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    (tmp_path / "src").mkdir()
    files = _push_tree(registry.url, name, tmp_path / "src")
    cache = tmp_path / "cache"
    with mounted(tmp_path / "mnt", registry.url, cache) as mount:
        assert _read_tree(mount.path / name / "v1") == files
    _drop_server_blobs(registry)
    _pull(registry.url, name, cache, tmp_path / "pulled")
    assert _read_tree(tmp_path / "pulled") == files


def test_a_pull_writes_nothing_twice(registry: RegistryProcess, tmp_path: Path, name: str) -> None:
    (tmp_path / "src").mkdir()
    _push_tree(registry.url, name, tmp_path / "src")
    cache = tmp_path / "cache"
    _pull(registry.url, name, cache, tmp_path / "pulled")
    # The pulled files are the cache's copies: no chunks, only small records.
    assert cached_chunks(cache) == {}
    assert len(ExternalCopies(cache)) == 2


def test_an_edited_pulled_copy_is_never_served(
    registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    (tmp_path / "src").mkdir()
    files = _push_tree(registry.url, name, tmp_path / "src")
    cache = tmp_path / "cache"
    _pull(registry.url, name, cache, tmp_path / "first")
    # The user edits their copy in place and even puts its mtime back.
    edited = tmp_path / "first" / "big.bin"
    stat = edited.stat()
    with open(edited, "r+b") as f:
        f.seek(MiB + 5)
        f.write(b"EDITED")
    os.utime(edited, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    _pull(registry.url, name, cache, tmp_path / "second")
    assert _read_tree(tmp_path / "second") == files
    with mounted(tmp_path / "mnt", registry.url, cache) as mount:
        assert _read_tree(mount.path / name / "v1") == files


def test_a_corrupt_cached_chunk_is_fetched_again_by_a_pull(
    registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    (tmp_path / "src").mkdir()
    files = _push_tree(registry.url, name, tmp_path / "src")
    cache = tmp_path / "cache"
    with mounted(tmp_path / "mnt", registry.url, cache) as mount:
        assert _read_tree(mount.path / name / "v1") == files
    corrupted = 0
    for place in chunk_places(cache).values():
        if place.size == MiB:
            write_chunk(place, b"\0" * MiB)
            corrupted += 1
    assert corrupted == 2
    _pull(registry.url, name, cache, tmp_path / "second")
    assert _read_tree(tmp_path / "second") == files
