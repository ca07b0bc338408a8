"""The one table from domain errors to errnos, and the decorator that applies it.

Every handler of ``ArtfsOperations`` goes through ``translated``: a domain
error becomes its errno plus (for the unexpected ones) a log line; anything
else is a bug, logged with its traceback and reported as ``EIO``, so the
kernel always gets an answer and the daemon never dies of one request.
"""

from __future__ import annotations

import errno
import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

import pyfuse3

from artfs.errors import (
    ArtfsError,
    Conflict,
    Corrupt,
    Forbidden,
    InvalidInput,
    LocalError,
    NoSpace,
    NotFound,
    ReadOnly,
    TooLarge,
    Transient,
    Unauthorized,
)

__all__ = ["ERRNO", "errno_for", "translated"]

log = logging.getLogger("artfs.fs")

ERRNO: dict[type[ArtfsError], int] = {
    NotFound: errno.ENOENT,
    ReadOnly: errno.EROFS,
    InvalidInput: errno.EINVAL,
    Conflict: errno.EBUSY,
    TooLarge: errno.EFBIG,
    NoSpace: errno.ENOSPC,
    Unauthorized: errno.EACCES,
    Forbidden: errno.EACCES,
    Corrupt: errno.EIO,
    Transient: errno.EIO,
    LocalError: errno.EIO,  # unused: a LocalError carries its own errno
    ArtfsError: errno.EIO,
}

#: Errors a working filesystem answers all the time; not worth a log line.
_QUIET = (NotFound, ReadOnly, LocalError)

P = ParamSpec("P")
R = TypeVar("R")


def errno_for(error: ArtfsError) -> int:
    if isinstance(error, LocalError):
        return error.errno
    for cls in type(error).__mro__:
        if cls in ERRNO:
            return ERRNO[cls]
    return errno.EIO


def translated(
    handler: Callable[P, Coroutine[Any, Any, R]],
) -> Callable[P, Coroutine[Any, Any, R]]:
    @functools.wraps(handler)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await handler(*args, **kwargs)
        except pyfuse3.FUSEError:
            raise
        except ArtfsError as exc:
            code = errno_for(exc)
            if not isinstance(exc, _QUIET):
                log.warning("%s: %s (%s)", handler.__name__, exc.message, errno.errorcode[code])
            raise pyfuse3.FUSEError(code) from exc
        except Exception as exc:
            log.exception("%s failed unexpectedly", handler.__name__)
            raise pyfuse3.FUSEError(errno.EIO) from exc

    return wrapper
