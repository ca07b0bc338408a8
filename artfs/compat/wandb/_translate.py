"""Where artfs errors become W&B's: one context manager around every translated call."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from artfs.compat.wandb.errors import ArtifactFinalizedError, CommError, InvalidValue
from artfs.errors import Finalized, InvalidInput, MissingReferences, NotFound

__all__ = ["ArtifactNotFoundError", "translated"]


class ArtifactNotFoundError(CommError, NotFound):
    """No such artifact or version (W&B raises ``CommError``)."""


@contextmanager
def translated() -> Iterator[None]:
    try:
        yield
    except (ArtifactFinalizedError, InvalidValue, ArtifactNotFoundError, MissingReferences):
        raise
    except Finalized as exc:
        raise ArtifactFinalizedError(exc.message) from exc
    except InvalidInput as exc:
        raise InvalidValue(exc.message) from exc
    except NotFound as exc:
        raise ArtifactNotFoundError(exc.message) from exc
