"""``artfs umount``: unmount, and make sure the daemon behind the mount has exited.

Unmounting needs no registry: ``fusermount3 -u`` goes to the kernel, and the
daemon's shutdown does no network I/O. A mount whose daemon died ("transport
endpoint is not connected") is detached lazily instead.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

from artfs.daemon.mount import is_mounted
from artfs.daemon.pids import wait_exit
from artfs.daemon.state import forget_record, read_record
from artfs.errors import Conflict, InvalidInput

__all__ = ["unmount"]


def unmount(mountpoint: Path, timeout: float = 15.0) -> None:
    mountpoint = mountpoint.absolute()
    record = read_record(mountpoint.resolve()) if mountpoint.exists() else None
    if not _listed(mountpoint):
        raise InvalidInput(f"{mountpoint} is not mounted")
    result = subprocess.run(
        ["fusermount3", "-u", str(mountpoint)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        message = result.stderr.strip()
        if "busy" in message.lower():
            raise Conflict(f"{mountpoint} is busy: close the files and shells using it")
        # A dead daemon leaves a mount nobody serves: detach it.
        subprocess.run(
            ["fusermount3", "-u", "-z", str(mountpoint)], capture_output=True, check=False
        )
    if record is not None:
        if not wait_exit(record.pid, timeout):
            with contextlib.suppress(ProcessLookupError):
                os.kill(record.pid, signal.SIGKILL)
        forget_record(Path(record.mountpoint))


def _listed(mountpoint: Path) -> bool:
    # ``is_mounted`` resolves the path, which fails on a dead mount; compare the raw path too.
    target = str(mountpoint)
    with open("/proc/self/mounts") as mounts:
        if any(line.split()[1] == target for line in mounts if len(line.split()) > 1):
            return True
    try:
        return is_mounted(mountpoint)
    except OSError:
        return False
