"""The SDK and a real mount reading through ``FaultProxy``: corrupted bytes never reach a
reader (verified, then fetched again or refused), cuts and 5xx are retried, delays within
the read deadline only delay, and a hung registry costs one deadline, not a wrong byte."""

from __future__ import annotations

import errno
import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

import artfs
from artfs.errors import ArtfsError
from tests.integration.trees import push_tree
from tests.support.fault_proxy import BLOB_READS, Fault, FaultProxy
from tests.support.mount import mounted
from tests.support.registry import RegistryProcess

MiB = 1 << 20


def tree(seed: int) -> dict[str, bytes]:
    """A file of several chunks and a few small ones (which travel in blob batches)."""
    rng = random.Random(seed)
    files = {"big.bin": rng.randbytes(3 * MiB + 17)}
    files.update({f"small/{i}.txt": rng.randbytes(100 + i) for i in range(4)})
    # Over the small-blob size, each alone in its folder: fetched only when read.
    files.update({f"{phase}/data.bin": rng.randbytes(600_000) for phase in ("cut", "hang")})
    return files


@pytest.fixture
def proxy(shared_registry: RegistryProcess) -> Iterator[FaultProxy]:
    with FaultProxy(shared_registry.url, seed=17) as proxy:
        yield proxy


def downloaded(target: Path) -> dict[str, bytes]:
    return {
        p.relative_to(target).as_posix(): p.read_bytes() for p in target.rglob("*") if p.is_file()
    }


def test_sdk_downloads_through_faults_are_right_or_refused(
    shared_registry: RegistryProcess, proxy: FaultProxy, tmp_path: Path, name: str
) -> None:
    files = tree(1)
    push_tree(shared_registry.url, name, tmp_path / "src", files)
    with artfs.Client(url=proxy.url, use_cache=False, retries=3) as client:
        version = client.get_artifact(name, "v1")

        proxy.add(Fault.corrupt(path=BLOB_READS, times=2))
        assert downloaded(version.download(tmp_path / "corrupted-twice")) == files

        proxy.add(Fault.cut(after=100_000, path=BLOB_READS, times=2))
        proxy.add(Fault.status(503, method="GET", path=BLOB_READS, times=2))
        proxy.add(Fault.delay(0.2, path=BLOB_READS))
        assert downloaded(version.download(tmp_path / "cut-503-delayed")) == files
        proxy.clear()

        proxy.add(Fault.corrupt(flips=3, path=BLOB_READS))  # every blob read, for good
        with pytest.raises(ArtfsError) as refused:
            version.download(tmp_path / "always-corrupt")
        assert "do not match" in str(refused.value)
        for path, data in downloaded(tmp_path / "always-corrupt").items():
            assert files[path] == data, f"{path}: wrong bytes handed out"
    assert proxy.faults["corrupt"] >= 4
    assert proxy.faults["cut"] == 2
    assert proxy.faults["status"] == 2
    assert proxy.faults["delay"] >= 2


def read_all(path: Path) -> bytes:
    """The file's bytes through a fresh descriptor, 1 MiB a read (one chunk each)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        pieces = []
        while piece := os.read(fd, MiB):
            pieces.append(piece)
        return b"".join(pieces)
    finally:
        os.close(fd)


def read_or_eio(path: Path) -> bytes | None:
    try:
        return read_all(path)
    except OSError as exc:
        if exc.errno != errno.EIO:
            raise
        return None


def test_mount_reads_through_faults_give_right_bytes_or_eio(
    shared_registry: RegistryProcess, proxy: FaultProxy, tmp_path: Path, name: str
) -> None:
    files = tree(2)
    push_tree(shared_registry.url, name, tmp_path / "src", files)
    # The default listing ttl: a refresh against a hung registry answers the last
    # listing within 2 s (vfs/catalog.py, REFRESH_WAIT), so listings never fail here.
    options = ("--read-timeout", "4")
    with mounted(tmp_path / "mnt", proxy.url, tmp_path / "cache", *options) as mount:
        version = mount.path / name / "v1"
        assert (version / "big.bin").stat().st_size == len(files["big.bin"])

        # Corrupted chunks: refused (EIO) until a fetch brings the right bytes.
        proxy.add(Fault.corrupt(path=BLOB_READS, times=3))
        results = [read_or_eio(version / "big.bin") for _ in range(6)]
        assert files["big.bin"] in results, "never read right after the faults ran out"
        assert all(got in (None, files["big.bin"]) for got in results)
        proxy.clear()
        proxy.add(Fault.corrupt(path=BLOB_READS, times=1))  # small files come in batches
        for path in (f"small/{i}.txt" for i in range(4)):
            got = [read_or_eio(version / path) for _ in range(3)]
            assert files[path] in got
            assert all(one in (None, files[path]) for one in got)
        proxy.clear()

        # Cut answers and 5xx are retried within the read deadline; a delay only delays.
        proxy.add(Fault.cut(after=300_000, path=BLOB_READS, times=1))
        proxy.add(Fault.status(503, method="GET", path=BLOB_READS, times=2))
        proxy.add(Fault.delay(0.5, path=BLOB_READS))
        assert read_all(version / "cut/data.bin") == files["cut/data.bin"]
        proxy.clear()

        # A hung registry: EIO within the deadline, then right bytes once it answers.
        proxy.stop("hang")
        assert read_or_eio(version / "hang/data.bin") is None
        proxy.resume()
        assert read_all(version / "hang/data.bin") == files["hang/data.bin"]
        assert read_all(version / "big.bin") == files["big.bin"]
    assert proxy.faults["corrupt"] == 4
    assert proxy.faults["cut"] == 1
    assert proxy.faults["status"] == 2
    assert proxy.faults["hang"] >= 1
