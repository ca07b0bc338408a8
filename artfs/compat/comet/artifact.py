"""Comet's ``Artifact`` (a version being assembled) and ``LoggedArtifact`` (a logged one).

``Artifact`` wraps ``artfs.Artifact``: ``add`` files, directories or file-like
objects, ``add_remote`` references. ``LoggedArtifact`` wraps
``artfs.LoggedArtifact`` with Comet's attribute names and types (sets of
aliases and tags, ``version`` a ``semantic_version.Version``); its
``download`` returns an ``Artifact`` whose ``download_local_path`` is where the
files went, and which logs as the next version holding all the downloaded
one held (nothing is uploaded again), as Comet's does.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import semantic_version

from artfs.compat.comet.exceptions import (
    ArtifactAssetNotFound,
    ArtifactDownloadException,
    ArtifactNotFound,
)
from artfs.errors import Conflict, NotFound
from artfs.references import split_pin
from artfs.sdk import artifact as core

if TYPE_CHECKING:
    from artfs.compat.comet.experiment import APIExperiment
    from artfs.sdk.logged import LoggedArtifact as CoreLogged

__all__ = ["Artifact", "ArtifactAsset", "LoggedArtifact", "LoggedArtifactAsset"]

#: Kept by the registry: Comet code may name it, artfs never lets it be set by hand.
LATEST = "latest"


@dataclass(frozen=True)
class ArtifactAsset:
    """An asset of an ``Artifact`` not logged yet."""

    remote: bool
    logical_path: str
    size: int | None
    link: str | None
    metadata: dict[str, Any] | None
    asset_type: str | None
    local_path_or_data: str | None


@dataclass(frozen=True)
class LoggedArtifactAsset:
    """An asset of a ``LoggedArtifact``."""

    remote: bool
    logical_path: str
    size: int
    link: str | None
    metadata: dict[str, Any]
    asset_type: str | None
    artifact_name: str
    artifact_version: str | None
    digest: str | None = field(default=None)


class Artifact:
    """``Artifact(name, artifact_type=None, version=None, aliases=None, metadata=None,
    version_tags=None)``; with no ``version`` the registry numbers it (the next major)."""

    def __init__(
        self,
        name: str,
        artifact_type: str | None = None,
        version: str | None = None,
        aliases: Any = None,
        metadata: Any = None,
        version_tags: Any = None,
    ) -> None:
        self._draft = core.Artifact(
            name,
            type=artifact_type,
            version=version,
            aliases=set(aliases or ()) - {LATEST},
            metadata=metadata,
            version_tags=set(version_tags or ()),
        )
        self._download_local_path: str | None = None

    @classmethod
    def _downloaded(cls, draft: core.Artifact, root: str) -> Artifact:
        artifact = cls.__new__(cls)
        artifact._draft, artifact._download_local_path = draft, root
        return artifact

    def __repr__(self) -> str:
        return f"<Artifact {self.name}>"

    @property
    def name(self) -> str:
        return self._draft.name

    @property
    def artifact_type(self) -> str | None:
        return self._draft.type

    @property
    def version(self) -> semantic_version.Version | None:
        return (
            None if self._draft.version is None else semantic_version.Version(self._draft.version)
        )

    @property
    def aliases(self) -> set[str]:
        return set(self._draft.aliases)

    @property
    def version_tags(self) -> set[str]:
        return set(self._draft.version_tags)

    @property
    def metadata(self) -> dict[str, Any]:
        return self._draft.metadata if self._draft.metadata is not None else {}

    @property
    def download_local_path(self) -> str | None:
        """Where ``LoggedArtifact.download`` put the files, for an artifact it returned."""
        return self._download_local_path

    @property
    def assets(self) -> list[ArtifactAsset]:
        return [self._asset(asset) for asset in self._draft.assets]

    def _asset(self, asset: core.PendingAsset) -> ArtifactAsset:
        local = None if asset.local_path is None else str(asset.local_path)
        if local is None and asset.uri is None and self._download_local_path is not None:
            local = os.path.join(self._download_local_path, asset.logical_path)
        return ArtifactAsset(
            remote=asset.is_reference,
            logical_path=asset.logical_path,
            size=asset.size,
            link=_link(asset.uri),
            metadata=asset.metadata,
            asset_type=None,
            local_path_or_data=local,
        )

    def add(
        self,
        local_path_or_data: str | os.PathLike[str] | BinaryIO,
        logical_path: str | None = None,
        overwrite: bool = False,
        copy_to_tmp: bool = True,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Add a file, a directory (its files under ``logical_path``, default the root) or a
        binary file-like object (read now, whatever ``copy_to_tmp``: artfs hashes as it copies)."""
        self._draft.add(local_path_or_data, logical_path, overwrite, metadata)

    def add_remote(
        self,
        uri: str,
        logical_path: str | None = None,
        overwrite: bool = False,
        asset_type: str | None = None,
        metadata: dict[str, Any] | None = None,
        sync_mode: bool = True,
        max_synced_objects: int = 10000,
    ) -> None:
        """Add a remote asset: bytes that stay at ``uri``, recorded with what the source
        says of them (size, ETag, S3 version id, mtime), as Comet does: nothing is read.

        A directory or an ``s3://`` prefix is one remote asset per object under the
        folder ``logical_path``, at most ``max_synced_objects`` (more is
        ``InvalidInput``: artfs reads references, and a prefix is no object it could
        read); ``sync_mode=False`` lists them the same, for that reason.
        ``asset_type`` (deprecated by Comet) is not kept.
        """
        self._draft.add_reference(
            uri,
            checksum=False,
            max_objects=max_synced_objects,
            logical_path=logical_path,
            overwrite=overwrite,
            metadata=metadata,
        )


class LoggedArtifact:
    """A logged version, as Comet's ``LoggedArtifact``."""

    def __init__(self, logged: CoreLogged) -> None:
        self._logged = logged

    def __repr__(self) -> str:
        return f"<LoggedArtifact {self.workspace}/{self.name}:{self.version}>"

    @property
    def name(self) -> str:
        return self._logged.name

    @property
    def artifact_type(self) -> str:
        return self._logged.type

    @property
    def workspace(self) -> str:
        """The artfs project: one namespace stands for Comet's workspace and project."""
        return self._logged.project

    @property
    def version(self) -> semantic_version.Version | None:
        """The version's semantic version label (every version logged here has one)."""
        semver = self._logged.semver
        return None if semver is None else semantic_version.Version(semver)

    @property
    def aliases(self) -> set[str]:
        return set(self._logged.aliases)

    @property
    def version_tags(self) -> set[str]:
        return set(self._logged.version_tags)

    @property
    def artifact_tags(self) -> set[str]:
        """The tags of the artifact as a whole (``Client.set_artifact_tags`` sets them)."""
        return set(self._logged.artifact_tags)

    @property
    def metadata(self) -> dict[str, Any]:
        return self._logged.metadata

    @property
    def size(self) -> int:
        return self._logged.size

    @property
    def assets(self) -> list[LoggedArtifactAsset]:
        return [self._asset(asset.logical_path) for asset in self._logged.assets]

    @property
    def remote_assets(self) -> list[LoggedArtifactAsset]:
        return [asset for asset in self.assets if asset.remote]

    def _asset(self, logical_path: str) -> LoggedArtifactAsset:
        asset = self._logged.get_asset(logical_path)
        return LoggedArtifactAsset(
            remote=asset.remote,
            logical_path=asset.logical_path,
            size=asset.size,
            link=_link(asset.uri),
            metadata=asset.metadata,
            asset_type=None,
            artifact_name=self.name,
            artifact_version=self._logged.semver,
            digest=asset.digest,
        )

    def get_asset(self, asset_logical_path: str) -> LoggedArtifactAsset:
        """The asset at ``asset_logical_path``; ``ArtifactAssetNotFound`` if there is none."""
        try:
            return self._asset(asset_logical_path)
        except NotFound as exc:
            raise ArtifactAssetNotFound(exc.message) from exc

    @property
    def source_experiment_key(self) -> str | None:
        """The key (run id) of the experiment that logged this version, if one was recorded."""
        run = self._logged.logged_by()
        return None if run is None else run.id

    def get_source_experiment(
        self, api_key: str | None = None, cache: bool = True
    ) -> APIExperiment:
        """The experiment that logged this version; ``ArtifactNotFound`` if none was recorded."""
        from artfs.compat.comet.experiment import APIExperiment

        run = self._logged.logged_by()
        if run is None:
            raise ArtifactNotFound(f"no experiment is recorded as the source of {self!r}")
        return APIExperiment._from_run(run)

    def download(
        self,
        path: str | None = None,
        overwrite_strategy: bool | str = False,
        sync_mode: bool = True,
    ) -> Artifact:
        """Download the files into ``path`` (default: a new temporary directory).

        ``overwrite_strategy``: ``False``/``"FAIL"`` raises
        ``ArtifactDownloadException`` on an existing file with other content
        (before anything is written), ``"PRESERVE"`` keeps it with a warning,
        ``True``/``"OVERWRITE"`` replaces it. Remote assets are fetched from their
        URIs and verified (``sync_mode=True``) or left out (``False``). Returns an
        ``Artifact`` with ``download_local_path``.
        """
        root = path if path is not None else tempfile.mkdtemp(prefix="artfs-comet-")
        try:
            self._logged.download(
                Path(root),
                overwrite_strategy=overwrite_strategy,
                include_references=sync_mode,
            )
        except Conflict as exc:
            raise ArtifactDownloadException(exc.message) from exc
        return Artifact._downloaded(self._logged.new_draft(), str(root))


def _link(uri: str | None) -> str | None:
    """The URI as the user gave it: without the pin artfs keeps in its fragment."""
    return None if uri is None else split_pin(uri)[0]
