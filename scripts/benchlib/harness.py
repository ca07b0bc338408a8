"""What every bench row needs: timed subprocesses with CPU, the registry's HTTP API, fresh
mounts, dropping the page cache, test data and cleaning up after a failure."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import requests

from artfs.cache.ondisk import ChunkPlace, cached_chunks, chunk_places
from artfs.daemon.pids import wait_exit

ROOT = Path(__file__).resolve().parent.parent.parent
ARTFS = Path(sys.executable).with_name("artfs")
CURL = shutil.which("curl") or "/usr/bin/curl"
PROJECT = "default"
SMALL_SIZE = 4096
MiB = 1 << 20
GENERATE_BLOCK = 16 << 20
#: Random bytes behind every big test file (see ``pattern_blocks``).
PATTERN_SIZE = 16 << 20
#: Manifest entries per request, as the SDK batches them.
MANIFEST_BATCH = 10_000
#: Distinct blobs behind a many-file version (as in the registry API test): rows 8-9, S6.
MANY_DISTINCT = 100
XDG_KINDS = ("CONFIG", "CACHE", "DATA", "STATE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
#: Any step touching a mount gives up after this long instead of hanging the bench.
STEP_TIMEOUT = 900.0
DROP_CACHES = Path("/proc/sys/vm/drop_caches")
T = TypeVar("T")


@dataclass(frozen=True)
class Sample:
    """One timed subprocess: wall seconds and the CPU seconds spent meanwhile."""

    wall: float
    client_cpu: float
    server_cpu: float
    #: CPU of the mount daemon meanwhile (mount rows only): the FUSE-serving process alone.
    daemon_cpu: float = 0.0
    #: CPU of the daemon's descendants meanwhile (worker processes, live or reaped).
    workers_cpu: float = 0.0


class BenchMount:
    """One ``artfs mount`` (daemonized by the CLI), with its daemon's pid from its record."""

    def __init__(self, path: Path, url: str, cache_dir: Path, records: Path, *extra: str) -> None:
        self.path = path
        self.url = url
        self.cache_dir = cache_dir
        self.records = records
        self.extra = extra

    def mount(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [
                str(ARTFS), "mount", str(self.path), "--registry", self.url,
                "--cache-dir", str(self.cache_dir), *self.extra,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )  # fmt: skip
        if done.returncode != 0 or str(self.path) not in mounted_paths():
            raise RuntimeError(f"artfs mount failed ({done.returncode}): {done.stderr[-2000:]}")

    def daemon_pid(self) -> int:
        pid = recorded_daemon_pid(self.records, self.path)
        if pid is None:
            raise RuntimeError(f"no daemon record for {self.path}")
        return pid

    def unmount(self) -> None:
        """``artfs umount``, ``fusermount3 -u -z`` as the fallback; the daemon is waited for."""
        pid = recorded_daemon_pid(self.records, self.path)
        if str(self.path) in mounted_paths():
            subprocess.run(
                [str(ARTFS), "umount", str(self.path)], capture_output=True, timeout=60, check=False
            )
            if str(self.path) in mounted_paths():
                subprocess.run(["fusermount3", "-u", "-z", str(self.path)], check=False)
        if pid is not None:
            wait_gone(pid, 15.0)

    def chunks(self) -> dict[tuple[str, int], ChunkPlace]:
        """The chunks cached now, in files of their own or in finished packs."""
        return chunk_places(self.cache_dir)

    def cached_bytes(self) -> int:
        """Bytes of the chunks cached now, in files of their own or in packs."""
        return sum(cached_chunks(self.cache_dir).values())


class Harness:
    def __init__(self, work: Path, url: str, server_pid: int) -> None:
        self.work = work
        self.url = url
        self.server_pid = server_pid
        self.api = f"{url}/api/v1/projects/{PROJECT}"
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {os.environ['ARTFS_TOKEN']}"
        self.env = {**os.environ, "ARTFS_URL": url, "ARTFS_PROJECT": PROJECT}
        self._mounts = itertools.count(1)
        self.records = work / "home" / "state" / "artfs" / "mounts"
        #: Whether ``drop_caches`` worked every time it was asked for.
        self.dropped_caches: bool | None = None

    def server_cpu(self) -> float:
        return tree_cpu(self.server_pid)

    def timed(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | None = None,
        to_devnull: bool = False,
        daemon_pid: int | None = None,
        timeout: float | None = STEP_TIMEOUT,
    ) -> tuple[Sample, str]:
        """Wall and CPU seconds of one subprocess, after flushing earlier writes."""
        sample, done = self.run_timed(
            argv, cwd=cwd, to_devnull=to_devnull, daemon_pid=daemon_pid, timeout=timeout
        )
        return sample, done.stdout or ""

    def run_timed(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | None = None,
        to_devnull: bool = False,
        daemon_pid: int | None = None,
        timeout: float | None = STEP_TIMEOUT,
    ) -> tuple[Sample, subprocess.CompletedProcess[str]]:
        """``timed``, returning the whole finished process (stdout and stderr)."""
        os.sync()
        client_before, server_before = children_cpu(), self.server_cpu()
        daemon_before = process_cpu(daemon_pid) if daemon_pid else 0.0
        family_before = family_cpu(daemon_pid) if daemon_pid else 0.0
        start = time.perf_counter()
        with profiled(daemon_pid):
            done = subprocess.run(
                argv,
                env=self.env,
                cwd=cwd,
                stdout=subprocess.DEVNULL if to_devnull else subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                timeout=timeout,
                check=False,
            )
        elapsed = time.perf_counter() - start
        daemon = (process_cpu(daemon_pid) - daemon_before) if daemon_pid else 0.0
        family = (family_cpu(daemon_pid) - family_before) if daemon_pid else 0.0
        sample = Sample(
            elapsed,
            children_cpu() - client_before,
            self.server_cpu() - server_before,
            daemon,
            max(0.0, family - daemon),
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(argv[:4])} … exited {done.returncode}:\n{done.stderr[-2000:]}"
            )
        return sample, done

    def cat(self, *paths: Path, daemon_pid: int | None = None) -> Sample:
        """``cat PATH > /dev/null`` (several paths: one ``cat`` each, in parallel), timed."""
        if len(paths) == 1:
            return self.timed(["cat", str(paths[0])], to_devnull=True, daemon_pid=daemon_pid)[0]
        script = " ".join(f'cat "${i}" > /dev/null &' for i in range(1, len(paths) + 1)) + " wait"
        return self.timed(
            ["sh", "-c", script, "sh", *map(str, paths)], to_devnull=True, daemon_pid=daemon_pid
        )[0]

    def curl_get(self, *urls: str) -> Sample:
        """``curl -o /dev/null URL`` (several: one ``curl`` each, in parallel), timed."""
        script = " ".join(
            f'curl -sS --fail -H "Authorization: Bearer $ARTFS_TOKEN" -o /dev/null "${i}" &'
            for i in range(1, len(urls) + 1)
        )
        return self.timed(["sh", "-c", f"{script} wait", "sh", *urls], to_devnull=True)[0]

    def pending_upload(self, name: str, entries: list[dict[str, Any]]) -> str:
        """A PENDING upload referencing ``entries``, so the server accepts their blob PUTs."""
        first, rest = entries[:MANIFEST_BATCH], entries[MANIFEST_BATCH:]
        answer = self.http.post(f"{self.api}/artifacts/{name}/uploads", json={"files": first})
        answer.raise_for_status()
        upload_id: str = answer.json()["upload_id"]
        for start in range(0, len(rest), MANIFEST_BATCH):
            more = self.http.post(
                f"{self.api}/uploads/{upload_id}/files",
                json={"files": rest[start : start + MANIFEST_BATCH]},
            )
            more.raise_for_status()
        return upload_id

    def commit_upload(self, upload_id: str) -> dict[str, Any]:
        committed = self.http.post(f"{self.api}/uploads/{upload_id}/commit", json={})
        committed.raise_for_status()
        version: dict[str, Any] = committed.json()
        return version

    def check_stored(self, digests: list[str]) -> None:
        for start in range(0, len(digests), MANIFEST_BATCH):
            answer = self.http.post(
                f"{self.api}/blobs/missing",
                json={"digests": digests[start : start + MANIFEST_BATCH]},
            )
            answer.raise_for_status()
            if missing := answer.json()["missing"]:
                raise RuntimeError(f"{len(missing)} blobs missing on the server")

    def many_files_version(self, name: str, total: int) -> tuple[str, str, str]:
        """A ``total``-file version over 100 small blobs (fewer files: one blob each),
        through the HTTP API."""
        # Only blobs the upload names may be sent: the registry refuses the others.
        distinct = min(total, MANY_DISTINCT)
        contents = [f"artfs bench {name} blob {i}\n".encode() for i in range(distinct)]
        digests = [hashlib.sha256(data).hexdigest() for data in contents]
        entries: list[dict[str, Any]] = [
            {
                "path": f"d{i % 97:02d}/f{i:06d}.bin",
                "size": len(contents[i % distinct]),
                "digest": digests[i % distinct],
            }
            for i in range(total)
        ]
        upload_id = self.pending_upload(name, entries)
        for data, digest in zip(contents, digests, strict=True):
            answer = self.http.put(
                self.blob_url(digest),
                data=data,
                headers={"Content-Type": "application/octet-stream"},
            )
            answer.raise_for_status()
        version = self.commit_upload(upload_id)
        if version["file_count"] != total:
            raise RuntimeError(f"{name} committed {version['file_count']} files, not {total}")
        middle = sorted(entries, key=lambda entry: entry["path"])[total // 2]
        first_byte = contents[digests.index(middle["digest"])][:1].hex()
        return str(version["version"]), str(middle["path"]), first_byte

    def blob_url(self, digest: str) -> str:
        return f"{self.api}/blobs/{digest}"

    def curl_put(self, path: Path, digest: str) -> Sample:
        """``curl -T PATH`` to the blob endpoint (the caller made a pending upload first)."""
        return self.timed(
            [
                CURL, "-sS", "--fail", "-o", os.devnull, "-H", "Expect:",
                "-H", authorization(),
                "-H", "Content-Type: application/octet-stream",
                "-T", str(path), self.blob_url(digest),
            ]
        )[0]  # fmt: skip

    def artfs_push(self, name: str, path: Path) -> tuple[Sample, str]:
        sample, out = self.timed([str(ARTFS), "push", name, str(path)])
        version = out.strip().splitlines()[-1]
        if not version.startswith("v"):
            raise RuntimeError(f"artfs push printed {out!r}, not a version id")
        return sample, version

    def cli_start(self, *args: str) -> float:
        """Median wall seconds of ``artfs ARGS`` (interpreter start and imports)."""
        runs = [self.timed([str(ARTFS), *args])[0].wall for _ in range(3)]
        return sorted(runs)[1]

    @contextlib.contextmanager
    def fresh_mount(
        self,
        *extra: str,
        cache_dir: Path | None = None,
        mount_seconds: list[float] | None = None,
        url: str | None = None,
    ) -> Iterator[BenchMount]:
        """A new mountpoint over a new empty cache dir (or ``cache_dir``); unmounted after.

        ``url``: another registry than the bench's own (the ``s3`` rows' second one).

        The time ``artfs mount`` took is appended to ``mount_seconds``.
        """
        base = self.work / "mounts" / f"m{next(self._mounts):03d}"
        mount = BenchMount(
            base / "mnt", url or self.url, cache_dir or base / "cache", self.records, *extra
        )
        try:
            start = time.perf_counter()
            mount.mount()
            if mount_seconds is not None:
                mount_seconds.append(time.perf_counter() - start)
            yield mount
        finally:
            mount.unmount()
        if str(mount.path) not in mounted_paths() and cache_dir is None:
            shutil.rmtree(base, ignore_errors=True)

    def drop_caches(self) -> None:
        """``sync; echo 3 > /proc/sys/vm/drop_caches`` (root only; noted when it fails)."""
        os.sync()
        try:
            DROP_CACHES.write_text("3\n")
        except OSError:
            self.dropped_caches = False
        else:
            if self.dropped_caches is None:
                self.dropped_caches = True


#: Where ``ARTFS_BENCH_PROFILE`` asks for a py-spy profile of the mount daemon during each
#: timed step (collapsed stacks, one file per step): how a row's bottleneck is measured.
PROFILE_DIR = os.environ.get("ARTFS_BENCH_PROFILE")
_profiles = itertools.count(1)


@contextlib.contextmanager
def profiled(daemon_pid: int | None) -> Iterator[None]:
    """Record the daemon (its threads, native frames too) with py-spy while the step runs."""
    if not PROFILE_DIR or not daemon_pid:
        yield
        return
    out = Path(PROFILE_DIR) / f"step{next(_profiles):03d}-pid{daemon_pid}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    spy = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(daemon_pid),
            "--rate", "250", "--threads", "--format", "raw", "--output", str(out), "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=30)


def authorization() -> str:
    """The header presenting the bench's registry token (set in the bench's environment)."""
    return f"Authorization: Bearer {os.environ['ARTFS_TOKEN']}"


def mounted_paths() -> set[str]:
    with open("/proc/self/mounts") as mounts:
        return {line.split()[1] for line in mounts if " fuse" in line}


def wait_gone(pid: int, timeout: float) -> None:
    """Wait for ``pid`` to exit; SIGKILL it after ``timeout``."""
    if not wait_exit(pid, timeout):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def recorded_daemon_pid(records: Path, mountpoint: Path) -> int | None:
    """The pid in the mount daemon's record (``<state>/artfs/mounts/*.json``) of ``mountpoint``.

    Read here rather than through ``artfs.daemon.state``: artfs/ may change during a run.
    """
    target = str(mountpoint.resolve())
    for record in records.glob("*.json"):
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            found = json.loads(record.read_text())
            if found["mountpoint"] == target:
                return int(found["pid"])
    return None


def process_cpu(pid: int, *, reaped_children: bool = False) -> float:
    """utime + stime of a live process (all its threads), in seconds; with
    ``reaped_children`` also cutime + cstime (its children that exited and were waited for)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS


def family_cpu(pid: int) -> float:
    """CPU of a process and all its descendants, live ones and those already reaped."""
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += process_cpu(current, reaped_children=True)
        todo.extend(child_pids(current))
    return total


def child_pids(pid: int) -> list[int]:
    """The children of every thread of ``pid`` (a worker pool may be started by any)."""
    found: list[int] = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(FileNotFoundError):
            found.extend(int(child) for child in children.read_text().split())
    return found


def tree_cpu(pid: int) -> float:
    """``process_cpu`` of a process and all its live descendants (a server's workers)."""
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += process_cpu(current)
        todo.extend(child_pids(current))
    return total


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def code_version() -> str:
    """``<commit>`` or ``<commit>+dirty.<hash of the diff>`` of the code under test."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False
        )
        return done.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    diff = git("diff", "HEAD", "--", "artfs")
    untracked = git("ls-files", "--others", "--exclude-standard", "--", "artfs")
    dirty = diff + untracked
    return commit + (f"+dirty.{hashlib.sha256(dirty.encode()).hexdigest()[:8]}" if dirty else "")


def file_name(i: int) -> str:
    return f"f{i:06d}.bin"


@functools.cache
def _pattern() -> bytes:
    return os.urandom(PATTERN_SIZE)


def pattern_blocks(size: int, tag: bytes) -> Iterator[bytes]:
    """``size`` bytes in MiB blocks: a random pattern (made once per bench) whose every MiB
    starts with ``tag`` and its index, so that no two chunks and no two files (of different
    tags) are alike, at the speed of a memory copy."""
    base = _pattern()
    for index in range(-(-size // MiB)):
        offset = index * MiB % PATTERN_SIZE
        block = bytearray(base[offset : offset + min(MiB, size - index * MiB)])
        marker = tag + b":" + index.to_bytes(8, "little")
        block[: len(marker)] = marker[: len(block)]
        yield bytes(block)


def write_pattern(path: Path, size: int, tag: bytes) -> str:
    """Write ``pattern_blocks(size, tag)`` to ``path``; returns their sha256."""
    hasher = hashlib.sha256()
    with open(path, "wb") as out:
        for block in pattern_blocks(size, tag):
            hasher.update(block)
            out.write(block)
    return hasher.hexdigest()


def write_small_files(directory: Path, count: int) -> list[str]:
    directory.mkdir(parents=True)
    digests = []
    for i in range(count):
        data = os.urandom(SMALL_SIZE)
        (directory / file_name(i)).write_bytes(data)
        digests.append(hashlib.sha256(data).hexdigest())
    return digests


def time_bare_creates(directory: Path, count: int) -> float:
    """Seconds to create ``count`` small files (open, write, close) in a new directory.

    The least any copy of that many files into ``directory``'s disk costs right
    now: on ext4 without a journal, creating files after many deletions costs
    far more than usual, and the benchmark deletes a lot.
    """
    directory.mkdir(parents=True)
    payload = os.urandom(SMALL_SIZE)
    started = time.perf_counter()
    for i in range(count):
        fd = os.open(directory / file_name(i), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, payload)
        finally:
            os.close(fd)
    return time.perf_counter() - started


def sha256_file(path: Path) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(GENERATE_BLOCK), b""):
            hasher.update(block)
    return hasher.hexdigest()


def leftover_cleanup(work: Path, records: Path) -> list[str]:
    """Unmount whatever is still mounted under ``work`` and end its daemons (by pid)."""
    problems = []
    prefix = str(work) + os.sep
    for path in sorted(p for p in mounted_paths() if p.startswith(prefix)):
        subprocess.run([str(ARTFS), "umount", path], capture_output=True, timeout=60, check=False)
        subprocess.run(["fusermount3", "-u", "-z", path], capture_output=True, check=False)
        problems.append(f"had to unmount {path}")
    for record in records.glob("*.json"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            pid = int(json.loads(record.read_text())["pid"])
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
                problems.append(f"had to stop mount daemon {pid}")
    return problems


def both(run: int, artfs: Callable[[], T], reference: Callable[[], T]) -> tuple[T, T]:
    """Run both sides of a row (artfs, reference); which goes first alternates with the run."""
    if run % 2:
        first = artfs()
        return first, reference()
    second = reference()
    return artfs(), second
