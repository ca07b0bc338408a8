"""Servers the tests start, found and stopped again when the test process that started
them died without stopping them (a SIGKILLed pytest, or its xdist worker).

Each server has a folder of its own under one well-known root (``ROOT``, per user)
whose ``owner`` file names the test process that started it: its pid and the time
the kernel started it, so a pid used again by another process is not taken for the
owner. Whoever starts a server of a kind first sweeps that kind: every folder whose
owner is gone has its server stopped (by the ``stop`` the kind gives) and is
removed. A folder with no owner yet is being made; one still without an owner after
``UNOWNED_GRACE`` seconds was left by a process killed while it made it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["ROOT", "kill_recorded_group", "owned", "record_group", "sweep"]

#: Where every server folder lives; the PostgreSQL user must be able to pass through.
ROOT = Path(tempfile.gettempdir()) / f"artfs-test-servers-{os.getuid()}"
OWNER = "owner"
GROUP = "group"
UNOWNED_GRACE = 600.0


def _start_time(pid: int) -> int | None:
    """When the kernel started ``pid`` (clock ticks since boot); ``None`` if it is gone."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The name (field 2) may hold spaces and parentheses: count from its end.
    return int(stat_line.rpartition(")")[2].split()[19])


def _identity(pid: int) -> str:
    return f"{pid} {_start_time(pid)}\n"


def _running(identity: str) -> int | None:
    """The pid that ``identity`` names, if that very process still runs."""
    pid, _, start = identity.strip().partition(" ")
    if not pid.isdigit() or str(_start_time(int(pid))) != start:
        return None
    return int(pid)


def _root() -> Path:
    ROOT.mkdir(mode=0o755, exist_ok=True)
    # Ours, and no link planted by someone else: the sweep stops what it names.
    found = os.lstat(ROOT)
    if not stat.S_ISDIR(found.st_mode) or found.st_uid != os.getuid():
        raise RuntimeError(f"{ROOT} is not a folder of this user's")
    return ROOT


@contextmanager
def owned(kind: str) -> Iterator[Path]:
    """A new folder under ``ROOT`` that names this process as its owner; removed when the
    block ends. Orphans of ``kind`` are swept (``sweep``) by the caller first."""
    folder = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=_root()))
    try:
        (folder / OWNER).write_text(_identity(os.getpid()))
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def sweep(kind: str, stop: Callable[[Path], None]) -> list[Path]:
    """Stop (``stop(folder)``) and remove the servers of ``kind`` whose owner is gone;
    the folders swept."""
    swept: list[Path] = []
    for folder in sorted(_root().glob(f"{kind}-*")):
        try:
            owner = (folder / OWNER).read_text()
        except FileNotFoundError:
            with contextlib.suppress(FileNotFoundError):
                if time.time() - folder.stat().st_mtime < UNOWNED_GRACE:
                    continue  # being made right now
            owner = ""
        except NotADirectoryError:
            continue
        if _running(owner) is not None:
            continue
        stop(folder)
        shutil.rmtree(folder, ignore_errors=True)
        swept.append(folder)
    return swept


def record_group(folder: Path, pid: int) -> None:
    """Note that the process group ``pid`` leads belongs to ``folder``'s owner."""
    (folder / GROUP).write_text(_identity(pid))


def kill_recorded_group(folder: Path) -> None:
    """A ``stop`` for ``sweep``: kill the process group of ``record_group``, if its
    leader still runs (a group whose leader is gone is not named by its pid any more)."""
    try:
        leader = _running((folder / GROUP).read_text())
    except FileNotFoundError:
        return
    if leader is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(leader, signal.SIGKILL)
