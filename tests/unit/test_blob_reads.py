"""The blob-read fast path's own parts: its Range parsing, which must agree with
``FileResponse`` (the route answers whatever the fast path declines), and its
reads, which take what the page cache has and the rest from a worker thread."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from starlette.responses import FileResponse, MalformedRangeHeader, RangeNotSatisfiable

from artfs.server.blob_reads import _Mapping, _Reader, single_range

HEADERS = [
    "bytes=0-0",
    "bytes=0-99",
    "bytes=5-",
    "bytes=-1",
    "bytes=-100",
    "bytes=-0",
    "bytes=99-99",
    "bytes=99-",
    "bytes=100-",
    "bytes=100-200",
    "bytes=10-5",
    "bytes=0-1000000",
    "BYTES = 3 - 7",
    " bytes=3-7 ",
    "bytes=-",
    "bytes=",
    "bytes=a-b",
    "bytes=0-1,5-9",
    "bytes=0-1,",
    "items=0-5",
    "bytes 0-5",
]


def starlette_answer(header: str, size: int) -> list[tuple[int, int]] | str:
    try:
        return FileResponse._parse_range_header(header, size)
    except MalformedRangeHeader:
        return "400"
    except RangeNotSatisfiable:
        return "416"


@pytest.mark.parametrize("size", [1, 2, 100, 1 << 20])
@pytest.mark.parametrize("header", HEADERS)
def test_single_range_answers_only_as_file_response_would(header: str, size: int) -> None:
    ours = single_range(header, size)
    theirs = starlette_answer(header, size)
    if ours is not None:
        assert theirs == [ours]
    else:
        # Declined: FileResponse answers something other than one plain range.
        assert not (isinstance(theirs, list) and len(theirs) == 1 and header.count(",") == 0)


def test_single_range_takes_the_common_forms() -> None:
    assert single_range("bytes=0-1048575", 1 << 30) == (0, 1 << 20)
    assert single_range("bytes=1073741823-", 1 << 30) == ((1 << 30) - 1, 1 << 30)
    assert single_range("bytes=-10", 5) == (0, 5)


def evict(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


@pytest.mark.parametrize("cached", [True, False])
def test_reader_returns_the_bytes_cached_or_not(tmp_path: Path, cached: bool) -> None:
    data = os.urandom(3 << 20)
    path = tmp_path / "blob"
    path.write_bytes(data)
    if cached:
        assert path.read_bytes() == data
    else:
        evict(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        reader = _Reader()
        pieces = [(0, 1 << 20), (12345, 1 << 20), ((3 << 20) - 10, 10), (100, 1)]

        async def read_all() -> list[bytes]:
            stat = os.fstat(fd)
            return [bytes(await reader.read(fd, stat, start, size)) for start, size in pieces]

        got = asyncio.run(read_all())
    finally:
        os.close(fd)
    assert got == [data[start : start + size] for start, size in pieces]


def test_a_blob_larger_than_memory_is_mapped_and_read(tmp_path: Path) -> None:
    path = tmp_path / "huge"
    with path.open("wb") as out:
        out.truncate(100 << 30)  # sparse: 100 GiB of zeros, more than RAM and swap here
        out.seek(50 << 30)
        out.write(b"middle")
    fd = os.open(path, os.O_RDONLY)
    try:
        stat = os.fstat(fd)
        mapping = _Mapping(fd, stat.st_size)  # read-only: no commit charge for its size
        got = asyncio.run(_Reader().read(fd, stat, 50 << 30, 6))
    finally:
        os.close(fd)
    assert bytes(got) == b"middle"
    assert mapping.resident(50 << 30, (50 << 30) + 6)  # the read above brought the page in


def test_residency_follows_the_page_cache(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(os.urandom(1 << 20))
    evict(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        mapping = _Mapping(fd, 1 << 20)
        assert not mapping.resident(0, 1 << 20)
        os.pread(fd, 1 << 20, 0)
        assert mapping.resident(0, 1 << 20)
    finally:
        os.close(fd)
