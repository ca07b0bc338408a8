"""``WriteDigests`` on real files, without a mount: when a record is written, and when not."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from artfs.upload.records import read_record, write_record
from artfs.vfs.write_digests import MAX_BACKLOG, WriteDigests


@pytest.fixture
def digests() -> Iterator[WriteDigests]:
    tracker = WriteDigests()
    yield tracker
    tracker.close()


def _open(path: Path, flags: int = os.O_WRONLY | os.O_CREAT | os.O_TRUNC) -> int:
    return os.open(path, flags, 0o644)


def _write(digests: WriteDigests, key: tuple[int, int], fd: int, offset: int, data: bytes) -> None:
    os.pwrite(fd, data, offset)
    digests.written(key, offset, data)


def test_appends_from_empty_are_recorded_when_the_last_writer_closes(
    digests: WriteDigests, tmp_path: Path
) -> None:
    path = tmp_path / "f"
    fd = _open(path)
    key = digests.opened(fd, fresh=True)
    pieces = [os.urandom(size) for size in (1, 4096, MAX_BACKLOG // 2, MAX_BACKLOG, 7)]
    offset = 0
    for piece in pieces:
        _write(digests, key, fd, offset, piece)
        offset += len(piece)
    digests.settle()
    assert read_record(path) is None  # still open for writing
    digests.closed(key, fd)
    digests.settle()
    data = b"".join(pieces)
    assert read_record(path) == (hashlib.sha256(data).hexdigest(), len(data))


@pytest.mark.parametrize("case", ["gap", "rewrite", "shrink", "second_writer", "not_empty"])
def test_anything_but_appends_from_empty_gives_up(
    digests: WriteDigests, tmp_path: Path, case: str
) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"old bytes")
    fd = _open(path, os.O_WRONLY if case == "not_empty" else os.O_WRONLY | os.O_TRUNC)
    key = digests.opened(fd, fresh=case != "not_empty")
    _write(digests, key, fd, 0, b"abcdef")
    other = None
    if case == "gap":
        _write(digests, key, fd, 10, b"z")
    elif case == "rewrite":
        _write(digests, key, fd, 2, b"Z")
    elif case == "shrink":
        os.ftruncate(fd, 3)
        digests.truncated(key, 3)
        _write(digests, key, fd, 6, b"ghi")
    elif case == "second_writer":
        other = _open(path, os.O_WRONLY)
        assert digests.opened(other, fresh=False) == key
        _write(digests, key, other, 6, b"ghi")
    digests.closed(key, fd)
    if other is not None:
        digests.closed(key, other)
    digests.settle()
    assert read_record(path) is None


def test_growing_truncate_keeps_the_digest_only_if_the_zeros_are_written_over(
    digests: WriteDigests, tmp_path: Path
) -> None:
    for final, expect in ((8, True), (12, False)):
        path = tmp_path / f"f{final}"
        fd = _open(path)
        key = digests.opened(fd, fresh=True)
        _write(digests, key, fd, 0, b"abcd")
        os.ftruncate(fd, final)  # preallocation, as some writers do
        digests.truncated(key, final)
        _write(digests, key, fd, 4, b"efgh")
        digests.closed(key, fd)
        digests.settle()
        content = path.read_bytes()
        found = read_record(path)
        if expect:
            assert found == (hashlib.sha256(content).hexdigest(), 8)
        else:
            assert found is None


def test_opening_for_writing_removes_a_record_at_once(
    digests: WriteDigests, tmp_path: Path
) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"recorded")
    fd = os.open(path, os.O_RDONLY)
    write_record(fd, hashlib.sha256(b"recorded").hexdigest())
    os.close(fd)
    assert read_record(path) is not None
    fd = _open(path, os.O_WRONLY | os.O_APPEND)
    key = digests.opened(fd, fresh=False)
    # Nothing written yet, and a crash now would leave no record to trust.
    assert read_record(path) is None
    digests.closed(key, fd)
    digests.settle()
    assert read_record(path) is None


def test_a_record_is_only_trusted_while_size_and_mtime_match(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"data")
    fd = os.open(path, os.O_RDONLY)
    write_record(fd, hashlib.sha256(b"data").hexdigest())
    os.close(fd)
    assert read_record(path) is not None
    info = path.stat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 1))
    assert read_record(path) is None
