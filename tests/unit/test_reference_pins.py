"""A reference's pin round-trips through its URI's fragment, whatever the ETag holds."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from artfs.references import Pin, pin_uri, split_pin

URI = "s3://bucket/key with space/x.bin"


@given(
    etag=st.none() | st.text(min_size=1),
    version_id=st.none() | st.text(min_size=1),
    mtime_ns=st.none() | st.integers(min_value=0, max_value=2**63),
)
def test_a_pin_round_trips(etag: str | None, version_id: str | None, mtime_ns: int | None) -> None:
    pin = Pin(etag, version_id, mtime_ns)
    assert split_pin(pin_uri(URI, pin)) == (URI, pin)


def test_no_pin_leaves_the_uri_as_it_is() -> None:
    assert pin_uri(URI, Pin()) == URI
    assert split_pin(URI) == (URI, Pin())
    assert pin_uri("https://h/a", Pin(etag='"abc"')) == "https://h/a#etag=%22abc%22"
