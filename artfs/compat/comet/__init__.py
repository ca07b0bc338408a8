"""Comet's artifact API on artfs: ``from artfs.compat.comet import Artifact, Experiment``.

``Experiment`` (a run: ``log_artifact``, ``get_artifact``, ``end``),
``Artifact`` (``add``, ``add_remote``), ``LoggedArtifact`` (Comet's attributes,
``download`` returning an ``Artifact`` with ``download_local_path``,
``get_asset``, ``get_source_experiment``) and Comet's exceptions; see
docs/compat.md.
"""

from __future__ import annotations

from artfs.compat.comet import exceptions
from artfs.compat.comet.artifact import (
    Artifact,
    ArtifactAsset,
    LoggedArtifact,
    LoggedArtifactAsset,
)
from artfs.compat.comet.exceptions import (
    ArtifactAssetNotFound,
    ArtifactDownloadException,
    ArtifactNotFound,
    CometException,
)
from artfs.compat.comet.experiment import APIExperiment, Experiment

__all__ = [
    "APIExperiment",
    "Artifact",
    "ArtifactAsset",
    "ArtifactAssetNotFound",
    "ArtifactDownloadException",
    "ArtifactNotFound",
    "CometException",
    "Experiment",
    "LoggedArtifact",
    "LoggedArtifactAsset",
    "exceptions",
]
