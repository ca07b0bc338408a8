"""``SingleFlight``: one fetch for concurrent askers, its value or error for each of them."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from artfs.errors import NotFound
from artfs.fetch.singleflight import SingleFlight


def test_concurrent_callers_share_one_call_and_its_value() -> None:
    calls = 0

    async def main() -> list[int]:
        flights: SingleFlight[str, int] = SingleFlight()
        got: list[int] = []

        async def call() -> int:
            nonlocal calls
            calls += 1
            await trio.sleep(0.01)
            return 7

        async def ask() -> None:
            got.append(await flights.do("k", call))

        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(ask)
        assert not flights.in_flight
        return got

    assert trio.run(main) == [7] * 5
    assert calls == 1


def test_an_error_reaches_every_waiter() -> None:
    async def main() -> int:
        flights: SingleFlight[str, int] = SingleFlight()
        failed = 0

        async def call() -> int:
            await trio.sleep(0.01)
            raise NotFound("gone")

        async def ask() -> None:
            nonlocal failed
            with pytest.raises(NotFound):
                await flights.do("k", call)
            failed += 1

        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(ask)
        return failed

    assert trio.run(main) == 3


def test_waiters_of_a_cancelled_owner_ask_again() -> None:
    calls = 0

    async def main() -> int:
        flights: SingleFlight[str, int] = SingleFlight()

        async def call() -> int:
            nonlocal calls
            calls += 1
            await trio.sleep(0.05)
            return calls

        async def owner() -> None:
            with trio.move_on_after(0.01):
                await flights.do("k", call)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(owner)
            await trio.sleep(0.001)
            return await flights.do("k", call)

    # Virtual time: on a loaded machine the owner's 10 ms could otherwise run out
    # before the waiter joins, and the waiter would own a flight of its own.
    assert trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0)) == 2


def test_a_flight_lands_key_by_key_and_only_its_own() -> None:
    async def main() -> None:
        flights: SingleFlight[tuple[str, int], None] = SingleFlight()
        old = flights.take_off(("d", 0))
        new = flights.take_off(("d", 0))  # asked again, say after an eviction
        flights.land(("d", 0), old, NotFound("stale"))
        assert old.done.is_set()
        assert isinstance(old.error, NotFound)
        assert flights.in_flight[("d", 0)] is new  # a newer flight is left alone
        flights.land(("d", 0), new)
        assert new.done.is_set()
        assert new.error is None
        assert not flights.in_flight

    trio.run(main)
