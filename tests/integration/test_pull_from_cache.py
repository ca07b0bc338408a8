"""A pull of a version the machine cache holds makes no request per file (issue 5).

The requests are counted in the registry's access log: a pull of a cached
version asks for the version and its manifest (one page per 10,000 files) and
nothing else, whether the cache got the bytes from an earlier pull or from a
mount's reads. Bytes from the cache are still verified: a damaged chunk or
pulled copy is fetched again, never copied.
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Callable
from pathlib import Path

import artfs
from artfs.cache.ondisk import chunk_places
from tests.integration.trees import push_tree
from tests.support.mount import mounted, read_chunk, write_chunk
from tests.support.registry import RegistryProcess

MiB = 1 << 20
FILES = 300


def _push(url: str, name: str, source: Path) -> dict[str, bytes]:
    rng = random.Random(5)
    files = {f"d{i % 7}/f{i:04d}.bin": rng.randbytes(rng.randrange(0, 3000)) for i in range(FILES)}
    files["big.bin"] = rng.randbytes(2 * MiB + 9)
    push_tree(url, name, source, files)
    return files


def _pull(url: str, name: str, cache: Path, dest: Path) -> None:
    with artfs.Client(url=url, cache_dir=cache) as client:
        client.get_artifact(name).download(dest)


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _requests_during(registry: RegistryProcess, action: Callable[[], None]) -> list[str]:
    before = len(registry.requests_seen())
    action()
    return registry.requests_seen()[before:]


def test_a_pull_of_a_pulled_version_makes_no_request_per_file(
    registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    files = _push(registry.url, name, tmp_path / "src")
    cache = tmp_path / "cache"
    first = _requests_during(registry, lambda: _pull(registry.url, name, cache, tmp_path / "a"))
    # Cold: every blob fetched (small ones in batches).
    assert any("/blobs/" in line or "/blob-batch" in line for line in first)
    second = _requests_during(registry, lambda: _pull(registry.url, name, cache, tmp_path / "b"))
    assert second == [
        f"GET /api/v1/projects/default/artifacts/{name}/versions/latest",
        f"GET /api/v1/projects/default/artifacts/{name}/versions/v1/files?limit=10000",
    ]
    assert _tree(tmp_path / "b") == files


def test_a_pull_of_what_a_mount_read_makes_no_request_per_file(
    registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    files = _push(registry.url, name, tmp_path / "src")
    cache = tmp_path / "cache"
    with mounted(tmp_path / "mnt", registry.url, cache) as mount:
        assert _tree(mount.path / name / "v1") == files
    pulled = _requests_during(registry, lambda: _pull(registry.url, name, cache, tmp_path / "b"))
    assert not [line for line in pulled if "/blobs/" in line]
    assert len(pulled) == 2
    assert _tree(tmp_path / "b") == files


def test_damaged_cached_bytes_are_fetched_again_not_copied(
    registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    files = _push(registry.url, name, tmp_path / "src")
    cache = tmp_path / "cache"
    # Chunks, from a mount's reads: damage one chunk of big.bin and one small file.
    with mounted(tmp_path / "mnt", registry.url, cache) as mount:
        assert _tree(mount.path / name / "v1") == files
    by_digest = {hashlib.sha256(data).hexdigest(): path for path, data in files.items()}
    chunks = chunk_places(cache)
    big_digest = hashlib.sha256(files["big.bin"]).hexdigest()
    big = [key for key in chunks if key == (big_digest, 1)]
    small = [key for key, place in chunks.items() if key[0] != big_digest and place.size]
    damaged = [big[0], small[0]]
    for chunk in damaged:
        data = bytearray(read_chunk(chunks[chunk]))
        data[len(data) // 2] ^= 0xFF
        write_chunk(chunks[chunk], bytes(data))
    pulled = _requests_during(registry, lambda: _pull(registry.url, name, cache, tmp_path / "b"))
    assert _tree(tmp_path / "b") == files
    assert sorted(line for line in pulled if "/blobs/" in line) == sorted(
        f"GET /api/v1/projects/default/blobs/{chunk[0]}" for chunk in damaged
    )
    # The small file just fetched again is now the cache's copy of its blob: the
    # user edits it in place and puts its mtime back.
    edited = tmp_path / "b" / by_digest[small[0][0]]
    info = edited.stat()
    data = bytearray(edited.read_bytes())
    data[0] ^= 0xFF
    edited.write_bytes(bytes(data))
    os.utime(edited, ns=(info.st_atime_ns, info.st_mtime_ns))
    pulled = _requests_during(registry, lambda: _pull(registry.url, name, cache, tmp_path / "c"))
    assert _tree(tmp_path / "c") == files
    assert [line for line in pulled if "/blobs/" in line] == [
        f"GET /api/v1/projects/default/blobs/{small[0][0]}"
    ]
