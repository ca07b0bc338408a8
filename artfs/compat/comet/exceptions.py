"""Comet's exceptions (``comet_ml.exceptions``), as artfs raises them; each is also the
artfs error it translates."""

from __future__ import annotations

from artfs.errors import Conflict, NotFound

__all__ = [
    "ArtifactAssetNotFound",
    "ArtifactDownloadException",
    "ArtifactNotFound",
    "CometException",
]


class CometException(Exception):
    """Base of Comet's errors."""


class ArtifactDownloadException(CometException, Conflict):
    """A download met an existing file with other content, under ``overwrite_strategy=FAIL``."""


class ArtifactNotFound(CometException, NotFound):
    """No such artifact, version or alias."""


class ArtifactAssetNotFound(CometException, NotFound):
    """``get_asset``: the version has no asset at that logical path."""
