"""The CLI's side of the mount daemon's control socket (see ``artfs.daemon.control``).

Kept apart from the daemon's side so that ``artfs commit`` and ``artfs stage``
start without importing trio, the tree and the HTTP client they never use:
on a busy machine those imports took longer than a small commit itself.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from artfs.errors import Transient, error_for_code

__all__ = ["request"]


def request(path: Path, message: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
    """Send one request to a mount daemon and return its answer (blocking; for the CLI)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(json.dumps(message).encode() + b"\n")
            raw = b""
            while not raw.endswith(b"\n"):
                piece = sock.recv(65536)
                if not piece:
                    break
                raw += piece
    except OSError as exc:
        raise Transient(f"cannot reach the mount daemon at {path}: {exc}") from exc
    if not raw:
        raise Transient("the mount daemon closed the connection without answering")
    answer: dict[str, Any] = json.loads(raw)
    if not answer.get("ok"):
        raise error_for_code(str(answer.get("code")), str(answer.get("message")))
    return answer
