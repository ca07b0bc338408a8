"""One test per row of the errno table, through the decorator every handler uses."""

from __future__ import annotations

import errno
import logging

import pyfuse3
import pytest
import trio

from artfs import errors
from artfs.fs.errors import ERRNO, translated
from tests.conftest import ErrorLogPolicy

ROWS = [
    (errors.NotFound, errno.ENOENT),
    (errors.ReadOnly, errno.EROFS),
    (errors.InvalidInput, errno.EINVAL),
    (errors.DigestMismatch, errno.EINVAL),
    (errors.Conflict, errno.EBUSY),
    (errors.TooLarge, errno.EFBIG),
    (errors.NoSpace, errno.ENOSPC),
    (errors.Unauthorized, errno.EACCES),
    (errors.Forbidden, errno.EACCES),
    (errors.Corrupt, errno.EIO),
    (errors.Transient, errno.EIO),
    (errors.ArtfsError, errno.EIO),
]


def _raise_through(exc: BaseException) -> int:
    @translated
    async def handler() -> None:
        raise exc

    with pytest.raises(pyfuse3.FUSEError) as caught:
        trio.run(handler)
    return caught.value.errno


@pytest.mark.parametrize(("cls", "code"), ROWS)
def test_domain_errors_become_their_errno(cls: type[errors.ArtfsError], code: int) -> None:
    assert _raise_through(cls("boom")) == code


def test_every_row_is_tested() -> None:
    assert set(ERRNO) == {cls for cls, _ in ROWS} - {errors.DigestMismatch} | {errors.LocalError}


@pytest.mark.parametrize("code", [errno.EISDIR, errno.ENOTEMPTY, errno.EXDEV, errno.EEXIST])
def test_local_errors_keep_their_errno(code: int) -> None:
    assert _raise_through(errors.LocalError(code, "local")) == code


def test_a_bug_is_eio_with_its_traceback_logged(
    caplog: pytest.LogCaptureFixture, error_logs: ErrorLogPolicy
) -> None:
    error_logs.allow("failed unexpectedly")
    with caplog.at_level(logging.ERROR, logger="artfs.fs"):
        assert _raise_through(KeyError("bug")) == errno.EIO
    assert "failed unexpectedly" in caplog.text
    assert "KeyError" in caplog.text


def test_fuse_errors_pass_through() -> None:
    assert _raise_through(pyfuse3.FUSEError(pyfuse3.ENOATTR)) == pyfuse3.ENOATTR
