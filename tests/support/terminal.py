"""Running a command with its stderr on a pseudo-terminal, as a person at a shell has it."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import termios
from collections.abc import Sequence

__all__ = ["run_on_a_terminal"]


def run_on_a_terminal(
    argv: Sequence[str], env: dict[str, str] | None = None, timeout: float = 120
) -> tuple[bytes, str, int]:
    """``argv`` with stderr on a pty and stdout on a pipe: (what it drew, stdout, status)."""
    leader, follower = pty.openpty()
    # A new pty is 0x0; tqdm would fit its bar into zero columns.
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    try:
        process = subprocess.Popen(list(argv), env=env, stdout=subprocess.PIPE, stderr=follower)
        os.close(follower)
        follower = -1
        drawn = b""
        while True:
            try:
                piece = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not piece:
                break
            drawn += piece
        stdout, _ = process.communicate(timeout=timeout)
    finally:
        os.close(leader)
        if follower != -1:
            os.close(follower)
    return drawn, stdout.decode(), process.returncode
