"""A real ``artfs mount`` for tests: mounted through the CLI, always unmounted after."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from artfs.cache.ondisk import ChunkPlace, cached_chunks, chunk_places
from artfs.daemon.pids import wait_exit

__all__ = ["Mount", "artfs", "artfs_argv", "mounted", "read_chunk", "write_chunk"]


def artfs_argv() -> list[str]:
    """The command line that runs the artfs CLI in a subprocess."""
    return [sys.executable, "-m", "artfs"]


def artfs(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the artfs CLI as a user would; never raises on a non-zero exit."""
    return subprocess.run(
        [*artfs_argv(), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


def _mounted_paths() -> set[str]:
    with open("/proc/self/mounts") as mounts:
        return {line.split()[1] for line in mounts if " fuse" in line}


def read_chunk(place: ChunkPlace) -> bytes:
    """A cached chunk's bytes, from its file or its pack."""
    with open(place.path, "rb") as source:
        return os.pread(source.fileno(), place.size, place.offset)


def write_chunk(place: ChunkPlace, data: bytes) -> None:
    """Overwrite a cached chunk where it lies (to damage it), leaving its neighbours alone."""
    assert len(data) == place.size
    with open(place.path, "r+b") as target:
        os.pwrite(target.fileno(), data, place.offset)


class Mount:
    def __init__(self, path: Path, registry_url: str, cache_dir: Path, *extra: str) -> None:
        self.path = path
        self.registry_url = registry_url
        self.cache_dir = cache_dir
        self.extra = extra

    def mount(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        result = artfs(
            "mount",
            str(self.path),
            "--registry",
            self.registry_url,
            "--cache-dir",
            str(self.cache_dir),
            *self.extra,
        )
        if result.returncode != 0:
            raise RuntimeError(f"artfs mount failed: {result.stderr}")
        assert str(self.path) in _mounted_paths(), "mount returned but nothing is mounted"

    def daemon_pid(self) -> int | None:
        from artfs.daemon.state import read_record

        record = read_record(self.path.resolve())
        return None if record is None else record.pid

    def unmount(self) -> None:
        """Unmount whatever state things are in; leave no mount and no daemon behind."""
        pid = self.daemon_pid()
        if str(self.path) in _mounted_paths():
            result = artfs("umount", str(self.path), timeout=60)
            if result.returncode != 0 and str(self.path) in _mounted_paths():
                subprocess.run(["fusermount3", "-u", "-z", str(self.path)], check=False)
        if pid is not None and not wait_exit(pid, 15):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def chunks(self) -> dict[tuple[str, int], ChunkPlace]:
        """The chunks cached now, in files of their own or in finished packs."""
        return chunk_places(self.cache_dir)

    def cached_bytes(self) -> int:
        """Bytes of the chunks cached now, in files of their own or in packs."""
        return sum(cached_chunks(self.cache_dir).values())

    def log_text(self) -> str:
        from artfs.daemon.state import log_path_for

        path = log_path_for(self.path.resolve())
        return path.read_text() if path.exists() else ""


@contextlib.contextmanager
def mounted(path: Path, registry_url: str, cache_dir: Path, *extra: str) -> Iterator[Mount]:
    mount = Mount(path, registry_url, cache_dir, *extra)
    try:
        mount.mount()
        yield mount
    finally:
        mount.unmount()
