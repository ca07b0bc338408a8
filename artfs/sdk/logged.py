"""``LoggedArtifact``: a committed version as the registry knows it.

Its attributes follow the seed APIs (W&B ``Artifact``, Comet ``LoggedArtifact``):
``name``, ``type``, ``version``, ``aliases``, ``version_tags``/``tags``,
``metadata``, ``description``, ``digest``, ``size``, ``state``, ``created_at``,
``assets``/``manifest``, ``source``. The manifest is fetched on first use, in
pages, and kept: a committed version never changes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from artfs import names
from artfs.client.models import MemberRecord, RunInfo, VersionRecord
from artfs.errors import InvalidInput, MissingReferences, NotFound, UnfetchedReference
from artfs.sdk.download import DownloadEntry, OverwriteStrategy, Unfetched, download_entries

if TYPE_CHECKING:
    from artfs.sdk.artifact import Artifact
    from artfs.sdk.client import Client

__all__ = ["LoggedArtifact", "LoggedAsset"]

log = logging.getLogger("artfs.download")

#: How many paths an error message lists before it says how many more there are.
SHOWN_PATHS = 8


@dataclass(frozen=True)
class LoggedAsset:
    logical_path: str
    size: int
    digest: str | None
    uri: str | None
    metadata: dict[str, Any]
    artifact: LoggedArtifact

    @property
    def remote(self) -> bool:
        return self.uri is not None

    def download(self, local_path: str | Path) -> Path:
        """Fetch this one file to ``local_path`` (a file path), verified: a reference
        from its own URI (``SourceChanged`` if it no longer holds what was logged,
        ``MissingReferences`` if it cannot be fetched)."""
        target = Path(local_path)
        unfetched: list[Unfetched] = []
        download_entries(
            self.artifact.client.registry,
            [DownloadEntry(target.name, self.size, self.digest, self.uri, self.logical_path)],
            target.parent,
            OverwriteStrategy.OVERWRITE,
            self.logical_path,
            cache=self.artifact.client.cache,
            offline=self.artifact.client.offline,
            unfetched=unfetched,
        )
        if unfetched:
            raise MissingReferences(
                f"{self.logical_path} of {self.artifact.name}:{self.artifact.version} could "
                f"not be fetched, so nothing was written: {unfetched[0].error.message}",
                [UnfetchedReference(self.logical_path, str(self.uri))],
            )
        return target


class LoggedArtifact:
    def __init__(
        self,
        client: Client,
        record: VersionRecord,
        noop: bool = False,
        member: MemberRecord | None = None,
    ) -> None:
        self.client = client
        self._record = record
        #: True when logging found content identical to ``latest`` and created nothing.
        self.noop = noop
        #: The member of a collection this version was reached through
        #: (``get_artifact("model-registry/resnet:production")``), else None. Its
        #: ``aliases`` are then the collection's, and ``delete()`` only unlinks.
        self.member = member

    def __repr__(self) -> str:
        via = "" if self.member is None else f" via {self.collection}:{self.member.member}"
        return f"<LoggedArtifact {self.qualified_name}:{self.version}{via}>"

    # -- attributes -----------------------------------------------------------

    @property
    def project(self) -> str:
        return self._record.project

    @property
    def name(self) -> str:
        return self._record.artifact

    @property
    def qualified_name(self) -> str:
        return f"{self.project}/{self.name}"

    @property
    def type(self) -> str:
        return self._record.type

    artifact_type = type

    @property
    def version(self) -> str:
        """The version id, ``v1``, ``v2``, …"""
        return self._record.version

    @property
    def semver(self) -> str | None:
        return self._record.semver

    @property
    def collection(self) -> str | None:
        """``REGISTRY/COLLECTION`` this version was reached through, else None."""
        return None if self.member is None else self.member.collection

    @property
    def aliases(self) -> list[str]:
        """The version's aliases; the collection's, if it was reached through one."""
        if self.member is not None:
            return list(self.member.aliases)
        return list(self._record.aliases)

    @property
    def version_tags(self) -> list[str]:
        return list(self._record.tags)

    tags = version_tags

    @property
    def artifact_tags(self) -> list[str]:
        """The artifact's own tags (Comet's ``artifact_tags``), asked of the registry."""
        return self.client.artifact_tags(self.name)

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self._record.metadata)

    @property
    def description(self) -> str:
        return self._record.description

    @property
    def digest(self) -> str:
        return self._record.digest

    @property
    def size(self) -> int:
        return self._record.size

    @property
    def file_count(self) -> int:
        return self._record.file_count

    @property
    def state(self) -> str:
        return self._record.state

    @property
    def created_at(self) -> datetime:
        return self._record.created_at

    @property
    def committed_at(self) -> datetime | None:
        return self._record.committed_at

    @property
    def source(self) -> dict[str, Any]:
        """Who produced this version: user, host, run, client."""
        return dict(self._record.source)

    @property
    def ttl_seconds(self) -> int | None:
        return self._record.ttl_seconds

    @property
    def ttl(self) -> timedelta | None:
        """How long after its commit this version expires; None: kept for good.

        Settable (seconds, a ``timedelta`` or None), as W&B's ``ttl``; a version
        past its ttl is invisible at once, and ``gc`` reclaims it later.
        """
        seconds = self._record.ttl_seconds
        return None if seconds is None else timedelta(seconds=seconds)

    @ttl.setter
    def ttl(self, value: timedelta | int | None) -> None:
        from artfs.sdk.artifact import ttl_seconds

        self._refresh(self.client.registry.set_ttl(self.name, self.version, ttl_seconds(value)))

    # -- files ----------------------------------------------------------------

    @cached_property
    def manifest(self) -> dict[str, LoggedAsset]:
        return {
            entry.path: LoggedAsset(
                logical_path=entry.path,
                size=entry.size,
                digest=entry.digest,
                uri=entry.uri,
                metadata=entry.metadata or {},
                artifact=self,
            )
            for entry in self.client.registry.list_files(self.name, self.version)
        }

    @property
    def assets(self) -> list[LoggedAsset]:
        return list(self.manifest.values())

    @property
    def remote_assets(self) -> list[LoggedAsset]:
        return [asset for asset in self.assets if asset.remote]

    def get_asset(self, logical_path: str) -> LoggedAsset:
        try:
            return self.manifest[logical_path]
        except KeyError:
            raise NotFound(f"{self.name}:{self.version} has no asset {logical_path!r}") from None

    def prefetch(self, paths: Sequence[str] | None = None, *, progress: bool | None = None) -> int:
        """Fill the machine's cache (the one mounts read) with these files, verified.

        ``paths``: files or directories of the version (all of it by default);
        one that names nothing is ``InvalidInput``, and nothing is fetched.
        Returns the bytes now cached for them. ``progress``: a bar on stderr
        (default: when it is a terminal).
        """
        from artfs.sdk.prefetching import prefetch

        return prefetch(self, paths, progress)

    def download(
        self,
        path: str | Path | None = None,
        overwrite_strategy: str | bool = "FAIL",
        path_prefix: str | None = None,
        allow_missing_references: bool = False,
        *,
        include_references: bool = True,
        use_cache: bool = True,
    ) -> Path:
        """Download the files into ``path``; returns that directory.

        ``overwrite_strategy`` decides what happens to an existing file whose
        content differs: ``FAIL`` raises ``Conflict`` before anything is
        written, ``PRESERVE`` keeps it and logs a warning, ``OVERWRITE``
        replaces it. Identical files are left alone and not fetched.
        ``path_prefix`` keeps only files whose logical path starts with it; a
        prefix no file starts with is ``InvalidInput``, and nothing is written.

        References are fetched from their URIs and verified against what was
        logged; a source that changed raises ``SourceChanged`` naming the file
        (after the other files are written). One that cannot be fetched (gone,
        unreachable) raises ``MissingReferences`` once the rest is written,
        unless ``allow_missing_references=True`` (W&B's name), which logs a
        warning per reference instead. ``include_references=False`` leaves them all out
        (Comet's ``sync_mode=False``); ``use_cache=False`` neither reads nor
        fills the machine's cache (W&B's ``skip_cache``).
        """
        strategy = OverwriteStrategy.parse(overwrite_strategy)
        root = Path(path) if path is not None else Path("artifacts") / self.name / self.version
        chosen = [
            asset
            for asset in self.assets
            if (path_prefix is None or asset.logical_path.startswith(path_prefix))
            and (include_references or not asset.remote)
        ]
        if path_prefix is not None and not chosen:
            raise InvalidInput(self._no_match(path_prefix))
        unfetched: list[Unfetched] = []
        download_entries(
            self.client.registry,
            [
                DownloadEntry(asset.logical_path, asset.size, asset.digest, asset.uri)
                for asset in chosen
            ],
            root,
            strategy,
            f"{self.name}:{self.version}",
            workers=self.client.workers,
            cache=self.client.cache if use_cache else None,
            offline=self.client.offline,
            unfetched=unfetched,
        )
        references = [
            UnfetchedReference(missed.entry.path, str(missed.entry.uri)) for missed in unfetched
        ]
        if references:
            if not allow_missing_references:
                raise MissingReferences(
                    self._missing(unfetched, len(chosen) - len(unfetched), root), references
                )
            for missed in unfetched:
                log.warning(
                    "%s of %s:%s not written: %s",
                    missed.entry.path,
                    self.name,
                    self.version,
                    missed.error.message,
                )
        return root

    def _no_match(self, path_prefix: str) -> str:
        top = sorted(
            {
                head + "/" if sep else head
                for head, sep, _ in (path.partition("/") for path in self.manifest)
            },
            key=lambda name: (name.casefold(), name),
        )
        if not top:
            return f"{self.name}:{self.version} has no files (path prefix {path_prefix!r})"
        return (
            f"no file of {self.name}:{self.version} starts with {path_prefix!r}; "
            f"its top level: {_first_few(top)}"
        )

    def _missing(self, unfetched: list[Unfetched], written: int, root: Path) -> str:
        listed = _first_few([f"{m.entry.path} ({m.error.message})" for m in unfetched])
        return (
            f"{len(unfetched)} reference(s) of {self.name}:{self.version} could not be "
            f"fetched: {listed}; the other {written} file(s) are in {root}. Pass "
            "allow_missing_references=True to download without them"
        )

    # -- changes ----------------------------------------------------------------

    def _refresh(self, record: VersionRecord) -> LoggedArtifact:
        self._record = record
        return self

    def _refresh_member(self, member: MemberRecord) -> LoggedArtifact:
        self.member = member
        return self._refresh(member.version)

    def set_alias(self, alias: str) -> LoggedArtifact:
        """Point ``alias`` here: of the collection, if reached through one."""
        if self.member is not None:
            registry, member = self.client.registry, self.member
            return self._refresh_member(
                registry.set_collection_alias(member.collection, alias, member.member)
            )
        return self._refresh(self.client.registry.set_alias(self.name, alias, self.version))

    def remove_alias(self, alias: str) -> LoggedArtifact:
        if self.member is not None:
            registry, member = self.client.registry, self.member
            registry.delete_collection_alias(member.collection, alias)
            return self._refresh_member(registry.get_member(member.collection, member.member))
        self.client.registry.delete_alias(self.name, alias)
        return self._refresh(self.client.registry.get_version(self.name, self.version))

    # -- collections ------------------------------------------------------------

    def link(self, target: str, aliases: list[str] | None = None) -> LoggedArtifact:
        """Link this version into the collection ``target`` (``REGISTRY/COLLECTION``, made
        on first use) and point the collection's ``aliases`` at it; nothing is copied.

        Returns the version as reached through the collection (``.member`` set).
        Linking a version that is a member already only moves the aliases.
        """
        names.check_collection_path(target)
        for alias in aliases or []:
            names.check_alias(alias)
        member = self.client.registry.link(target, self.name, self.version, aliases or [])
        return LoggedArtifact(self.client, member.version, member=member)

    def links(self) -> list[LoggedArtifact]:
        """Where this version is linked: each member of a collection that links it."""
        return [
            LoggedArtifact(self.client, member.version, member=member)
            for member in self.client.registry.version_links(self.name, self.version)
        ]

    def unlink(self) -> None:
        """Remove this member from the collection it was reached through (and its aliases
        there); the version itself stays."""
        if self.member is None:
            raise InvalidInput(
                f"{self.name}:{self.version} was not reached through a collection; get it as "
                "REGISTRY/COLLECTION:MEMBER to unlink it"
            )
        self.client.registry.unlink(self.member.collection, self.member.member)
        self.member = None

    def add_tag(self, tag: str) -> LoggedArtifact:
        return self._refresh(self.client.registry.add_tag(self.name, self.version, tag))

    def remove_tag(self, tag: str) -> LoggedArtifact:
        return self._refresh(self.client.registry.remove_tag(self.name, self.version, tag))

    def update(
        self, metadata: dict[str, Any] | None = None, description: str | None = None
    ) -> LoggedArtifact:
        if metadata is not None:
            names.check_metadata(metadata)  # fail before any network call, as Artifact does
        return self._refresh(
            self.client.registry.update_version(self.name, self.version, description, metadata)
        )

    def new_draft(self) -> Artifact:
        """A draft of the next version holding everything this one holds (W&B's
        ``new_draft``): entries, references, per-file and version metadata."""
        from artfs.sdk.drafts import new_draft

        return new_draft(self)

    # -- lineage (docs/design.md, "Runs and lineage") ---------------------------

    def logged_by(self) -> RunInfo | None:
        """The run that produced this version, or None if none was recorded."""
        return self.client.registry.version_runs(self.name, self.version).logged_by

    def used_by(self) -> list[RunInfo]:
        """The runs (SDK runs, mounts) that read this version, earliest first."""
        return list(self.client.registry.version_runs(self.name, self.version).used_by)

    def delete(self, delete_aliases: bool = False) -> None:
        """Tombstone this version (W&B semantics: refused while it has aliases or links,
        unless asked). Reached through a collection, only the link is deleted (W&B too)."""
        if self.member is not None:
            self.unlink()
            return
        self._refresh(self.client.registry.delete_version(self.name, self.version, delete_aliases))


def _first_few(items: list[str]) -> str:
    shown = ", ".join(items[:SHOWN_PATHS])
    rest = len(items) - SHOWN_PATHS
    return shown if rest <= 0 else f"{shown} and {rest} more"
