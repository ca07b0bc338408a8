"""A mount's side of lineage: it is a run, it records what it read, it signs its commits.

Each mount is a run of kind ``mount`` (its id ``$ARTFS_RUN`` when the mount
was started with one, else ``mount-`` and 12 hex digits), with the mount's
user, host and mountpoint. ``UseRecorder.note`` is called on the trio thread
at each open of a file of a version and does nothing but set lookups and, once
per version and run, a queue put: a thread of its own tells the registry, so
a read never waits on it. The runs that read are the mount's own and, if the
opening process has an ``$ARTFS_RUN`` (read from ``/proc/<pid>/environ``, at
most every ``PID_TTL`` seconds per process), that run too: a training job
started with ``ARTFS_RUN=train-42`` that reads through the mount is recorded
as reading what it read. While the registry cannot be reached the uses
wait and are sent again every ``retry_after`` seconds (at most ``MAX_PENDING``
of them; past that the oldest are dropped, with a log line); at unmount what
is still unsent gets one last try, and is otherwise dropped with a log line.
An offline mount records nothing. A commit's ``source`` names the run that
produced the version: ``artfs commit --run``, the ``$ARTFS_RUN`` of the
process that renamed ``.staging`` (``Caller``), or the mount's own run
(docs/design.md, "Runs and lineage").
"""

from __future__ import annotations

import getpass
import logging
import os
import pwd
import queue
import socket
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cachetools import TTLCache

from artfs import __version__, names
from artfs.client.models import RunStart
from artfs.client.protocol import RegistryAPI
from artfs.errors import ArtfsError, InvalidInput, Offline, Transient

__all__ = ["MAX_PENDING", "Caller", "MountRun", "UseRecorder"]

log = logging.getLogger("artfs.uses")

#: Uses waiting for the registry at most; past this the oldest are dropped.
MAX_PENDING = 10_000
#: How long ``close`` waits for the last try to send what is pending.
CLOSE_WAIT = 5.0
#: Seconds a reading process's ``$ARTFS_RUN`` is taken as known (``UseRecorder``).
PID_TTL = 2.0


@dataclass(frozen=True)
class MountRun:
    """The run a mount is: its id, and what the registry is told about it."""

    id: str
    start: RunStart

    @classmethod
    def of(cls, mountpoint: str, run_id: str | None = None) -> MountRun:
        chosen = run_id or os.environ.get("ARTFS_RUN") or f"mount-{uuid.uuid4().hex[:12]}"
        return cls(
            names.check_name(chosen),
            RunStart(
                kind="mount", user=getpass.getuser(), host=socket.gethostname(), mount=mountpoint
            ),
        )

    def start_for(self, caller: Caller) -> RunStart:
        """What the registry is told of a reading process's own run, if it is new."""
        return RunStart(
            kind="run", user=caller.user() or "", host=self.start.host, mount=self.start.mount
        )

    def source(
        self,
        kind: str = "mount",
        run_id: str | None = None,
        user: str | None = None,
        message: str = "",
    ) -> dict[str, Any]:
        """A commit's ``source``: by ``run_id`` (``artfs commit --run``, a run of ``kind``),
        else by this mount's own run."""
        source: dict[str, Any] = {
            "run": names.check_name(run_id) if run_id else self.id,
            "kind": kind if run_id else "mount",
            "user": user or self.start.user,
            "host": self.start.host,
            "mount": self.start.mount,
            "client": f"artfs-mount/{__version__}",
        }
        if message:
            source["message"] = message
        return source


@dataclass(frozen=True)
class Caller:
    """The process behind a kernel request (FUSE tells its pid and uid).

    ``mv .staging production`` runs in the user's shell, not in the daemon: its
    ``$ARTFS_RUN`` is read from ``/proc/<pid>/environ``, which the kernel lets
    the daemon read for processes of its own user (all of them, as root).
    """

    pid: int
    uid: int

    def run_id(self) -> str | None:
        """The caller's ``$ARTFS_RUN``, if it has a usable one."""
        try:
            with open(f"/proc/{self.pid}/environ", "rb") as environ:
                variables = environ.read(1 << 20).split(b"\0")
        except OSError:
            return None  # gone already, or not ours to read
        for variable in variables:
            if variable.startswith(b"ARTFS_RUN="):
                value = variable.removeprefix(b"ARTFS_RUN=").decode(errors="replace")
                try:
                    return names.check_name(value)
                except InvalidInput:
                    log.warning("ARTFS_RUN=%r of process %d is no run id; ignored", value, self.pid)
        return None

    def user(self) -> str | None:
        try:
            return pwd.getpwuid(self.uid).pw_name
        except KeyError:
            return None


@dataclass(frozen=True)
class _Use:
    """A run read ``artifact:v<number>``; ``start`` makes the run if it is new."""

    run_id: str
    start: RunStart
    artifact: str
    number: int


class UseRecorder:
    """Tells the registry, once per version and run, what this mount read (module doc)."""

    def __init__(self, registry: RegistryAPI, run: MountRun, retry_after: float = 5.0) -> None:
        self._registry = registry
        self.run = run
        self._retry_after = retry_after
        self._seen: set[tuple[str, str, int]] = set()
        #: A reading process's ``$ARTFS_RUN`` by pid, read again after ``PID_TTL``
        #: seconds: long enough to spare ``/proc`` on every open, too short for a
        #: pid to be reused by another process meanwhile.
        self._runs_by_pid: TTLCache[int, str | None] = TTLCache(maxsize=4096, ttl=PID_TTL)
        self._queue: queue.SimpleQueue[_Use | None] = queue.SimpleQueue()
        self._pending: deque[_Use] = deque()
        self._down = False
        self._thread = threading.Thread(target=self._serve, name="artfs-uses", daemon=True)
        self._thread.start()

    def note(self, artifact: str, number: int, caller: Caller | None = None) -> None:
        """A file of ``artifact:v<number>`` is being opened (by ``caller``); never blocks.

        The mount's own run read it; so did the caller's run, if it has an ``$ARTFS_RUN``.
        """
        self._add(self.run.id, artifact, number, lambda: self.run.start)
        if caller is None:
            return
        if caller.pid in self._runs_by_pid:
            run_id = self._runs_by_pid[caller.pid]
        else:
            run_id = self._runs_by_pid[caller.pid] = caller.run_id()
        if run_id is not None:
            self._add(run_id, artifact, number, lambda: self.run.start_for(caller))

    def _add(self, run_id: str, artifact: str, number: int, start: Callable[[], RunStart]) -> None:
        key = (run_id, artifact, number)
        if key in self._seen:
            return
        self._seen.add(key)
        self._queue.put(_Use(run_id, start(), artifact, number))

    def close(self) -> None:
        """Send what is pending (one last try, ``CLOSE_WAIT`` at most), then stop."""
        self._queue.put(None)
        self._thread.join(CLOSE_WAIT)

    def _serve(self) -> None:
        closing = False
        while not closing:
            try:
                item = self._queue.get(timeout=self._retry_after if self._pending else None)
                while True:  # everything queued now, in one go
                    if item is None:
                        closing = True
                    else:
                        self._pending.append(item)
                    item = self._queue.get_nowait()
            except queue.Empty:
                pass
            self._bound()
            self._send()
        if self._pending:
            log.warning(
                "%d read(s) of this mount not recorded for lineage (the registry was not "
                "reached): %s",
                len(self._pending),
                ", ".join(
                    f"{u.artifact}:v{u.number} by {u.run_id}" for u in list(self._pending)[:5]
                ),
            )

    def _bound(self) -> None:
        dropped = 0
        while len(self._pending) > MAX_PENDING:
            self._pending.popleft()
            dropped += 1
        if dropped:
            log.warning(
                "%d read(s) dropped from lineage: too many waiting for the registry", dropped
            )

    def _send(self) -> None:
        while self._pending:
            use = self._pending[0]
            try:
                self._registry.record_use(use.run_id, use.start, use.artifact, f"v{use.number}")
            except Offline:
                log.info("offline: reads are not recorded for lineage")
                self._pending.clear()
                return
            except Transient as exc:
                if not self._down:
                    log.info("reads not recorded yet, will retry: %s", exc.message)
                self._down = True
                return
            except ArtfsError as exc:  # deleted since, say: nothing to retry
                log.warning(
                    "read of %s:v%d by %s not recorded: %s",
                    use.artifact,
                    use.number,
                    use.run_id,
                    exc.message,
                )
            else:
                if self._down:
                    log.info("the registry answers again: recording reads")
                self._down = False
            self._pending.popleft()
