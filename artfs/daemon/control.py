"""The mount daemon's control socket: how ``artfs commit`` and ``artfs stage`` reach it.

Only the daemon may change a ``.staging`` (it holds the handles and the lock
that makes a commit see one consistent tree), so the CLI asks it over a Unix
socket next to the mount's record: one JSON request line, one JSON answer
line. Errors travel as ``{"ok": false, "code", "message"}`` and become the same
domain exception on the CLI side. A commit asked with ``"progress": true`` is
answered by ``{"progress": {"sent": N, "total": T}}`` lines (bytes uploaded)
before that one answer line, for the CLI's progress bar.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import trio

from artfs.daemon.control_client import request
from artfs.errors import ArtfsError, InvalidInput
from artfs.upload.publish import Published, VersionRequest
from artfs.vfs.tree import Tree

__all__ = ["request", "serve_control"]

log = logging.getLogger("artfs.daemon")

MAX_REQUEST = 1 << 20
#: Seconds between progress lines of a commit: a bar redraws about as often.
PROGRESS_INTERVAL = 0.1
#: A client that stops reading is given up on after this long (the commit goes on).
SEND_TIMEOUT = 10.0


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
            answer = await _dispatch(json.loads(raw), tree, stream)
        except ArtfsError as exc:
            answer = {"ok": False, "code": exc.code, "message": exc.message}
        except (ValueError, KeyError, TypeError) as exc:
            answer = {"ok": False, "code": InvalidInput.code, "message": f"bad request: {exc}"}
        except Exception:
            log.exception("control request failed")
            answer = {"ok": False, "code": "error", "message": "internal error; see the mount log"}
        if not await _send(stream, answer):
            log.info("the control client left before its answer: %s", answer)


async def _dispatch(
    message: dict[str, Any], tree: Tree, stream: trio.SocketStream
) -> dict[str, Any]:
    op = message["op"]
    if op == "commit":
        meter = _UploadMeter() if message.get("progress") else None
        commit = tree.commit(
            message["artifact"],
            VersionRequest(
                aliases=list(message.get("aliases", [])),
                tags=list(message.get("tags", [])),
                metadata=dict(message.get("metadata", {})),
                description=str(message.get("message", "")),
                source=tree.commit_source(
                    "cli",
                    message.get("run") or None,
                    message.get("user") or None,
                    str(message.get("message", "")),
                ),
                alias_expect=dict(message.get("alias_expect", {})),
                force=bool(message.get("force", False)),
                progress=None if meter is None else meter.update,
            ),
        )
        published = await (commit if meter is None else _reporting(stream, meter, commit))
        return {
            "ok": True,
            "version": published.record.version,
            "noop": published.noop,
            "uploaded_bytes": published.uploaded_bytes,
            "uploaded_blobs": published.uploaded_blobs,
        }
    if op == "stage":
        count = await tree.stage_from(message["artifact"], message["from"])
        return {"ok": True, "files": count}
    raise InvalidInput(f"unknown control operation {op!r}")


class _UploadMeter:
    """The latest ``(sent, total)`` of a commit's upload, set by upload threads, read by trio."""

    def __init__(self) -> None:
        self.latest: tuple[int, int] | None = None

    def update(self, sent: int, total: int) -> None:
        self.latest = (sent, total)  # one reference swap: nothing to lock


async def _reporting(
    stream: trio.SocketStream, meter: _UploadMeter, commit: Awaitable[Published]
) -> Published:
    """Await ``commit`` while its progress goes to the client every ``PROGRESS_INTERVAL``."""
    failure: Exception | None = None
    published: Published | None = None
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_report_progress, stream, meter)
        try:
            published = await commit
        except Exception as exc:  # noqa: BLE001 - every kind is answered, as in _handle
            # Raised after the nursery: inside it, it would arrive wrapped in an ExceptionGroup.
            failure = exc
        nursery.cancel_scope.cancel()
    if failure is not None:
        raise failure
    assert published is not None
    if meter.latest is not None:
        await _send(stream, _progress_line(meter.latest))  # the bar ends full
    return published


async def _report_progress(stream: trio.SocketStream, meter: _UploadMeter) -> None:
    shown: tuple[int, int] | None = None
    while True:
        latest = meter.latest
        if latest is not None and latest != shown:
            if not await _send(stream, _progress_line(latest)):
                return  # the client left; the commit itself goes on
            shown = latest
        await trio.sleep(PROGRESS_INTERVAL)


def _progress_line(latest: tuple[int, int]) -> dict[str, Any]:
    sent, total = latest
    return {"progress": {"sent": sent, "total": total}}


async def _send(stream: trio.SocketStream, message: dict[str, Any]) -> bool:
    """Send one JSON line whole; False if the client is gone or stopped reading.

    Shielded, so that the end of a commit never cuts a progress line in half
    before the answer line that follows it.
    """
    with trio.CancelScope(shield=True) as scope:
        scope.deadline = trio.current_time() + SEND_TIMEOUT
        try:
            await stream.send_all(json.dumps(message).encode() + b"\n")
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        return True
    # SEND_TIMEOUT passed, maybe in the middle of a line: nothing more can follow it.
    await trio.aclose_forcefully(stream)
    return False
