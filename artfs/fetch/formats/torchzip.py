"""PyTorch checkpoints (``torch.save`` since 1.6): a zip of stored members.

``torch.load`` reads the zip's central directory, then ``data.pkl``, then the
storages (``data/0``, ``data/1``, ...) as the unpickler meets them, which is
the order ``torch.save`` wrote them. The plan is the central directory, the
pickle, then every other member in file order.
"""

from __future__ import annotations

import io
import struct
import zipfile

from artfs.fetch.formats.base import MAX_HEADER, ByteRange, NoPlan, Read

__all__ = ["MAGIC", "plan"]

MAGIC = b"PK\x03\x04"
_LOCAL_HEADER = 30
_MAX_MEMBERS = 1 << 16


def plan(size: int, read: Read) -> list[ByteRange]:
    if read(0, 4) != MAGIC:
        raise NoPlan("not a zip file")
    reader = _Reader(read, size)
    try:
        members = zipfile.ZipFile(reader).infolist()  # reads the end record and the directory
    except zipfile.BadZipFile as exc:
        raise NoPlan(str(exc)) from exc
    if len(members) > _MAX_MEMBERS:
        raise NoPlan(f"{len(members)} members")
    directory_start = min((reader.lowest_read, size))
    ranges: list[ByteRange] = []
    for member in members:
        start = member.header_offset
        if not 0 <= start <= size - _LOCAL_HEADER:
            raise NoPlan(f"member {member.filename!r} starts outside the file")
        name_length, extra_length = struct.unpack("<HH", read(start + 26, 4))
        end = start + _LOCAL_HEADER + name_length + extra_length + member.compress_size
        if end > size:
            raise NoPlan(f"member {member.filename!r} ends past the file")
        ranges.append(ByteRange(start, end))
    pickles = [r for r, m in zip(ranges, members, strict=True) if m.filename.endswith(".pkl")]
    rest = sorted((r for r in ranges if r not in pickles), key=lambda r: r.start)
    return [ByteRange(directory_start, size), *pickles, *rest]


class _Reader(io.RawIOBase):
    """A seekable file over ``read`` for ``zipfile``, remembering the lowest offset it read."""

    def __init__(self, read: Read, size: int) -> None:
        self._read = read
        self._size = size
        self._position = 0
        self.lowest_read = size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(base + offset, 0)
        return self._position

    def read(self, length: int | None = -1) -> bytes:
        end = self._size if length is None or length < 0 else self._position + length
        end = min(end, self._size)
        if end - self._position > MAX_HEADER:
            raise NoPlan(f"a zip directory of {end - self._position} bytes")
        if end <= self._position:
            return b""
        data = self._read(self._position, end - self._position)
        self.lowest_read = min(self.lowest_read, self._position)
        self._position = end
        return data
