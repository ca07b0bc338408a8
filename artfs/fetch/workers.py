"""``FetchWorkers``: the mount daemon's pool of fetch worker processes.

Fetching, verifying and storing a chunk need no FUSE and no trio loop, but
done in the daemon's threads they queue behind its one interpreter lock with
the replies to the kernel. So the daemon hands them to worker processes
(``artfs.fetch.worker_main``), which share its cache directory and its chunk
arena (``artfs.cache.arena``); what comes back is a ``Stored`` message per chunk,
"verified in its slot, written at this place", on which the daemon lists it
and wakes its readers. docs/design.md, "Fetch workers".

This module only runs the processes and routes messages: ``submit`` sends a
task to the worker with the fewest in hand and calls the task's callbacks on
the trio thread as its replies come (``on_stored`` per chunk, ``on_end`` once).
A worker that dies ends each of its tasks with ``Transient``, which the
fetcher retries like a dropped connection, on a worker started afresh. Workers
that keep dying (more than ``MAX_DEATHS`` a minute) are given up on: ``usable``
turns false and the fetcher goes back to its threads.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from pathlib import Path

import trio

import artfs
from artfs.cache.arena import ChunkArena
from artfs.config import ClientConfig
from artfs.errors import ArtfsError, Transient, error_for_code
from artfs.fetch.work import FetchTask, Finished, Stored, WorkerSetup

__all__ = ["MAX_DEATHS", "FetchWorkers", "default_worker_count"]

log = logging.getLogger("artfs.fetch")

#: Worker deaths in a minute after which the pool is given up on.
MAX_DEATHS = 5


def _same_code_env() -> dict[str, str]:
    """The daemon's environment, with the daemon's own ``artfs`` package first on the path:
    a worker runs the code its daemon runs, wherever that was imported from."""
    package_root = str(Path(artfs.__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": package_root + (os.pathsep + path if path else "")}


def default_worker_count() -> int:
    """Half the machine's cores, at least 2 and at most 8: the rest serve the readers."""
    return max(2, min(8, (os.cpu_count() or 2) // 2))


@dataclass
class _Task:
    on_stored: Callable[[Stored], None]
    on_end: Callable[[ArtfsError | None], None]


@dataclass(eq=False)
class _Worker:
    process: subprocess.Popen[bytes]
    connection: Connection
    tasks: dict[int, _Task] = field(default_factory=dict)
    alive: bool = True


class FetchWorkers:
    def __init__(
        self,
        config: ClientConfig,
        arena: ChunkArena,
        cache_root: str,
        *,
        count: int,
        threads: int,
        range_timeout: float,
        log_file: str | None,
    ) -> None:
        self._setup = WorkerSetup(
            config,
            range_timeout,
            arena.path,
            arena.size,
            arena.slot_bytes,
            cache_root,
            threads,
            log_file,
        )
        self._log_file = log_file
        self.count = count
        self._workers: list[_Worker] = []
        self._task_ids = itertools.count(1)
        self._deaths: list[float] = []
        #: Workers that stopped, to be waited for (reaped) once they have exited.
        self._stopped: list[subprocess.Popen[bytes]] = []
        self._token: trio.lowlevel.TrioToken | None = None
        self.usable = True

    def pids(self) -> list[int]:
        """The live workers' process ids (for tests and the benchmark's CPU split)."""
        return [w.process.pid for w in self._workers if w.alive]

    def submit(
        self,
        task: FetchTask,
        on_stored: Callable[[Stored], None],
        on_end: Callable[[ArtfsError | None], None],
    ) -> None:
        """Send ``task`` (its ``task_id`` is set here) to a worker. Call on the trio thread;
        the callbacks run there too, ``on_end`` exactly once."""
        self._token = trio.lowlevel.current_trio_token()
        task = replace(task, task_id=next(self._task_ids))
        try:
            worker = self._least_busy()
        except OSError as exc:
            on_end(Transient(f"cannot start a fetch worker: {exc}"))
            return
        worker.tasks[task.task_id] = _Task(on_stored, on_end)
        try:
            worker.connection.send(task)
        except OSError:
            self._died(worker)  # ends this task too, as Transient

    def _least_busy(self) -> _Worker:
        alive = [w for w in self._workers if w.alive]
        self._workers = alive
        if len(alive) < self.count:
            worker = self._start()
            self._workers.append(worker)
            return worker
        return min(alive, key=lambda w: len(w.tasks))

    def _start(self) -> _Worker:
        ours, theirs = socket.socketpair()
        try:
            stderr = open(self._log_file, "ab") if self._log_file else subprocess.DEVNULL  # noqa: SIM115
            try:
                process = subprocess.Popen(
                    [sys.executable, "-m", "artfs.fetch.worker_main", str(theirs.fileno())],
                    env=_same_code_env(),
                    pass_fds=(theirs.fileno(),),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                )
            finally:
                if not isinstance(stderr, int):
                    stderr.close()
        finally:
            theirs.close()
        connection = Connection(ours.detach())
        worker = _Worker(process, connection)
        try:
            connection.send(self._setup)
        except OSError:
            worker.alive = False
        threading.Thread(
            target=self._receive, args=(worker,), name=f"fetch-worker-{process.pid}", daemon=True
        ).start()
        return worker

    def _receive(self, worker: _Worker) -> None:
        """A thread per worker: its replies, handed to the trio thread in order."""
        token = self._token
        assert token is not None
        while True:
            try:
                reply = worker.connection.recv()
            except (EOFError, OSError):
                reply = None
            try:
                if reply is None:
                    token.run_sync_soon(self._died, worker)
                    return
                token.run_sync_soon(self._on_reply, worker, reply)
            except trio.RunFinishedError:
                return  # unmounted: nobody is waiting any more

    def _on_reply(self, worker: _Worker, reply: object) -> None:
        if isinstance(reply, Stored):
            task = worker.tasks.get(reply.task_id)
            if task is not None:
                task.on_stored(reply)
        elif isinstance(reply, Finished):
            ended = worker.tasks.pop(reply.task_id, None)
            if ended is not None:
                error = None if reply.error is None else error_for_code(*reply.error)
                ended.on_end(error)

    def _died(self, worker: _Worker) -> None:
        if not worker.alive and not worker.tasks:
            return
        worker.alive = False
        _hang_up(worker.connection)
        code = worker.process.poll()
        log.warning(
            "fetch worker %d stopped (exit status %s) with %d tasks in hand; retrying them",
            worker.process.pid,
            code,
            len(worker.tasks),
        )
        self._stopped = [p for p in self._stopped if p.poll() is None]
        if code is None:
            worker.process.kill()  # its socket broke: whatever it is doing is of no use
            self._stopped.append(worker.process)
        tasks, worker.tasks = worker.tasks, {}
        for task in tasks.values():
            task.on_end(Transient(f"fetch worker {worker.process.pid} stopped"))
        now = time.monotonic()
        self._deaths = [t for t in self._deaths if now - t < 60] + [now]
        if len(self._deaths) > MAX_DEATHS and self.usable:
            log.error("fetch workers keep stopping; fetching in the daemon's threads instead")
            self.usable = False

    def close(self) -> list[int]:
        """Stop every worker: its socket hung up, it exits. One that has not exited
        5 seconds later is killed; says which ones were (their pids)."""
        workers, self._workers = self._workers, []
        for worker in workers:
            worker.alive = False
            _hang_up(worker.connection)
        deadline = time.monotonic() + 5
        killed: list[int] = []
        for process in [*(w.process for w in workers), *self._stopped]:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("fetch worker %d did not stop when hung up on; killed", process.pid)
                process.kill()
                process.wait()
                killed.append(process.pid)
        self._stopped = []
        return killed


def _hang_up(connection: Connection) -> None:
    """Close a worker's socket so that the worker sees its end now.

    ``close`` alone does not do it while the receiver thread is blocked reading
    the socket: that read holds the socket open, the worker never sees EOF and
    would only stop when killed.
    """
    try:
        with socket.fromfd(connection.fileno(), socket.AF_UNIX, socket.SOCK_STREAM) as dup:
            dup.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed, or the worker already gone
    connection.close()
