"""Directories of small files through the mount: walks batch their fetches, seeks do not."""

from __future__ import annotations

import ctypes
import errno
import hashlib
import mmap
import os
import random
import subprocess
import time
from pathlib import Path

import pytest

import artfs
from artfs.errors import Corrupt
from tests.integration.trees import push_tree
from tests.support.mount import artfs as artfs_cli
from tests.support.mount import mounted
from tests.support.polling import wait_until
from tests.support.registry import RegistryProcess

FILES = 60


def push_small_files(url: str, name: str, root: Path) -> dict[str, bytes]:
    rng = random.Random(11)
    files = {f"shard/f{i:03d}.bin": rng.randbytes(rng.randint(1, 8192)) for i in range(FILES)}
    files["shard/sub/inner.txt"] = b"below"
    files["shard/zz-last.txt"] = b"after the subdirectory"
    push_tree(url, name, root, files)
    return files


def blob_requests(registry: RegistryProcess, since: int) -> list[str]:
    return [
        line
        for line in registry.requests_seen()[since:]
        if "/blobs/" in line or "/blob-batch" in line
    ]


def test_find_xargs_cat_walk_batches_and_reads_every_byte(
    registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    files = push_small_files(registry.url, name, tmp_path / "src")
    with mounted(tmp_path / "mnt", registry.url, tmp_path / "cache") as mount:
        before = len(registry.requests_seen())
        version = mount.path / name / "v1"
        walked = subprocess.run(
            "find . -type f -print0 | sort -z | xargs -0 sha256sum",
            shell=True,
            cwd=version,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        sums = {}
        for line in walked.splitlines():
            digest, path = line.split("  ", 1)
            sums[path] = digest
        assert sums == {f"./{p}": hashlib.sha256(d).hexdigest() for p, d in files.items()}
        requests = blob_requests(registry, before)
        # One request per file would be 62; a walk earns batches of growing size.
        assert len(requests) <= 12, requests
        assert any("/blob-batch" in line for line in requests)


def test_a_walk_runs_on_into_the_next_directories_without_a_request_each(
    registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    rng = random.Random(12)
    files = {
        f"d{d:02d}/f{i:02d}.bin": rng.randbytes(rng.randint(1, 6000))
        for d in range(12)
        for i in range(20)
    }
    push_tree(registry.url, name, tmp_path / "src", files)
    with mounted(tmp_path / "mnt", registry.url, tmp_path / "cache") as mount:
        before = len(registry.requests_seen())
        walked = subprocess.run(
            "find . -type f -print0 | sort -z | xargs -0 sha256sum",
            shell=True,
            cwd=mount.path / name / "v1",
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        sums = {line[66:]: line[:64] for line in walked.splitlines()}
        assert sums == {f"./{p}": hashlib.sha256(d).hexdigest() for p, d in files.items()}
        requests = blob_requests(registry, before)
        # Fewer requests than directories: entering one finds its files on their way.
        assert len(requests) < 12, requests


def test_a_walk_keeps_its_files_in_a_few_packs_that_a_new_mount_reads(
    registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    files = push_small_files(registry.url, name, tmp_path / "src")
    cache = tmp_path / "cache"
    walk = "find . -type f -print0 | sort -z | xargs -0 cat"
    with mounted(tmp_path / "mnt", registry.url, cache) as mount:
        version = mount.path / name / "v1"
        subprocess.run(walk, shell=True, cwd=version, capture_output=True, check=True)
        assert mount.cached_bytes() == sum(len(data) for data in files.values())
    packs = list((cache / "packs").glob("*.pack"))
    assert 1 <= len(packs) <= len(files) // 8  # not a file per blob
    before = len(registry.requests_seen())
    with mounted(tmp_path / "mnt", registry.url, cache) as mount:
        version = mount.path / name / "v1"
        for path, data in files.items():
            assert (version / path).read_bytes() == data
    assert blob_requests(registry, before) == []


def test_random_opens_fetch_only_the_files_opened(
    registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    files = push_small_files(registry.url, name, tmp_path / "src")
    with mounted(tmp_path / "mnt", registry.url, tmp_path / "cache") as mount:
        before = len(registry.requests_seen())
        for i in (40, 3, 25, 10, 55, 31):
            path = f"shard/f{i:03d}.bin"
            assert (mount.path / name / "v1" / path).read_bytes() == files[path]
        assert len(mount.chunks()) == 6
        assert not any("/blob-batch" in line for line in blob_requests(registry, before))


def test_opens_in_no_order_sweep_their_directory_and_nothing_beside_it(
    registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    """A shuffled epoch (a ``DataLoader``'s): after 32 opens of ``train/`` that continue no
    walk (of 40 here: a few land right after one opened just before), the rest of
    ``train/`` arrives in batches, and its neighbours stay where they are."""
    rng = random.Random(19)
    files = {f"train/c{i % 3}/s{i:03d}.bin": rng.randbytes(rng.randint(1, 9000)) for i in range(96)}
    files |= {
        f"{d}/f{i}.bin": rng.randbytes(3000) for d in ("a-before", "z-after") for i in range(4)
    }
    push_tree(registry.url, name, tmp_path / "src", files)
    train = sorted(path for path in files if path.startswith("train/"))
    digests = {hashlib.sha256(files[path]).hexdigest() for path in train}
    with mounted(tmp_path / "mnt", registry.url, tmp_path / "cache") as mount:
        version = mount.path / name / "v1"
        before = len(registry.requests_seen())
        order = rng.sample(train, len(train))
        for path in order[:40]:
            assert (version / path).read_bytes() == files[path]
        cached = wait_until(
            lambda: (got := {blob for blob, _ in mount.chunks()}) >= digests and got,
            "the rest of train/ fetched ahead",
        )
        assert cached == digests  # nothing of a-before/ or z-after/
        requests = blob_requests(registry, before)
        # 40 files one by one or with a few after them, then the rest in a batch or two.
        assert any("/blob-batch" in line for line in requests)
        assert len(requests) <= 40 + 4, requests
        for path in order[40:]:
            assert (version / path).read_bytes() == files[path]
        assert len(blob_requests(registry, before)) == len(requests)


def test_a_rotten_blob_in_a_batch_is_eio_and_its_neighbours_read(
    registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    files = push_small_files(registry.url, name, tmp_path / "src")
    victim = "shard/f005.bin"
    digest = hashlib.sha256(files[victim]).hexdigest()
    stored = registry.data_dir / "blobs" / "sha256" / digest[:2] / digest
    rotten = bytearray(stored.read_bytes())
    rotten[0] ^= 0x01
    stored.write_bytes(bytes(rotten))
    with mounted(tmp_path / "mnt", registry.url, tmp_path / "cache") as mount:
        version = mount.path / name / "v1"
        for i in range(12):  # a walk: f002 onwards arrive in batches, f005 among them
            path = f"shard/f{i:03d}.bin"
            if path == victim:
                with pytest.raises(OSError) as caught:
                    (version / path).read_bytes()
                assert caught.value.errno == errno.EIO
            else:
                assert (version / path).read_bytes() == files[path]
        assert "failed verification" in mount.log_text()


def test_pull_of_small_files_batches_requests_and_verifies(
    registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    files = push_small_files(registry.url, name, tmp_path / "src")
    before = len(registry.requests_seen())
    with artfs.Client(url=registry.url) as client:
        client.get_artifact(name, "v1").download(tmp_path / "out")
    got = {
        p.relative_to(tmp_path / "out").as_posix(): p.read_bytes()
        for p in (tmp_path / "out").rglob("*")
        if p.is_file()
    }
    assert got == files
    # 62 files, each small: a handful of batches, not a request per file.
    assert len(blob_requests(registry, before)) <= 3


def test_pull_with_a_rotten_blob_in_a_batch_fails_cleanly(
    registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    files = push_small_files(registry.url, name, tmp_path / "src")
    digest = hashlib.sha256(files["shard/f007.bin"]).hexdigest()
    stored = registry.data_dir / "blobs" / "sha256" / digest[:2] / digest
    rotten = bytearray(stored.read_bytes())
    rotten[-1] ^= 0x01
    stored.write_bytes(bytes(rotten))
    with artfs.Client(url=registry.url) as client:
        logged = client.get_artifact(name, "v1")
        with pytest.raises(Corrupt):
            logged.download(tmp_path / "out")
    assert not (tmp_path / "out" / "shard" / "f007.bin").exists()  # never wrong bytes
    assert (tmp_path / "out" / "shard" / "f006.bin").read_bytes() == files["shard/f006.bin"]


def in_page_cache(path: Path) -> bool:
    """Whether the kernel holds the first page of ``path`` (mincore: nothing is read)."""
    libc = ctypes.CDLL(None, use_errno=True)
    with path.open("rb") as stream:
        mapped = mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_COPY)
        anchor = ctypes.c_char.from_buffer(mapped)
        try:
            vector = (ctypes.c_ubyte * 1)()
            assert libc.mincore(ctypes.c_void_p(ctypes.addressof(anchor)), 1, vector) == 0
            return bool(vector[0] & 1)
        finally:
            del anchor
            mapped.close()


def test_a_walk_hands_the_next_files_to_the_kernel_before_they_are_opened(
    registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    files = push_small_files(registry.url, name, tmp_path / "src")
    with mounted(tmp_path / "mnt", registry.url, tmp_path / "cache") as mount:
        shard = mount.path / name / "v1" / "shard"
        listed = sorted(os.listdir(shard))  # readdirplus: the kernel now knows every inode
        assert listed[:2] == ["f000.bin", "f001.bin"]
        for i in range(6):  # a walk in listing order earns batches of the files after it
            path = f"shard/f{i:03d}.bin"
            assert (shard.parent / path).read_bytes() == files[path]
        ahead = shard / "f008.bin"
        deadline = time.monotonic() + 10
        while not in_page_cache(ahead) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert in_page_cache(ahead)
        assert not in_page_cache(shard / "f050.bin")  # beyond the walk's window
        # What the kernel was handed is the verified content.
        for i in range(FILES):
            path = f"shard/f{i:03d}.bin"
            assert (shard.parent / path).read_bytes() == files[path]


def test_a_push_and_a_commit_of_small_files_upload_them_many_per_request(
    registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    rng = random.Random(12)
    files = {f"d/f{i:03d}.bin": rng.randbytes(rng.randint(1, 8192)) for i in range(300)}
    files["big.bin"] = rng.randbytes(3 << 20)  # large blobs still go one per request
    before = len(registry.requests_seen())
    push_tree(registry.url, name, tmp_path / "src", files)
    uploads = [line for line in registry.requests_seen()[before:] if line.startswith("PUT ")]
    assert len(uploads) <= 4, uploads  # 300 small files: 2 batches, and the big file
    assert sum("/blob-batch" in line for line in uploads) == 2
    with mounted(tmp_path / "mnt", registry.url, tmp_path / "cache") as mount:
        artifact = mount.path / name
        for path, data in files.items():
            assert (artifact / "v1" / path).read_bytes() == data
        # The same through .staging: a commit uploads what is new, in batches too.
        staged = {f"n/g{i:03d}.txt": f"new {i}".encode() for i in range(100)}
        for path, data in staged.items():
            (artifact / ".staging" / path).parent.mkdir(parents=True, exist_ok=True)
            (artifact / ".staging" / path).write_bytes(data)
        before = len(registry.requests_seen())
        assert artfs_cli("commit", str(artifact)).returncode == 0
        uploads = [line for line in registry.requests_seen()[before:] if line.startswith("PUT ")]
        assert uploads == ["PUT /api/v1/projects/default/blob-batch"], uploads
        for path, data in staged.items():
            assert (artifact / "v2" / path).read_bytes() == data
