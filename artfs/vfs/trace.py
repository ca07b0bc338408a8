"""``ReadTrace``: which ranges of which version files a mount's readers asked for.

``artfs mount --trace FILE`` appends one JSON line per range the daemon was
asked to read, in the order first asked; a read that continues the range
before it (same blob, starting where it ended, as a sequential reader's do)
extends that range instead of starting a line, so a streamed file is one line.
``artfs prefetch --trace FILE`` replays it into a cache (docs/design.md,
"Warming the cache"). Reads the kernel's page cache serves never reach the
daemon and are not in it: a trace is what a cold run fetched.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["ReadTrace", "TracedRange", "read_trace"]


@dataclass
class TracedRange:
    artifact: str
    version: str
    path: str
    digest: str
    size: int  # the blob's
    offset: int
    length: int


class ReadTrace:
    def __init__(self, path: Path) -> None:
        # Line-buffered append: each finished line is on disk when the next range starts.
        self._file = open(path, "a", buffering=1)  # noqa: SIM115 - open for the mount's life
        self._pending: TracedRange | None = None

    def record(
        self,
        artifact: str,
        version: str,
        path: str,
        digest: str,
        size: int,
        offset: int,
        length: int,
    ) -> None:
        pending = self._pending
        if pending is not None and pending.digest == digest:
            end = pending.offset + pending.length
            if pending.offset <= offset <= end:
                pending.length = max(end, offset + length) - pending.offset
                return
        self._write()
        self._pending = TracedRange(artifact, version, path, digest, size, offset, length)

    def _write(self) -> None:
        if self._pending is not None:
            self._file.write(json.dumps(asdict(self._pending)) + "\n")
            self._pending = None

    def close(self) -> None:
        self._write()
        self._file.close()


def read_trace(path: Path) -> list[TracedRange]:
    """The ranges of a trace file, in order; a torn last line (a crash) is left out."""
    ranges: list[TracedRange] = []
    with open(path) as lines:
        for line in lines:
            try:
                ranges.append(TracedRange(**json.loads(line)))
            except (ValueError, TypeError):
                continue
    return ranges
