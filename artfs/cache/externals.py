"""``ExternalCopies``: where whole, verified copies of blobs lie outside the cache.

An external copy is a file an SDK pull wrote for the user (see ``ChunkCache``);
every process sharing the cache records the copies it makes and learns of the
others'. They are kept in one append-only journal, ``external.log``: a line of
JSON per copy made or given up on, and the last line about a digest wins. One
file, not a record file per blob: a pull of many cached small files read as
many record files (much of its time when the page cache was cold), and a
first pull wrote as many (a temporary file and a rename each).

Each line goes out in one ``write`` on an ``O_APPEND`` descriptor, so processes
do not interleave their lines, and starts on a line of its own, so a line torn
by a crash costs that line only. A reader keeps its offset and reads only what
was appended since it last looked. When the journal holds far more lines than
live copies, a new instance rewrites it (under an exclusive ``flock``, to a
temporary file renamed over it). A line appended to the old file meanwhile is
lost: that costs a fetch, never a wrong byte, since a copy is checked against
its size and mtime, and verified, whenever it is read.

Every pull and mount reads the whole journal when it starts, and a machine
that pulled many small files holds tens of thousands of lines, too many to
parse as JSON at every start. So a line as this module writes it is only
split at start: its digest sits at a fixed place, and its JSON is parsed when
that copy is first asked for.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from artfs.fileio import write_file

__all__ = ["ExternalCopies", "ExternalCopy"]

log = logging.getLogger("artfs.cache")

#: Rewrite the journal at start when it has this many more lines than live copies.
COMPACT_SLACK = 4096
#: A rewrite's temporary file this old was left by a crash.
STALE_REWRITE_SECONDS = 3600.0
#: How every line ``_record`` writes begins: the digest follows, 64 hex digits.
_LINE_START = b'{"digest": "'
_DIGEST_END = len(_LINE_START) + 64
_DROPPED = b'"drop": true}'


@dataclass(frozen=True)
class ExternalCopy:
    path: str
    size: int
    mtime_ns: int


class ExternalCopies:
    def __init__(self, root: Path) -> None:
        self.path = root / "external.log"
        self._lock = threading.Lock()
        #: A copy, or the journal line about it (parsed when first asked for).
        self._copies: dict[str, ExternalCopy | bytes] = {}
        self._lines = 0
        self._offset = 0
        self._inode: int | None = None
        self._adopt_record_files(root / "external")
        self._remove_stale_rewrites()
        self.refresh()
        if self._lines > len(self._copies) + COMPACT_SLACK:
            self._compact()

    def __contains__(self, digest: str) -> bool:
        return digest in self._copies

    def get(self, digest: str) -> ExternalCopy | None:
        found = self._copies.get(digest)
        if not isinstance(found, bytes):
            return found
        try:
            copy = _parse(json.loads(found))
        except (ValueError, KeyError, TypeError):
            log.debug("skipping a damaged line of %s", self.path)
            copy = None
        with self._lock:
            if self._copies.get(digest) is found:  # not replaced meanwhile
                if copy is None:
                    del self._copies[digest]
                else:
                    self._copies[digest] = copy
        return copy

    def __len__(self) -> int:
        return len(self._copies)

    def add(self, digest: str, copy: ExternalCopy) -> None:
        self._append(_record(digest, copy))
        with self._lock:
            self._copies[digest] = copy

    def drop(self, digest: str) -> None:
        """Forget a copy that is gone or changed, here and for the other processes."""
        with self._lock:
            if self._copies.pop(digest, None) is None:
                return
        with contextlib.suppress(OSError):  # best effort: readers check every copy anyway
            self._append({"digest": digest, "drop": True})

    def refresh(self) -> None:
        """Learn what other processes recorded since the last look (a ``stat`` if nothing)."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return
        with self._lock:
            if stat.st_ino != self._inode:  # rewritten by another process: read it all
                self._inode, self._offset, self._lines = stat.st_ino, 0, 0
            if stat.st_size <= self._offset:
                return
            with open(self.path, "rb") as journal:
                journal.seek(self._offset)
                new = journal.read()
            complete = new.rfind(b"\n") + 1  # a line still being written waits
            self._offset += complete
            for line in new[:complete].splitlines():
                self._apply(line)

    def _apply(self, line: bytes) -> None:
        if not line:
            return
        self._lines += 1
        if line.startswith(_LINE_START) and line[_DIGEST_END : _DIGEST_END + 1] == b'"':
            digest = line[len(_LINE_START) : _DIGEST_END].decode("ascii", "replace")
            if line.endswith(_DROPPED):
                self._copies.pop(digest, None)
            elif line.endswith(b"}"):  # else torn
                self._copies[digest] = line
            return
        try:
            record = json.loads(line)
            digest = str(record["digest"])
            if record.get("drop"):
                self._copies.pop(digest, None)
            else:
                self._copies[digest] = _parse(record)
        except (ValueError, KeyError, TypeError):
            log.debug("skipping a torn line of %s", self.path)

    def _append(self, record: dict[str, object]) -> None:
        self._write_lines([record])

    def _write_lines(self, records: list[dict[str, object]]) -> None:
        data = b"".join(b"\n" + _line(record) + b"\n" for record in records)
        write_file(self.path, data, os.O_APPEND | os.O_CREAT)

    def _compact(self) -> None:
        with open(self.path, "rb") as journal:
            try:
                fcntl.flock(journal, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # another process is at it
            self.refresh()
            with self._lock:
                live = dict(self._copies)
            tmp = self.path.with_name(f"{self.path.name}.{uuid.uuid4().hex}.part")
            try:
                with open(tmp, "wb") as out:
                    for digest, copy in live.items():
                        line = copy if isinstance(copy, bytes) else _line(_record(digest, copy))
                        out.write(line + b"\n")
                os.replace(tmp, self.path)
            except OSError as exc:
                tmp.unlink(missing_ok=True)
                log.warning("could not rewrite %s: %s", self.path, exc)
                return
        log.info("rewrote %s: %d live copies", self.path, len(live))
        self.refresh()

    def _remove_stale_rewrites(self) -> None:
        """Temporary files of rewrites a crash interrupted (an hour old: not in progress)."""
        for part in self.path.parent.glob(f"{self.path.name}.*.part"):
            with contextlib.suppress(OSError):
                if time.time() - part.stat().st_mtime > STALE_REWRITE_SECONDS:
                    part.unlink()

    def _adopt_record_files(self, directory: Path) -> None:
        """Move the records of the older one-file-per-blob layout into the journal."""
        if not directory.is_dir():
            return
        records: list[dict[str, object]] = []
        for path in directory.glob("*/*"):
            try:
                records.append(_record(path.name, _parse(json.loads(path.read_bytes()))))
            except (OSError, ValueError, KeyError, TypeError):
                continue  # a damaged record: that copy is fetched again
        if records:
            self._write_lines(records)
        shutil.rmtree(directory, ignore_errors=True)


def _record(digest: str, copy: ExternalCopy) -> dict[str, object]:
    return {"digest": digest, **asdict(copy)}


def _line(record: dict[str, object]) -> bytes:
    """A journal line (no newline): the digest first, where ``_apply`` finds it unparsed."""
    return json.dumps(record).encode()


def _parse(record: dict[str, Any]) -> ExternalCopy:
    """A copy from a journal line or an older record file (``KeyError``/``ValueError`` if bad)."""
    return ExternalCopy(str(record["path"]), int(record["size"]), int(record["mtime_ns"]))
