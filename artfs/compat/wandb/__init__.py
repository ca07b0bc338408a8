"""W&B's artifact API on artfs: ``from artfs.compat import wandb``.

``wandb.Artifact`` (a draft, then the logged version), ``wandb.Api().artifact``
and W&B's exceptions (``wandb.errors``), translated to artfs's SDK; see
``artfs.compat.wandb.artifact`` and docs/compat.md.
"""

from __future__ import annotations

from artfs.compat.wandb import errors
from artfs.compat.wandb.api import Api
from artfs.compat.wandb.artifact import (
    Artifact,
    ArtifactCollection,
    ArtifactManifest,
    ArtifactManifestEntry,
    File,
)
from artfs.compat.wandb.errors import (
    ArtifactFinalizedError,
    ArtifactNotLoggedError,
    CommError,
    Error,
)

__all__ = [
    "Api",
    "Artifact",
    "ArtifactCollection",
    "ArtifactFinalizedError",
    "ArtifactManifest",
    "ArtifactManifestEntry",
    "ArtifactNotLoggedError",
    "CommError",
    "Error",
    "File",
    "errors",
]
