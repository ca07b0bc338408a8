"""A server a test starts: its own process group, its output in a log file, and the
whole group stopped (TERM, then KILL) when the block ends, children included.

A group whose test process was killed before the block ended is killed by the next
``started`` (tests/support/orphans.py), so no SIGKILLed pytest leaves servers behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.orphans import kill_recorded_group, owned, record_group, sweep

__all__ = ["started"]


@contextmanager
def started(argv: list[str], log: Path, grace: float = 10.0) -> Iterator[subprocess.Popen[bytes]]:
    """``argv`` running until the block ends, then ``grace`` seconds to stop."""
    sweep("group", kill_recorded_group)
    with owned("group") as folder, open(log, "wb") as output:
        process = subprocess.Popen(
            argv, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
        record_group(folder, process.pid)
        try:
            yield process
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
