"""Bounds on every request body, enforced as ``receive()`` delivers it: its size and its time.

A check of ``Content-Length`` alone misses chunked bodies, and a check after
``request.body()`` comes after the bytes are in memory; counting the bytes as
the server hands them over catches both, before anything is buffered. A body
over its route's limit is answered 413 at once (before the application runs
when ``Content-Length`` already says so); a body that stalls for
``idle_timeout`` seconds, or is still arriving ``total_timeout`` seconds after
the request began, is answered 408 and its connection closed.

Either answer is sent from here, and the application is then unwound by an
exception out of its next ``receive()``, so an upload's own clean-up (the temp
file of a blob) runs as for any failed upload; whatever the application tries
to send afterwards is dropped. After a 413 the connection is kept: uvicorn
reads and drops the rest of the body, so an ordinary client, which sends its
whole body before it reads, sees the 413 rather than a reset connection.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from artfs.errors import TooLarge, Transient
from artfs.server.errors import error_response

__all__ = ["BodyBounds", "BodyRule", "RequestBoundsMiddleware"]


@dataclass(frozen=True)
class BodyRule:
    """Requests of ``method`` whose path matches ``path`` carry at most ``max_bytes``."""

    method: str
    path: re.Pattern[str]
    max_bytes: int


@dataclass(frozen=True)
class BodyBounds:
    #: The first rule that matches a request sets its limit; ``default_max_bytes`` otherwise.
    rules: tuple[BodyRule, ...]
    default_max_bytes: int
    #: Seconds a body may go without a byte arriving.
    idle_timeout: float
    #: Seconds from the start of a request until its whole body has arrived.
    total_timeout: float

    def max_bytes(self, method: str, path: str) -> int:
        for rule in self.rules:
            if rule.method == method and rule.path.fullmatch(path):
                return rule.max_bytes
        return self.default_max_bytes


class _BodyRefused(Exception):
    """Raised out of ``receive()`` once the refusal is sent: it unwinds the application."""


class RequestBoundsMiddleware:
    def __init__(self, app: ASGIApp, bounds: BodyBounds) -> None:
        self.app = app
        self.bounds = bounds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.bounds.max_bytes(scope["method"], scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            message = f"request body of {declared} bytes is over this route's {limit}-byte limit"
            await _send_error(send, 413, TooLarge.code, message)
            return
        body = _BoundedBody(receive, send, limit, self.bounds)
        with contextlib.suppress(_BodyRefused):  # answered already, by ``_refuse``
            await self.app(scope, body.receive, body.send)


class _BoundedBody:
    """One request's ``receive`` and ``send``, counting and timing the body on the way."""

    def __init__(self, receive: Receive, send: Send, limit: int, bounds: BodyBounds) -> None:
        self._receive = receive
        self._send = send
        self._limit = limit
        self._idle_timeout = bounds.idle_timeout
        self._deadline = anyio.current_time() + bounds.total_timeout
        self._received = 0
        self._complete = False
        self._response_started = False
        #: Our own refusal went out: the application's answer is dropped.
        self._refused = False

    async def receive(self) -> Message:
        if self._refused:
            raise _BodyRefused
        if self._complete:
            return await self._receive()  # only ``http.disconnect`` is left to come
        timeout = min(self._idle_timeout, self._deadline - anyio.current_time())
        message: Message | None = None
        with anyio.move_on_after(max(timeout, 0)):
            message = await self._receive()
        if message is None:
            await self._refuse(
                408,
                Transient.code,
                f"the request body stalled: no byte for {self._idle_timeout:g}s, or not all "
                "of it within the server's upload timeout",
                close=True,
            )
            raise AssertionError("unreachable")  # pragma: no cover - _refuse raises
        if message["type"] == "http.request":
            self._received += len(message.get("body", b""))
            self._complete = not message.get("more_body", False)
            if self._received > self._limit:
                refusal = f"request body is over this route's {self._limit}-byte limit"
                await self._refuse(413, TooLarge.code, refusal)
        return message

    async def send(self, message: Message) -> None:
        if self._refused:
            return
        if message["type"] == "http.response.start":
            self._response_started = True
        await self._send(message)

    async def _refuse(self, status: int, code: str, message: str, close: bool = False) -> None:
        if not self._response_started:
            self._refused = True
            await _send_error(self._send, status, code, message, close)
        raise _BodyRefused(message)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


async def _send_error(
    send: Send, status: int, code: str, message: str, close: bool = False
) -> None:
    response = error_response(status, code, message)
    if close:
        response.headers["Connection"] = "close"
    await send({"type": "http.response.start", "status": status, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})
