"""artfs: versioned, immutable ML artifacts you can mount.

::

    import artfs

    artifact = artfs.Artifact("mnist", type="dataset", aliases=["production"])
    artifact.add("data/")                       # a directory, recursively
    logged = artfs.log_artifact(artifact)       # -> LoggedArtifact, e.g. v3
    artfs.get_artifact("mnist:production").download("input/")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from artfs.errors import (
    ArtfsError,
    Conflict,
    Corrupt,
    DigestMismatch,
    Finalized,
    Forbidden,
    InvalidInput,
    MissingReferences,
    NotFound,
    SourceChanged,
    TooLarge,
    Transient,
    Unauthorized,
)

if TYPE_CHECKING:
    from artfs.sdk.artifact import Artifact
    from artfs.sdk.client import Client
    from artfs.sdk.logged import LoggedArtifact, LoggedAsset
    from artfs.sdk.run import Run

# The SDK (and requests under it) is imported on first use, not by every
# ``artfs`` command: ``artfs umount`` or ``artfs commit`` never need it.
_LAZY = {
    "Artifact": "artfs.sdk.artifact",
    "Client": "artfs.sdk.client",
    "LoggedArtifact": "artfs.sdk.logged",
    "LoggedAsset": "artfs.sdk.logged",
    "Run": "artfs.sdk.run",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'artfs' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "ArtfsError",
    "Artifact",
    "Client",
    "Conflict",
    "Corrupt",
    "DigestMismatch",
    "Finalized",
    "Forbidden",
    "InvalidInput",
    "LoggedArtifact",
    "LoggedAsset",
    "MissingReferences",
    "NotFound",
    "Run",
    "SourceChanged",
    "TooLarge",
    "Transient",
    "Unauthorized",
    "get_artifact",
    "init",
    "log_artifact",
]


def log_artifact(artifact: Artifact, force: bool = False, **client_options: Any) -> LoggedArtifact:
    """Log ``artifact`` with a client configured from the environment (``ARTFS_URL`` …)."""
    from artfs.sdk.client import Client

    with Client(**client_options) as client:
        return client.log_artifact(artifact, force=force)


def get_artifact(name: str, version: str | None = None, **client_options: Any) -> LoggedArtifact:
    """``get_artifact("model:production")`` or ``get_artifact("model", "v3")``."""
    from artfs.sdk.client import Client

    return Client(**client_options).get_artifact(name, version)


def init(
    run: str | None = None, *, config: dict[str, Any] | None = None, **client_options: Any
) -> Run:
    """Start the run ``run`` (``$ARTFS_RUN`` or a new id if not given).

    ``with artfs.init(run="train-42") as run: run.use_artifact("mnist:production")``
    """
    from artfs.sdk.run import init as start

    return start(run, config=config, **client_options)
