"""``SingleFlight``: concurrent askers for the same key share one fetch.

Every fetch of the mount that several readers may want at once goes through
one table of these: chunks (``ChunkFetcher``), small blobs in a batch
(``SmallBlobBatches``), layouts and listings (``ChunkFetcher.layout``,
``Catalog``). A flight is registered when its work starts and landed when the
work ends; whoever asks for its key meanwhile waits for that landing instead of
asking again, and is given the flight's value or its error, the same for every
waiter.

Two ways in. ``do(key, call)`` runs ``call`` once for all concurrent callers.
``take_off``/``land`` are for work that outlives its starter and lands key by
key (the chunks of one ranged request, announced one at a time as they
arrive): the owner registers a flight per key and lands each itself, and
waiters await ``flight.done`` and then check ``flight.error``. Everything runs
on the trio thread; a worker thread reaches a flight only through
``TrioToken.run_sync_soon``.

A flight whose owner is cancelled lands with no error and no value: its
waiters ask again rather than re-raise a cancellation that is not theirs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Generic, TypeVar

import trio

__all__ = ["Flight", "SingleFlight"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Flight(Generic[V]):
    """One fetch in progress; ``done`` is set when it lands, with ``error`` or ``value``."""

    __slots__ = ("done", "error", "ok", "value")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.error: Exception | None = None
        #: Set with ``value`` by ``do``; a flight done with neither was given up.
        self.ok = False
        self.value: V | None = None


class SingleFlight(Generic[K, V]):
    def __init__(self) -> None:
        self._flights: dict[K, Flight[V]] = {}
        #: The flights in progress, by key: to look up, never to change. A plain
        #: mapping, so that a per-chunk lookup costs no call into Python.
        self.in_flight: Mapping[K, Flight[V]] = self._flights

    def take_off(self, key: K) -> Flight[V]:
        """Register a new flight for ``key`` (replacing any); its owner must ``land`` it."""
        flight: Flight[V] = Flight()
        self._flights[key] = flight
        return flight

    def land(self, key: K, flight: Flight[V], error: Exception | None = None) -> None:
        """End ``flight`` and wake its waiters; with ``error``, each of them gets it.

        Only the flight still registered under ``key`` is removed: a newer one
        for the same key (the chunk evicted and asked for again) is left alone.
        """
        if error is not None:
            flight.error = error
        if self._flights.get(key) is flight:
            del self._flights[key]
        flight.done.set()

    async def do(self, key: K, call: Callable[[], Awaitable[V]]) -> V:
        """``call()``'s value, or its error; one call for all who ask for ``key`` meanwhile."""
        while (flight := self._flights.get(key)) is not None:
            await flight.done.wait()
            if flight.error is not None:
                raise flight.error
            if flight.ok:
                return flight.value  # type: ignore[return-value]
            # Its owner was cancelled: ask again (one of the waiters becomes the owner).
        flight = self.take_off(key)
        try:
            value = await call()
        except Exception as exc:
            self.land(key, flight, exc)
            raise
        except BaseException:
            self.land(key, flight)
            raise
        flight.value, flight.ok = value, True
        self.land(key, flight)
        return value
