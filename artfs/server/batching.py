"""Group commit: concurrent callers share one expensive flush (a transaction, an fsync).

Each caller hands in one item (or several) and blocks until flushes that held them have
finished. One flush runs at a time; whoever finds none running does it, for
every item waiting, so a lone caller never waits for a timer and, under load,
the items that arrive during one flush all go into the next. A flush that
raises fails every caller whose item it held, and none other.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["GroupCommit"]

T = TypeVar("T")


@dataclass
class _Ticket(Generic[T]):
    item: T
    done: bool = False
    error: BaseException | None = None


class GroupCommit(Generic[T]):
    def __init__(self, flush: Callable[[list[T]], None], max_batch: int = 512) -> None:
        self._flush = flush
        self._max_batch = max_batch
        self._cond = threading.Condition()
        self._queue: list[_Ticket[T]] = []
        self._flushing = False

    def submit(self, item: T) -> None:
        """Return once ``item`` was flushed; raise what its flush raised."""
        self.submit_many([item])

    def submit_many(self, items: list[T]) -> None:
        """Return once every item was flushed; raise the first error a flush of them raised."""
        tickets = [_Ticket(item) for item in items]
        with self._cond:
            self._queue.extend(tickets)
            while not all(ticket.done for ticket in tickets):
                if self._flushing:
                    self._cond.wait()
                else:
                    self._lead()
        for ticket in tickets:
            if ticket.error is not None:
                raise ticket.error

    def _lead(self) -> None:
        """Flush the oldest waiting items; called, and returns, with the lock held."""
        batch = self._queue[: self._max_batch]
        del self._queue[: self._max_batch]
        self._flushing = True
        error: BaseException | None = None
        self._cond.release()
        try:
            self._flush([ticket.item for ticket in batch])
        except BaseException as exc:  # noqa: BLE001 - handed to every caller in the batch
            error = exc
        finally:
            self._cond.acquire()
        for ticket in batch:
            ticket.done, ticket.error = True, error
        self._flushing = False
        self._cond.notify_all()
