"""``artfs mount --trace`` records what readers asked for; ``artfs prefetch --trace``
replays it into another cache (docs/design.md, "Warming the cache")."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

from artfs.cache.ondisk import chunk_places
from artfs.vfs.trace import read_trace
from tests.integration.trees import push_tree
from tests.support.mount import artfs as run_artfs
from tests.support.mount import mounted
from tests.support.registry import RegistryProcess

MiB = 1 << 20


def test_a_trace_recorded_through_a_mount_replays_into_an_empty_cache(
    shared_registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    rng = random.Random(21)
    files = {"big.bin": rng.randbytes(8 * MiB), "streamed.bin": rng.randbytes(3 * MiB + 5)}
    push_tree(shared_registry.url, name, tmp_path / "src", files)
    digests = {path: hashlib.sha256(data).hexdigest() for path, data in files.items()}
    trace = tmp_path / "run.trace"
    with mounted(
        tmp_path / "mnt", shared_registry.url, tmp_path / "cache", "--trace", str(trace)
    ) as mount:
        version = mount.path / name / "v1"
        fd = os.open(version / "big.bin", os.O_RDONLY)
        try:
            assert os.pread(fd, 4096, 6 * MiB + 8192) == files["big.bin"][6 * MiB + 8192 :][:4096]
            assert (version / "streamed.bin").read_bytes() == files["streamed.bin"]
            assert os.pread(fd, 4096, 2 * MiB) == files["big.bin"][2 * MiB : 2 * MiB + 4096]
        finally:
            os.close(fd)
    ranges = read_trace(trace)
    assert [(r.path, r.version) for r in ranges] == [
        ("big.bin", "v1"),
        ("streamed.bin", "v1"),  # one range: a sequential read extends its line
        ("big.bin", "v1"),
    ]
    assert ranges[0].offset == 6 * MiB + 8192
    assert ranges[1].offset == 0
    assert ranges[1].length == len(files["streamed.bin"])
    assert ranges[2].offset == 2 * MiB
    assert all(r.digest == digests[r.path] for r in ranges)

    fresh = tmp_path / "fresh-cache"
    done = run_artfs(
        "--registry", shared_registry.url, "prefetch", "--trace", str(trace), "--cache-dir",
        str(fresh),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    cached = chunk_places(fresh)
    big = {index for (digest, index) in cached if digest == digests["big.bin"]}
    assert big == {6, 2}  # the chunks the job touched, nothing else
    streamed = {index for (digest, index) in cached if digest == digests["streamed.bin"]}
    assert streamed == {0, 1, 2, 3}
    assert run_artfs("prefetch").returncode != 0  # neither a version nor a trace
