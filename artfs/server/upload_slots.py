"""A cap on the uploads one caller has running at once in this server process.

Each running upload holds a temp file, a socket and up to two write batches
(``artfs.server.routes.blobs``), so one token opening thousands of them could
exhaust the server's descriptors and memory for everyone. Over the cap the
upload is refused with ``Busy`` (429 and ``Retry-After``) before its body is
read; the SDK's transfers take ``Busy`` as a ``Transient`` error and retry
after a pause. The slots are counted on the event loop alone, so no lock.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Hashable, Iterator
from contextlib import AbstractContextManager, contextmanager

from starlette.requests import Request

from artfs.errors import Busy

__all__ = ["UploadSlots", "caller_of", "upload_slot"]


class UploadSlots:
    def __init__(self, per_caller: int) -> None:
        self.per_caller = per_caller
        self._running: Counter[Hashable] = Counter()

    def running(self, caller: Hashable) -> int:
        return self._running[caller]

    @contextmanager
    def hold(self, caller: Hashable) -> Iterator[None]:
        """One slot of ``caller`` for the ``with`` block; ``Busy`` if all are taken."""
        if self._running[caller] >= self.per_caller:
            raise Busy(
                f"{self.per_caller} uploads of this token are running already; "
                "try again when one has finished"
            )
        self._running[caller] += 1
        try:
            yield
        finally:
            self._running[caller] -= 1
            if not self._running[caller]:
                del self._running[caller]


def upload_slot(request: Request) -> AbstractContextManager[None]:
    """A slot of the request's caller among the application's ``UploadSlots``."""
    slots: UploadSlots = request.app.state.upload_slots
    return slots.hold(caller_of(request))


def caller_of(request: Request) -> Hashable:
    """Who makes the request: the caller authentication recorded, else its credentials.

    Without an authenticated caller, a hash of the ``Authorization`` header
    stands in for it, so no token is kept as a key; requests without one are
    all one caller.
    """
    caller: Hashable | None = getattr(request.state, "caller", None)
    if caller is not None:
        return caller
    credentials = request.headers.get("authorization", "")
    return hashlib.sha256(credentials.encode()).hexdigest()
