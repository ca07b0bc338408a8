"""The mount daemon's control socket: how ``artfs commit`` and ``artfs stage`` reach it.

Only the daemon may change a ``.staging`` (it holds the handles and the lock
that makes a commit see one consistent tree), so the CLI asks it over a Unix
socket next to the mount's record: one JSON request line, one JSON answer
line. Errors travel as ``{"ok": false, "code", "message"}`` and become the same
domain exception on the CLI side.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from pathlib import Path
from typing import Any

import trio

from artfs.daemon.control_client import request
from artfs.errors import ArtfsError, InvalidInput
from artfs.upload.publish import VersionRequest
from artfs.vfs.tree import Tree

__all__ = ["request", "serve_control"]

log = logging.getLogger("artfs.daemon")

MAX_REQUEST = 1 << 20


async def serve_control(
    path: Path, tree: Tree, task_status: Any = trio.TASK_STATUS_IGNORED
) -> None:
    path.unlink(missing_ok=True)
    listener = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    await listener.bind(str(path))
    os.chmod(path, 0o600)
    listener.listen(16)
    task_status.started()
    async with trio.open_nursery() as nursery:
        while True:
            connection, _ = await listener.accept()
            nursery.start_soon(_handle, trio.SocketStream(connection), tree)


async def _handle(stream: trio.SocketStream, tree: Tree) -> None:
    async with stream:
        try:
            raw = b""
            while not raw.endswith(b"\n"):
                piece = await stream.receive_some(65536)
                if not piece or len(raw) > MAX_REQUEST:
                    return
                raw += piece
            answer = await _dispatch(json.loads(raw), tree)
        except ArtfsError as exc:
            answer = {"ok": False, "code": exc.code, "message": exc.message}
        except (ValueError, KeyError, TypeError) as exc:
            answer = {"ok": False, "code": InvalidInput.code, "message": f"bad request: {exc}"}
        except Exception:
            log.exception("control request failed")
            answer = {"ok": False, "code": "error", "message": "internal error; see the mount log"}
        await stream.send_all(json.dumps(answer).encode() + b"\n")


async def _dispatch(message: dict[str, Any], tree: Tree) -> dict[str, Any]:
    op = message["op"]
    if op == "commit":
        published = await tree.commit(
            message["artifact"],
            VersionRequest(
                aliases=list(message.get("aliases", [])),
                tags=list(message.get("tags", [])),
                metadata=dict(message.get("metadata", {})),
                description=str(message.get("message", "")),
                alias_expect=dict(message.get("alias_expect", {})),
                force=bool(message.get("force", False)),
            ),
        )
        return {
            "ok": True,
            "version": published.version["version"],
            "noop": published.noop,
            "uploaded_bytes": published.uploaded_bytes,
            "uploaded_blobs": published.uploaded_blobs,
        }
    if op == "stage":
        count = await tree.stage_from(message["artifact"], message["from"])
        return {"ok": True, "files": count}
    raise InvalidInput(f"unknown control operation {op!r}")
