"""The per-caller cap on uploads, and which body limit each route class gets."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.requests import Request

from artfs.errors import Busy
from artfs.server.app import body_bounds
from artfs.server.routes.blob_batches import MAX_UPLOAD_BYTES
from artfs.server.routes.deps import MAX_JSON_BODY
from artfs.server.settings import ServerSettings
from artfs.server.upload_slots import UploadSlots, caller_of

DIGEST = "0" * 64


def test_a_caller_gets_its_cap_and_no_more_and_others_are_not_held_up() -> None:
    slots = UploadSlots(per_caller=2)
    with slots.hold("a"), slots.hold("a"):
        with pytest.raises(Busy, match="2 uploads of this token"), slots.hold("a"):
            pass
        with slots.hold("b"):
            assert slots.running("b") == 1
        assert slots.running("a") == 2
    assert slots.running("a") == 0


def test_a_slot_is_released_when_the_upload_fails() -> None:
    slots = UploadSlots(per_caller=1)
    with pytest.raises(OSError), slots.hold("a"):
        raise OSError("disk gone")
    assert slots.running("a") == 0


def request_with(headers: list[tuple[bytes, bytes]], caller: object = None) -> Request:
    state: dict[str, object] = {} if caller is None else {"caller": caller}
    return Request({"type": "http", "headers": headers, "state": state})


def test_the_caller_is_the_authenticated_one_else_a_hash_of_the_credentials() -> None:
    assert caller_of(request_with([], caller=("token", 7))) == ("token", 7)
    secret = b"Bearer s3cret"
    keyed = caller_of(request_with([(b"authorization", secret)]))
    assert keyed == caller_of(request_with([(b"authorization", secret)]))
    assert "s3cret" not in str(keyed)
    assert keyed != caller_of(request_with([(b"authorization", b"Bearer other")]))


def test_each_route_class_has_its_own_body_limit(tmp_path: Path) -> None:
    settings = ServerSettings(data_dir=tmp_path, max_blob_bytes=123)
    bounds = body_bounds(settings)
    project = "/api/v1/projects/p"
    assert bounds.max_bytes("PUT", f"{project}/blobs/{DIGEST}") == 123
    assert bounds.max_bytes("PUT", f"{project}/blob-batch") == MAX_UPLOAD_BYTES
    assert bounds.max_bytes("POST", f"{project}/blob-batch") == MAX_JSON_BODY
    assert bounds.max_bytes("POST", f"{project}/artifacts/a/uploads") == MAX_JSON_BODY
    assert bounds.max_bytes("PUT", f"{project}/artifacts/a/aliases/prod") == MAX_JSON_BODY
    assert (bounds.idle_timeout, bounds.total_timeout) == (60.0, 3600.0)
