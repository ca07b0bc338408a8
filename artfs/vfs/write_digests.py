"""``WriteDigests``: the sha256 of staged files, computed while they are written.

A file written from empty by appends only (``cp``, ``dd``, a framework saving a
checkpoint) is hashed piece by piece as the writes arrive, by one helper thread,
so the write itself does not wait for the hash; when its last writer closes it
the digest is recorded on the file (``artfs.upload.records``) and a commit
uploads it without reading it twice. Anything else — a write elsewhere than
at the end, a truncate below what was hashed, two writers at once, a reopen
for writing without ``O_TRUNC`` — gives up on that file, which the commit then
hashes as before.

Crash safety: the record of an existing file is removed before any new write
can reach it, and a new record is written only after every write it covers
has been made, so a daemon killed at any point leaves either no record or a
true one.
"""

from __future__ import annotations

import hashlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from artfs.upload.records import drop_record, write_record

__all__ = ["WriteDigests"]

#: Bytes written but not hashed yet, over all files, before writers wait for the hasher.
MAX_BACKLOG = 64 << 20

Key = tuple[int, int]  # st_dev, st_ino of the backing file


@dataclass(eq=False)
class _Running:
    hasher: hashlib._Hash | None  # None once given up on
    length: int = 0
    writers: int = 1
    pending: int = 0  # pieces queued for the hasher
    lock: threading.Lock = field(default_factory=threading.Lock)


def _key(info: os.stat_result) -> Key:
    return info.st_dev, info.st_ino


class WriteDigests:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: dict[Key, _Running] = {}
        self._room = threading.Condition()
        self._backlog = 0
        # One thread: pieces of a file are hashed in the order they were queued.
        self._hashing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="artfs-hash")

    def opened(self, fd: int, *, fresh: bool) -> Key:
        """A handle was opened for writing on ``fd``; ``fresh``: the file was just created or
        truncated. Must be called before any write through that handle."""
        info = os.fstat(fd)
        key = _key(info)
        with self._lock:
            running = self._files.get(key)
            if running is None:
                start = fresh or info.st_size == 0
                self._files[key] = _Running(hashlib.sha256() if start else None)
            else:
                running.writers += 1
                with running.lock:
                    running.hasher = None  # two writers: their order is anyone's guess
        drop_record(fd)
        return key

    def written(self, key: Key, offset: int, data: bytes) -> None:
        """``data`` was written at ``offset`` (called in the writing thread, after the write)."""
        running = self._files.get(key)
        if running is None or running.hasher is None:
            return
        # Writing faster than one core hashes: the writer waits, memory stays bounded.
        with self._room:
            self._room.wait_for(lambda: self._backlog <= MAX_BACKLOG)
            self._backlog += len(data)
        with running.lock:
            if running.hasher is not None and offset == running.length:
                running.length += len(data)
                running.pending += 1
                self._hashing.submit(self._hash, running, data)
                return
            running.hasher = None  # not an append: this file is hashed at commit
        self._hashed(len(data))

    def _hash(self, running: _Running, data: bytes) -> None:
        hasher = running.hasher
        if hasher is not None:
            hasher.update(data)
        with running.lock:
            running.pending -= 1
        self._hashed(len(data))

    def _hashed(self, count: int) -> None:
        with self._room:
            self._backlog -= count
            self._room.notify_all()

    def truncated(self, key: Key, size: int) -> None:
        """The file was truncated to ``size`` while open for writing."""
        running = self._files.get(key)
        if running is None:
            return
        with running.lock:
            if size == 0 and not running.pending:
                running.hasher, running.length = hashlib.sha256(), 0
            elif size < running.length:
                running.hasher = None
            # Longer: the hashed bytes are intact, and the zeros after them are
            # hashed if written over, or make the size disagree at the end.

    def closed(self, key: Key, fd: int) -> None:
        """A writing handle was closed; ``fd`` is still open and is closed here."""
        with self._lock:
            running = self._files.get(key)
            if running is None or running.writers > 1:
                if running is not None:
                    running.writers -= 1
                os.close(fd)
                return
        self._hashing.submit(self._finish, key, running, fd)

    def _finish(self, key: Key, running: _Running, fd: int) -> None:
        """After every queued piece of this file (one thread, in order): record its digest."""
        try:
            # Under the lock: a handle opening the file for writing meanwhile either
            # sees this one still running, or removes the record written here.
            with self._lock:
                if self._files.get(key) is not running or running.writers > 1:
                    running.writers -= 1
                    return  # reopened for writing meanwhile: that handle carries on
                del self._files[key]
                hasher = running.hasher
                if hasher is not None and os.fstat(fd).st_size == running.length:
                    write_record(fd, hasher.hexdigest())
        finally:
            os.close(fd)

    def settle(self) -> None:
        """Wait until every file closed so far has its record (a commit is about to list them)."""
        self._hashing.submit(lambda: None).result()

    def close(self) -> None:
        self._hashing.shutdown(wait=True)
