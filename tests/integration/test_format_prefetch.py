"""ML files through the mount: the first read starts the plan their format announces."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
from pathlib import Path

import numpy as np

from tests.integration.trees import push_tree
from tests.support.mount import mounted
from tests.support.registry import RegistryProcess

MiB = 1 << 20


def tensor_file() -> tuple[bytes, dict[str, np.ndarray]]:
    from safetensors.numpy import save

    rng = np.random.default_rng(7)
    kinds = ["float64", "float32", "float16", "int8"]
    tensors = {
        f"layer{i:02d}.w": rng.integers(0, 100, 512 * 1024 // np.dtype(kind).itemsize).astype(kind)
        for i, kind in ((i, kinds[i % 4]) for i in range(80))
    }
    # 80 tensors of 512 KiB, 40 chunks. safetensors lays them out by dtype, then
    # name: read by name, they jump about the file.
    return save(tensors), tensors


def requests_for(registry: RegistryProcess, data: bytes, since: int) -> list[str]:
    digest = hashlib.sha256(data).hexdigest()
    seen = registry.requests_seen()[since:]
    return [line for line in seen if digest in line and not line.endswith("/chunks")]


def read_like_mmap(path: Path, offsets: list[int]) -> None:
    """A 4 KiB read at each offset, the kernel's read-ahead off: page faults of an mmap loader."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
        for offset in offsets:
            assert len(os.pread(fd, 4096, offset)) == 4096
    finally:
        os.close(fd)


def test_a_safetensors_file_read_tensor_by_tensor_comes_in_few_large_requests(
    registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    from safetensors import safe_open

    data, tensors = tensor_file()
    # Bytes of no format, read the same way.
    plain = np.random.default_rng(8).bytes(len(data))
    array = np.random.default_rng(10).random((3072, 1024))  # 24 MiB, 24 chunks
    npy = io.BytesIO()
    np.save(npy, array)
    files = {"m.safetensors": data, "plain.bin": plain, "a.npy": npy.getvalue()}
    push_tree(registry.url, name, tmp_path / "src", files)
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + length])
    # In an order of their own, as a model's layers may ask for them.
    names = sorted(tensors)
    random.Random(9).shuffle(names)
    starts = [8 + length + header[k]["data_offsets"][0] for k in names]
    offsets = [0, *(s + inner for s in starts for inner in (0, 256 * 1024))]
    assert offsets[1:] != sorted(offsets[1:])
    with mounted(tmp_path / "mnt", registry.url, tmp_path / "cache") as mount:
        version = mount.path / name / "v1"
        before = len(registry.requests_seen())
        read_like_mmap(version / "plain.bin", offsets)
        unplanned = requests_for(registry, plain, before)

        before = len(registry.requests_seen())
        read_like_mmap(version / "m.safetensors", offsets)
        with safe_open(str(version / "m.safetensors"), framework="numpy") as loaded:
            for key in loaded.keys():  # noqa: SIM118 -- safe_open has no __iter__
                assert np.array_equal(loaded.get_tensor(key), tensors[key])
        planned = requests_for(registry, data, before)
        assert (version / "m.safetensors").read_bytes() == data

        before = len(registry.requests_seen())
        rows = list(range(0, 3072, 64))
        random.Random(11).shuffle(rows)
        read_like_mmap(version / "a.npy", [0, *(128 + row * 8192 for row in rows)])
        loaded_array = np.load(version / "a.npy", mmap_mode="r")
        assert all(np.array_equal(loaded_array[row], array[row]) for row in rows)
        del loaded_array  # its mapping holds the file open, and the mount busy
        assert np.array_equal(np.load(version / "a.npy"), array)
        planned_npy = requests_for(registry, files["a.npy"], before)
    # 40 chunks: the plan fetches them in 8 MiB requests (6 with the header's), and
    # a few faults that outran it fetch their own; without a plan, one a chunk.
    assert len(planned) <= 10, planned
    assert len(unplanned) >= 30, unplanned
    # The .npy file: its header's chunk, then three 8 MiB runs (and a fault or two).
    assert len(planned_npy) <= 9, planned_npy  # 24 without a plan
    print(f"requests: {len(planned)} planned, {len(unplanned)} without, {len(planned_npy)} npy")
