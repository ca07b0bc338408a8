"""``DirectReadsHeader``: every answer tells clients that this registry gives URLs.

With direct reads on and a store that presigns, clients read blob bytes from
the store itself (docs/design.md, "Direct reads"). They learn that from the
``DIRECT_READS_HEADER`` of whatever answer they get first (a manifest, a
chunk list, a blob), so that a pull's or a mount's first blob already goes
straight to the store; a registry that gives no URLs never sends it.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from artfs.config import DIRECT_READS_HEADER

__all__ = ["DirectReadsHeader"]

_HEADER = (DIRECT_READS_HEADER.lower().encode(), b"on")


class DirectReadsHeader:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), _HEADER]}
            await send(message)

        await self.app(scope, receive, send_with_header)
