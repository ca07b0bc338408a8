"""Random readers through a real mount fetch the chunks they touch, whatever their order.

docs/design.md, "A read, traced" (step 1): the kernel's read-ahead of the mount is
one chunk, so an ``mmap`` fault's read-around touches at most two chunks; files
report a 4 KiB ``st_blksize``, so Python's buffered reads ask for 4 KiB, not a
chunk; and the daemon's read-ahead gives a reader that seeks nothing ahead.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import random
from pathlib import Path

import pytest

from tests.integration.trees import push_tree
from tests.support.mount import Mount, mounted
from tests.support.registry import RegistryProcess

MiB = 1 << 20
CHUNKS = 48


def pattern(tag: int) -> bytes:
    """``CHUNKS`` MiB, every MiB different (its tag and index first), nothing compressible."""
    block = random.Random(tag).randbytes(MiB)
    return b"".join(bytes([tag]) + i.to_bytes(4, "big") + block[5:] for i in range(CHUNKS))


def chunks_of(mount: Mount, digest: str) -> set[int]:
    """The chunks of a blob cached now, less chunk 0: on a file's first read the format
    prefetch (``artfs.fetch.planned``) reads its header there, once per file, not per read."""
    return {index for (blob, index) in mount.chunks() if blob == digest and index != 0}


@pytest.mark.skipif(os.geteuid() != 0, reason="only root may set a device's read-ahead")
def test_random_reads_in_any_order_fetch_only_their_chunks(
    shared_registry: RegistryProcess, tmp_path: Path, name: str
) -> None:
    files = {"pread.bin": pattern(1), "mmap.bin": pattern(2)}
    push_tree(shared_registry.url, name, tmp_path / "src", files)
    digests = {path: hashlib.sha256(data).hexdigest() for path, data in files.items()}
    rng = random.Random(19)
    with mounted(tmp_path / "mnt", shared_registry.url, tmp_path / "cache") as mount:
        version = mount.path / name / "v1"
        # pread, no fadvise: 8 reads per order, each in a chunk of its own (never chunk 0,
        # where a read counts as the start of a sequential one).
        indexes = rng.sample(range(1, CHUNKS), 24)
        orders = {
            "increasing": sorted(indexes[:8]),
            "decreasing": sorted(indexes[8:16], reverse=True),
            "shuffled": indexes[16:],
        }
        data = files["pread.bin"]
        touched: set[int] = set()
        for order, chosen in orders.items():
            fd = os.open(version / "pread.bin", os.O_RDONLY)
            try:
                for index in chosen:
                    offset = index * MiB + rng.randrange(0, MiB // 4096) * 4096
                    assert os.pread(fd, 4096, offset) == data[offset : offset + 4096]
                    touched.add(index)
                    assert chunks_of(mount, digests["pread.bin"]) <= touched, order
            finally:
                os.close(fd)
        assert chunks_of(mount, digests["pread.bin"]) == touched

        # Python's buffered file objects fill their buffer (``st_blksize`` bytes) from the
        # offset sought: 4 KiB at a time, as on a local disk, never on into the next chunk
        # (each chunk read here is followed by one nobody has read).
        fresh = [i for i in range(1, CHUNKS - 1) if not {i, i + 1} & touched]
        with (version / "pread.bin").open("rb") as stream:
            for index in rng.sample(fresh, min(6, len(fresh))):
                offset = index * MiB + rng.randrange(1, MiB // 4096) * 4096
                stream.seek(offset)
                assert stream.read(4096) == data[offset : offset + 4096]
                touched.add(index)
                assert chunks_of(mount, digests["pread.bin"]) == touched

        # mmap: the kernel reads around each fault; far-apart faults, at most two
        # chunks each (the fault's and, for a read-around across a boundary, one more).
        data = files["mmap.bin"]
        faults = [5, 44, 12, 36, 20, 28]
        fd = os.open(version / "mmap.bin", os.O_RDONLY)
        try:
            with mmap.mmap(fd, 0, prot=mmap.PROT_READ) as mapped:
                for count, index in enumerate(faults, 1):
                    offset = index * MiB + rng.randrange(0, MiB // 4096) * 4096
                    assert mapped[offset : offset + 4096] == data[offset : offset + 4096]
                    cached = chunks_of(mount, digests["mmap.bin"])
                    assert len(cached) <= 2 * count, (count, sorted(cached))
                    assert all(any(abs(c - f) <= 1 for f in faults[:count]) for c in cached)
        finally:
            os.close(fd)
