"""One assertion per row of the error tables: domain error -> code -> HTTP status."""

from __future__ import annotations

import pytest

from artfs import errors
from artfs.server.errors import HTTP_STATUS, status_for

EXPECTED_STATUS = [
    (errors.InvalidInput, 400),
    (errors.DigestMismatch, 400),
    (errors.Unauthorized, 401),
    (errors.Forbidden, 403),
    (errors.ReadOnly, 403),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.TooLarge, 413),
    (errors.Corrupt, 500),
    (errors.Transient, 503),
    (errors.Busy, 429),
    (errors.LocalError, 500),
    (errors.NoSpace, 507),
    (errors.ArtfsError, 500),
]


@pytest.mark.parametrize(("cls", "status"), EXPECTED_STATUS)
def test_http_status(cls: type[errors.ArtfsError], status: int) -> None:
    error = errors.LocalError(5, "x") if cls is errors.LocalError else cls("x")
    assert status_for(error) == status


def test_every_error_class_has_a_status_row() -> None:
    assert {cls for cls, _ in EXPECTED_STATUS} == set(HTTP_STATUS) | {errors.DigestMismatch}


@pytest.mark.parametrize(("cls", "_status"), EXPECTED_STATUS)
def test_codes_round_trip(cls: type[errors.ArtfsError], _status: int) -> None:
    if cls is errors.LocalError:
        # Local to one machine: it never crosses the wire, and comes back generic if it did.
        assert type(errors.error_for_code(cls.code, "m")) is errors.ArtfsError
        return
    rebuilt = errors.error_for_code(cls.code, "message")
    assert type(rebuilt) is cls
    assert rebuilt.message == "message"


def test_unknown_code_stays_generic() -> None:
    assert type(errors.error_for_code("no-such-code", "m")) is errors.ArtfsError
