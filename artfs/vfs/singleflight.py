"""``SingleFlight``: concurrent callers asking for the same key share one call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import trio

__all__ = ["SingleFlight"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass
class _Call(Generic[V]):
    done: trio.Event = field(default_factory=trio.Event)
    value: V | None = None
    error: BaseException | None = None


class SingleFlight(Generic[K, V]):
    def __init__(self) -> None:
        self._calls: dict[K, _Call[V]] = {}

    async def do(self, key: K, call: Callable[[], Awaitable[V]]) -> V:
        existing = self._calls.get(key)
        if existing is not None:
            await existing.done.wait()
            if existing.error is not None:
                raise existing.error
            return existing.value  # type: ignore[return-value]
        mine: _Call[V] = _Call()
        self._calls[key] = mine
        try:
            mine.value = await call()
        except BaseException as exc:
            mine.error = exc
            raise
        finally:
            del self._calls[key]
            mine.done.set()
        return mine.value
