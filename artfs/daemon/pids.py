"""Whether a daemon process still runs, and waiting for it to exit.

A process that has exited but that its parent has not reaped yet (a zombie)
counts as gone: it holds nothing anymore, and waiting for a slow reaper (an
init that reaps every second or two, as in some containers) made every
``artfs umount`` wait as long.
"""

from __future__ import annotations

import os
import time

__all__ = ["running", "wait_exit"]


def running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            # The state follows the command name, which may itself hold ")".
            state = stat.read().rpartition(b")")[2].split()[:1]
    except FileNotFoundError:
        return False
    except OSError:
        state = []  # no /proc to ask: only whether the pid exists
    if state:
        return state[0] not in (b"Z", b"X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wait_exit(pid: int, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``pid`` to exit; whether it did."""
    deadline = time.monotonic() + timeout
    while running(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True
