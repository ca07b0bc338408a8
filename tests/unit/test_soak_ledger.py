"""The soak's own accounting: a wrong or missing byte is counted, never waved through."""

from __future__ import annotations

from tests.support.soak import Ledger, content


def test_every_wrong_or_missing_byte_counts() -> None:
    ledger = Ledger()
    want = content("file", 1000)
    ledger.read("r", want, want)
    flipped = bytearray(want)
    flipped[7] ^= 1
    flipped[900] ^= 0x80
    ledger.read("r", bytes(flipped), want)
    ledger.read("r", want[:990], want)

    assert ledger.reads["r"] == 3
    assert ledger.wrong_bytes == 2 + 10
    assert ledger.errors["r: WRONG BYTES"] == 2


def test_content_is_the_same_for_a_tag_and_differs_between_tags() -> None:
    assert content("a", 64) == content("a", 64)
    assert content("a", 64) != content("b", 64)
