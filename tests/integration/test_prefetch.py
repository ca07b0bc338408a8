"""``artfs prefetch`` and ``LoggedArtifact.prefetch`` warm the cache a mount reads.

docs/design.md, "Warming the cache": after a prefetch, a fresh mount of the same
cache reads every byte with the registry stopped.
"""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import pytest

import artfs
from artfs.cache.ondisk import chunk_places
from artfs.errors import InvalidInput
from tests.integration.trees import push_tree
from tests.support.mount import artfs as run_artfs
from tests.support.mount import mounted
from tests.support.polling import wait_until
from tests.support.registry import RegistryProcess

MiB = 1 << 20


def test_prefetch_then_read_everything_with_the_registry_stopped(
    registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    rng = random.Random(8)
    files = {
        "model.bin": rng.randbytes(5 * MiB + 17),
        "config.json": b'{"layers": 4}',
        "data/a.bin": rng.randbytes(MiB + 1),
        "data/b.bin": rng.randbytes(300_000),
    }
    push_tree(registry.url, name, tmp_path / "src", files)
    cache = tmp_path / "cache"
    bad = run_artfs(
        "--registry", registry.url, "prefetch", name, "nowhere", "--cache-dir", str(cache)
    )
    assert bad.returncode != 0
    assert "nowhere" in bad.stderr
    done = run_artfs(
        "--registry", registry.url, "prefetch", f"{name}:v1", "--cache-dir", str(cache)
    )
    assert done.returncode == 0, done.stderr
    assert f"{name}:v1" in done.stderr
    seen = len(registry.requests_seen())
    registry.stop()
    with mounted(tmp_path / "mnt", registry.url, cache, "--offline") as mount:
        version = mount.path / name / "v1"
        for path, data in files.items():
            assert (version / path).read_bytes() == data, path
    assert len(registry.requests_seen()) == seen


def test_sdk_prefetch_of_some_paths_fills_only_those(
    shared_registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    rng = random.Random(9)
    files = {
        "keep/a.bin": rng.randbytes(2 * MiB),
        "keep/b.bin": b"b",
        "skip.bin": rng.randbytes(MiB),
    }
    push_tree(shared_registry.url, name, tmp_path / "src", files)
    with artfs.Client(url=shared_registry.url, cache_dir=tmp_path / "cache") as client:
        logged = client.get_artifact(name)
        with pytest.raises(InvalidInput):
            logged.prefetch(["absent"])
        assert logged.prefetch(["keep/"], progress=False) == 2 * MiB + 1
        cache = client.cache
        assert cache is not None
        digests = {path: str(asset.digest) for path, asset in logged.manifest.items()}
        for path in ("keep/a.bin", "keep/b.bin"):
            layout = cache.layout(digests[path], len(files[path]))
            assert layout is not None
            assert not cache.missing(layout, range(layout.chunk_count))
        skipped = cache.layout(digests["skip.bin"], MiB)
        assert skipped is None or cache.missing(skipped, range(1))


def test_background_prefetch_returns_at_once_and_fills_the_cache(
    shared_registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    data = random.Random(10).randbytes(3 * MiB)
    push_tree(shared_registry.url, name, tmp_path / "src", {"w.bin": data})
    cache = tmp_path / "cache"
    started = run_artfs(
        "--registry", shared_registry.url, "prefetch", name, "--background", "--cache-dir",
        str(cache),
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    pid = int(started.stdout.strip())
    digest = hashlib.sha256(data).hexdigest()
    wait_until(
        lambda: {i for (d, i) in chunk_places(cache) if d == digest} == {0, 1, 2},
        "the background prefetch to cache every chunk",
        timeout=60,
    )
    wait_until(lambda: not _alive(pid), "the background prefetch to exit", timeout=60)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
