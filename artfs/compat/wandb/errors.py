"""W&B's exceptions (``wandb.errors``, ``wandb.sdk.artifacts.exceptions``), as artfs raises them.

Each is also the artfs error it translates, so code that catches either works:
``ArtifactFinalizedError`` is a ``Finalized``, and, as in W&B, an ``AttributeError``.
"""

from __future__ import annotations

from artfs.errors import ArtfsError, Conflict, Finalized, InvalidInput

__all__ = [
    "ArtifactFinalizedError",
    "ArtifactNotLoggedError",
    "ArtifactStatusError",
    "CommError",
    "Error",
    "InvalidValue",
    "UsageError",
]


class Error(Exception):
    """Base of W&B's errors (``wandb.errors.Error``)."""


class CommError(Error, ArtfsError):
    """The registry refused or failed a request (W&B: the server did)."""


class UsageError(Error, ArtfsError):
    """A call out of order, e.g. ``wandb.log_artifact`` before ``wandb.init``."""


class ArtifactStatusError(ArtfsError, AttributeError):
    """An artifact is in the wrong state for what was asked (W&B raises AttributeErrors)."""


class ArtifactNotLoggedError(ArtifactStatusError, Conflict):
    """A member that only a logged artifact has, asked of a draft."""


class ArtifactFinalizedError(ArtifactStatusError, Finalized):
    """A change to an artifact that is logged or finalized: log a new draft instead."""


class InvalidValue(InvalidInput, ValueError):
    """Bad input: W&B raises ``ValueError``; this is also artfs's ``InvalidInput``."""
