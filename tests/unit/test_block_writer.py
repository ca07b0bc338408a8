"""BlockWriter: whatever the pieces and the filesystem, the file holds exactly the bytes written."""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

import pytest

from artfs.store.direct import BlockWriter

BLOCK = 64 << 10


def write_pieces(path: Path, pieces: list[bytes], block_size: int = BLOCK) -> BlockWriter:
    writer = BlockWriter(path, block_size=block_size)
    try:
        for piece in pieces:
            writer.write(piece)
        writer.finish()
    finally:
        writer.close()
    return writer


@pytest.mark.parametrize(
    "sizes",
    [
        [],
        [0],
        [1],
        [BLOCK - 1],
        [BLOCK],
        [BLOCK + 1],
        [4096] * 40,  # exactly 2.5 blocks of page-sized pieces
        [3 * BLOCK + 4095],
        [7, 100_000, 13, BLOCK * 2, 5],
    ],
    ids=repr,
)
def test_the_file_holds_exactly_what_was_written(tmp_path: Path, sizes: list[int]) -> None:
    rng = random.Random(sum(sizes))
    pieces = [rng.randbytes(size) for size in sizes]
    write_pieces(tmp_path / "blob", pieces)
    assert (tmp_path / "blob").read_bytes() == b"".join(pieces)


def test_pieces_in_reused_buffers_are_copied_before_the_caller_changes_them(
    tmp_path: Path,
) -> None:
    buffer = bytearray(b"a" * 100)
    writer = BlockWriter(tmp_path / "blob", block_size=BLOCK)
    try:
        writer.write(buffer)
        writer.write(memoryview(buffer))
        buffer[:] = b"b" * 100
        writer.finish()
    finally:
        writer.close()
    assert (tmp_path / "blob").read_bytes() == b"a" * 200


def test_large_files_go_out_with_o_direct_where_the_filesystem_allows(tmp_path: Path) -> None:
    data = random.Random(3).randbytes(5 * BLOCK + 123)
    writer = write_pieces(tmp_path / "blob", [data])
    assert (tmp_path / "blob").read_bytes() == data
    (tmp_path / "probe").touch()
    try:
        fd = os.open(tmp_path / "probe", os.O_WRONLY | os.O_DIRECT)
    except OSError:
        pytest.fail(f"{tmp_path} refuses O_DIRECT: this test needs a filesystem that takes it")
    os.close(fd)
    assert writer._direct  # never fell back on a filesystem that takes O_DIRECT


def test_an_existing_file_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "blob").write_bytes(b"kept")
    with pytest.raises(FileExistsError):
        BlockWriter(tmp_path / "blob")
    assert (tmp_path / "blob").read_bytes() == b"kept"


def test_a_filesystem_without_o_direct_gets_plain_writes(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    # ramfs has no direct I/O at all: setting O_DIRECT fails with EINVAL.
    subprocess.run(["mount", "-t", "ramfs", "ramfs", str(disk)], check=True)
    try:
        data = random.Random(5).randbytes(3 * BLOCK + 77)
        writer = write_pieces(disk / "blob", [data[:1000], data[1000:]])
        assert not writer._direct
        assert (disk / "blob").read_bytes() == data
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
