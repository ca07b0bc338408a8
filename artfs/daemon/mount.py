"""``artfs mount``: check, mount, serve kernel requests until unmounted or signalled.

``mount`` in the background runs the same command with ``--foreground`` in a
new session and waits on a pipe for one line: ``ready`` once the kernel has the
mount, or the error that stopped it. So the command returns exactly when the
mount can be used, and a refusal (bad mountpoint, unreachable registry) is
reported by the command itself, with a non-zero exit.

In the daemon, SIGTERM, SIGINT and SIGHUP end the FUSE loop, which unmounts
cleanly; an outside ``fusermount3 -u`` ends it too.
"""

from __future__ import annotations

import gc
import logging
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import trio

from artfs.cache.arena import ChunkArena
from artfs.cache.chunks import FRESH_BYTES, ChunkCache
from artfs.client.answers import AnswerBook
from artfs.client.failures import unreachable
from artfs.client.offline import OfflineRegistry
from artfs.client.protocol import RegistryAPI
from artfs.client.recording import RecordingClient
from artfs.config import ClientConfig
from artfs.daemon.control import serve_control
from artfs.daemon.kernel_readahead import set_kernel_read_ahead
from artfs.daemon.state import (
    MountRecord,
    control_path_for,
    forget_record,
    log_path_for,
    staging_root_for,
    write_record,
)
from artfs.digests import CHUNK_SIZE
from artfs.errors import ArtfsError, InvalidInput, Transient, error_for_code
from artfs.fetch.fetcher import ChunkFetcher
from artfs.fetch.sources import ReferenceSource, RegistrySource
from artfs.fetch.workers import FetchWorkers, default_worker_count
from artfs.fs import session
from artfs.fs.kernel import FuseKernelCache
from artfs.fs.operations import ArtfsOperations
from artfs.vfs.catalog import Catalog
from artfs.vfs.trace import ReadTrace
from artfs.vfs.tree import Tree, TreeSettings
from artfs.vfs.uses import MountRun, UseRecorder

__all__ = [
    "MountOptions",
    "check_mountpoint",
    "is_mounted",
    "mount_in_background",
    "mounted_message",
    "run_mount",
]

log = logging.getLogger("artfs.daemon")

READY = "ready"
#: The kernel's read-ahead for the mount, in KiB: one chunk, so sequential reads
#: arrive as 1 MiB requests, while an mmap fault's read-around (as large as this)
#: touches at most two chunks (docs/design.md, "A read, traced").
READ_AHEAD_KB = 1024
#: Ranged fetches at once, in threads or across the fetch workers.
MAX_PARALLEL_FETCHES = 16
#: Arena slots: the fresh tier's chunks, every fetch in flight (8 chunks each), spares.
ARENA_SLOTS = FRESH_BYTES // CHUNK_SIZE + MAX_PARALLEL_FETCHES * 8 + 16


@dataclass(frozen=True)
class MountOptions:
    mountpoint: Path
    config: ClientConfig
    cache_dir: Path
    cache_size: int
    read_timeout: float = 30.0
    listing_timeout: float = 1.0
    staging_dir: Path | None = None
    #: The kernel's read-ahead for the mount (see ``daemon.kernel_readahead``).
    read_ahead_kb: int = READ_AHEAD_KB
    #: Let users other than the daemon's in (see ``artfs.fs.session.kernel_options``).
    allow_other: bool = False
    #: Append the ranges readers ask for to this file (``artfs.vfs.trace``).
    trace: Path | None = None
    #: Fetch worker processes (``artfs.fetch.workers``); ``None``: as many as the machine
    #: suits, 0: fetch in the daemon's threads.
    fetch_workers: int | None = None


def is_mounted(mountpoint: Path) -> bool:
    target = str(mountpoint.resolve())
    with open("/proc/self/mounts") as mounts:
        return any(line.split()[1] == target for line in mounts if len(line.split()) > 1)


def check_mountpoint(mountpoint: Path) -> None:
    if not mountpoint.exists():
        raise InvalidInput(f"mountpoint {mountpoint} does not exist")
    if is_mounted(mountpoint):
        raise InvalidInput(f"{mountpoint} is already a mountpoint")
    if not mountpoint.is_dir():
        raise InvalidInput(f"mountpoint {mountpoint} is not a directory")
    if any(mountpoint.iterdir()):
        raise InvalidInput(f"mountpoint {mountpoint} is not empty")


def _setup_logging(log_file: Path, also_stderr: bool) -> None:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handlers: list[logging.Handler] = [logging.FileHandler(log_file)]
    if also_stderr:
        # The terminal gets what needs a person's attention; the log file gets everything.
        terminal = logging.StreamHandler()
        terminal.setLevel(logging.WARNING)
        handlers.append(terminal)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )


def run_mount(options: MountOptions, ready_fd: int | None = None) -> None:
    """Mount and serve in this process until unmounted; report readiness on ``ready_fd``."""
    mountpoint = options.mountpoint.resolve()
    log_file = log_path_for(mountpoint)
    _setup_logging(log_file, also_stderr=ready_fd is None)
    book = AnswerBook(options.cache_dir, options.config.url, options.config.project)
    registry: RegistryAPI = (
        OfflineRegistry(book)
        if options.config.offline
        else RecordingClient(
            options.config,
            book,
            pool_size=32,
            retries=1,
            timeout=30,
            range_timeout=options.read_timeout,
        )
    )
    try:
        check_mountpoint(mountpoint)
        try:
            registry.health()
        except ArtfsError as exc:
            raise Transient(
                f"{unreachable(options.config.url).message}; "
                "'artfs mount --offline' serves what this machine holds"
            ) from exc
        arena = None
        workers_wanted = (
            default_worker_count() if options.fetch_workers is None else options.fetch_workers
        )
        if workers_wanted and not options.config.offline:
            arena = ChunkArena(ARENA_SLOTS)
        cache = ChunkCache(options.cache_dir, options.cache_size, arena=arena)
    except ArtfsError as exc:
        _report(ready_fd, f"error: {exc.code}: {exc.message}")
        raise
    write_record(
        mountpoint,
        MountRecord(
            str(mountpoint),
            os.getpid(),
            options.config.url,
            str(log_file),
            str(control_path_for(mountpoint)),
            project=options.config.project,
            cache_dir=str(options.cache_dir.absolute()),
        ),
    )
    # A listing of 100,000 entries makes as many long-lived nodes; with the
    # default thresholds the cyclic collector rescans them all again and again,
    # a cost that grows with the version. Nothing here relies on prompt
    # collection of cycles, so collect far less often.
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    # Lineage: this mount is a run; what it reads is told to the registry by a thread.
    uses = UseRecorder(registry, MountRun.of(str(mountpoint)))
    workers = (
        None
        if arena is None
        else FetchWorkers(
            options.config,
            arena,
            str(options.cache_dir),
            count=workers_wanted,
            threads=-(-MAX_PARALLEL_FETCHES // workers_wanted),
            range_timeout=options.read_timeout,
            log_file=str(log_file),
        )
    )
    try:
        trio.run(_serve, options, mountpoint, registry, cache, uses, workers, ready_fd)
    except Exception as exc:
        # In the background stderr is /dev/null: the log is the only witness,
        # and a parent still waiting for readiness hears why.
        log.exception("the mount daemon failed")
        _report(ready_fd, f"error: error: the mount daemon failed: {exc}")
        raise
    finally:
        forget_record(mountpoint)
        if workers is not None:
            workers.close()
        uses.close()
        registry.close()
        log.info("unmounted %s", mountpoint)


async def _serve(
    options: MountOptions,
    mountpoint: Path,
    registry: RegistryAPI,
    cache: ChunkCache,
    uses: UseRecorder,
    workers: FetchWorkers | None,
    ready_fd: int | None,
) -> None:
    async with trio.open_nursery() as nursery:
        # One deadline per read: the fetch gives up when its reader does.
        fetcher = ChunkFetcher(
            # Offline, nothing leaves the machine: references too are read from the
            # cache only (by their recorded digest), or refused.
            RegistrySource(registry)
            if isinstance(registry, OfflineRegistry)
            else ReferenceSource(RegistrySource(registry)),
            cache,
            nursery,
            max_parallel=MAX_PARALLEL_FETCHES,
            fetch_timeout=options.read_timeout,
            workers=workers,
        )
        catalog = Catalog(registry, nursery, listing_ttl=options.listing_timeout)
        settings = TreeSettings(
            listing_timeout=options.listing_timeout,
            read_timeout=options.read_timeout,
            uid=os.getuid(),
            gid=os.getgid(),
            staging_root=staging_root_for(
                mountpoint, registry.url, registry.project, options.staging_dir
            ),
        )
        tree = Tree(catalog, fetcher, cache, settings, kernel=FuseKernelCache(), uses=uses)
        if options.trace is not None:
            tree.reads.trace = ReadTrace(options.trace)
        operations = ArtfsOperations(tree)
        try:
            session.init(operations, mountpoint, session.kernel_options(options.allow_other))
        except RuntimeError as exc:
            _report(ready_fd, f"error: error: cannot mount {mountpoint}: {exc}")
            raise
        log.info("mounted %s from %s (project %s)", mountpoint, registry.url, registry.project)
        try:
            nursery.start_soon(_stop_on_signal)
            await nursery.start(serve_control, control_path_for(mountpoint), tree)
            nursery.start_soon(
                _tune_then_report, mountpoint, options.read_ahead_kb, ready_fd, registry.url
            )
            await session.serve()
        finally:
            session.close()
            if tree.reads.trace is not None:
                tree.reads.trace.close()
            control_path_for(mountpoint).unlink(missing_ok=True)
            nursery.cancel_scope.cancel()


async def _tune_then_report(
    mountpoint: Path, read_ahead_kb: int, ready_fd: int | None, url: str
) -> None:
    """Once the kernel's handshake is done, raise the read-ahead; then report ready.

    The handshake (FUSE ``INIT``, answered in ``session.serve``) caps the
    read-ahead at its value of that moment, so it is raised only after: a
    ``stat`` of the mountpoint from a worker thread returns once the daemon
    answers requests, which it does only after ``INIT``.
    """
    try:
        await trio.to_thread.run_sync(os.stat, mountpoint)
    except OSError as exc:
        log.warning("the new mount at %s does not answer: %s", mountpoint, exc)
    else:
        set_kernel_read_ahead(mountpoint, read_ahead_kb)
    if ready_fd is None:
        # In the foreground nobody waits on a pipe: the person at the terminal is told.
        print(f"{mounted_message(url, mountpoint)}; Ctrl-C unmounts", file=sys.stderr, flush=True)
    _report(ready_fd, READY)


async def _stop_on_signal() -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        async for signum in signals:
            log.info("received %s; unmounting", signal.Signals(signum).name)
            session.terminate()
            return


def _report(ready_fd: int | None, line: str) -> None:
    if ready_fd is None:
        return
    try:
        os.write(ready_fd, (line + "\n").encode())
        os.close(ready_fd)
    except OSError:
        pass  # the waiting parent is gone; nothing to tell


def mounted_message(url: str, mountpoint: Path) -> str:
    """What ``mount`` and ``up`` say once the mount is ready: where it is, and its log."""
    return f"artfs: mounted {url} at {mountpoint}; log: {log_path_for(mountpoint.resolve())}"


def mount_in_background(
    argv: list[str], log_file: Path | None = None, timeout: float = 60.0
) -> None:
    """Run ``artfs mount --foreground …`` detached; return once it reports ready.

    A daemon that dies or hangs without a word is reported with ``log_file``,
    the only place that says why (its stderr is /dev/null).
    """
    see_log = f"; see its log: {log_file}" if log_file is not None else ""
    read_end, write_end = os.pipe()
    command = [sys.executable, "-m", "artfs", *argv, "--foreground", "--ready-fd", str(write_end)]
    with open(os.devnull, "rb") as devnull_in, open(os.devnull, "wb") as devnull_out:
        process = subprocess.Popen(
            command,
            stdin=devnull_in,
            stdout=devnull_out,
            stderr=devnull_out,
            pass_fds=(write_end,),
            start_new_session=True,
        )
    os.close(write_end)
    try:
        line = _read_line(read_end, timeout)
    except Transient as exc:
        process.kill()
        process.wait()
        raise Transient(exc.message + see_log) from exc
    except BaseException:
        process.kill()
        process.wait()
        raise
    finally:
        os.close(read_end)
    if line == READY:
        return
    process.wait(timeout=30)
    code, _, message = line.removeprefix("error: ").partition(": ")
    if not message:
        raise ArtfsError(f"the mount daemon exited with status {process.returncode}{see_log}")
    raise error_for_code(code, message)


def _read_line(fd: int, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    data = b""
    while b"\n" not in data:
        remaining = deadline - time.monotonic()
        readable, _, _ = select.select([fd], [], [], max(remaining, 0))
        if not readable:
            raise Transient(f"the mount did not become ready within {timeout:.0f}s")
        piece = os.read(fd, 4096)
        if not piece:  # the daemon died without a word
            break
        data += piece
    return data.decode(errors="replace").strip()
