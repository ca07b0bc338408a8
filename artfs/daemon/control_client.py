"""The CLI's side of the mount daemon's control socket (see ``artfs.daemon.control``).

Kept apart from the daemon's side so that ``artfs commit`` and ``artfs stage``
start without importing trio, the tree and the HTTP client they never use:
on a busy machine those imports took longer than a small commit itself.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from artfs.errors import Transient, error_for_code

__all__ = ["request"]


def request(
    path: Path,
    message: dict[str, Any],
    timeout: float | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Send one request to a mount daemon and return its answer (blocking; for the CLI).

    With ``on_progress``, a commit's progress lines are asked for and passed on
    as ``(bytes uploaded, bytes to upload)`` until the answer comes.
    """
    if on_progress is not None:
        message = {**message, "progress": True}
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(json.dumps(message).encode() + b"\n")
            with sock.makefile("rb") as lines:
                while True:
                    raw = lines.readline()
                    answer: dict[str, Any] = json.loads(raw) if raw.endswith(b"\n") else {}
                    if "progress" not in answer:
                        break
                    if on_progress is not None:
                        on_progress(
                            int(answer["progress"]["sent"]), int(answer["progress"]["total"])
                        )
    except OSError as exc:
        raise Transient(f"cannot reach the mount daemon at {path}: {exc}") from exc
    if not answer:
        raise Transient("the mount daemon closed the connection without answering")
    if not answer.get("ok"):
        raise error_for_code(str(answer.get("code")), str(answer.get("message")))
    return answer
