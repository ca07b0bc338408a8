"""W&B's ``Artifact``: one object that is a draft until it is logged, then the version.

A draft wraps ``artfs.Artifact``; once logged (``save()``, or a run's
``log_artifact``) or fetched (``Api().artifact``, a run's ``use_artifact``) it
wraps ``artfs.LoggedArtifact``. Members keep W&B's names, defaults and return
types (``name`` is ``mnist:v3`` once logged, ``download`` returns a ``str``,
``add_file`` the added ``ArtifactManifestEntry``); changes to a logged one's
description, metadata, aliases and tags are sent by ``save()``, as in W&B.
Where artfs differs on purpose, docs/compat.md says so.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from artfs import names
from artfs.compat.wandb._translate import translated
from artfs.compat.wandb.errors import (
    ArtifactFinalizedError,
    ArtifactNotLoggedError,
    InvalidValue,
)
from artfs.digests import hash_file, version_digest
from artfs.references import split_pin
from artfs.sdk import artifact as core
from artfs.sdk.artifact import ttl_seconds
from artfs.sdk.download import OverwriteStrategy

if TYPE_CHECKING:
    from artfs.client.models import RunInfo
    from artfs.sdk.logged import LoggedArtifact

__all__ = ["Artifact", "ArtifactCollection", "ArtifactManifest", "ArtifactManifestEntry", "File"]

#: W&B's default bound on the objects a directory or prefix reference may expand to.
W_AND_B_MAX_OBJECTS = 10_000_000

#: ``latest`` is the registry's to move; W&B code often names it among the aliases it logs.
LATEST = "latest"


@dataclass
class ArtifactManifestEntry:
    """One file of an artifact: ``path``, ``digest`` (sha256), ``size``, ``ref`` (a
    reference's URI) and ``extra`` (the file's metadata)."""

    path: str
    digest: str | None
    size: int | None
    ref: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    local_path: str | None = None
    _artifact: Artifact | None = field(default=None, repr=False, compare=False)

    def download(self, root: str | None = None) -> str:
        """Fetch this file to ``root/path`` (default root: the artifact's), verified."""
        artifact = self._artifact
        if artifact is None or artifact._logged is None:
            raise ArtifactNotLoggedError(f"{self.path}: the artifact is not logged yet")
        target = Path(root if root is not None else artifact._default_root()) / self.path
        with translated():
            artifact._logged.get_asset(self.path).download(target)
        return str(target)


@dataclass
class ArtifactManifest:
    entries: dict[str, ArtifactManifestEntry]

    def get_entry_by_path(self, path: str) -> ArtifactManifestEntry | None:
        return self.entries.get(path)


@dataclass
class File:
    """A file of a logged artifact, as ``Artifact.files()`` lists them (W&B's public ``File``)."""

    name: str
    size: int
    digest: str | None
    url: str | None
    _entry: ArtifactManifestEntry = field(repr=False, compare=False)

    def download(self, root: str = ".", replace: bool = False, exist_ok: bool = False) -> IO[str]:
        """Fetch the file to ``root/name`` and return it opened for reading, as W&B does;
        an existing file is ``ValueError`` unless ``replace`` (or ``exist_ok``: kept)."""
        target = Path(root) / self.name
        if target.exists() and not replace:
            if not exist_ok:
                raise InvalidValue(f"{target} already exists; pass replace=True to overwrite it")
        else:
            self._entry.download(root)
        return open(target)


@dataclass(frozen=True)
class ArtifactCollection:
    """A series of versions: an artifact's own (W&B's sequence) or a collection it is
    linked into (W&B's portfolio)."""

    name: str
    type: str
    project: str
    entity: str


class Artifact:
    """``Artifact(name, type, description=None, metadata=None, incremental=False)``."""

    def __init__(
        self,
        name: str,
        type: str,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
        incremental: bool = False,
        use_as: str | None = None,  # deprecated by W&B; it names nothing artfs keeps
    ) -> None:
        with translated():
            draft = core.Artifact(
                name,
                type=type,
                description=description or "",
                metadata=metadata,
                incremental=incremental,
            )
        self._draft: core.Artifact | None = draft
        self._logged: LoggedArtifact | None = None
        self._aliases: list[str] = []
        self._tags: list[str] = []
        self._description = draft.description
        self._metadata: dict[str, Any] = {}
        #: A logged artifact's new ttl, held until ``save()`` (W&B's way).
        self._ttl: timedelta | None = None
        self._ttl_changed = False

    @classmethod
    def _from_logged(cls, logged: LoggedArtifact) -> Artifact:
        artifact = cls.__new__(cls)
        artifact._draft = None
        artifact._adopt(logged)
        return artifact

    def _adopt(self, logged: LoggedArtifact) -> None:
        """Become the logged version ``logged``: its aliases, tags and metadata from now on."""
        self._logged = logged
        self._ttl, self._ttl_changed = None, False
        self._aliases = list(logged.aliases)
        self._tags = list(logged.version_tags)
        self._description = logged.description
        self._metadata = logged.metadata

    def __repr__(self) -> str:
        return f"<Artifact {self.name}{' (draft)' if self.is_draft() else ''}>"

    # -- state -----------------------------------------------------------------

    def is_draft(self) -> bool:
        return self._logged is None

    def _require_logged(self) -> LoggedArtifact:
        if self._logged is None:
            raise ArtifactNotLoggedError(
                f"artifact {self._name} is not logged yet; log it first (save() or "
                "run.log_artifact())"
            )
        return self._logged

    def _require_draft(self) -> core.Artifact:
        if self._draft is None or self._logged is not None:
            raise ArtifactFinalizedError(
                f"artifact {self.name} is logged and cannot change; start a new draft "
                "(new_draft()) instead"
            )
        return self._draft

    def finalize(self) -> None:
        """Refuse further changes (logging finalizes too)."""
        if self._draft is not None:
            self._draft.finalize()

    @property
    def _name(self) -> str:
        if self._logged is not None:
            return self._logged.name
        assert self._draft is not None
        return self._draft.name

    # -- attributes ------------------------------------------------------------

    # W&B's names of a version are two: the "secondary" ones (name, version, project,
    # collection) say where it was reached, a collection it is linked into or its own
    # series; the "source" ones always say its own series. artfs has one namespace per
    # registry, its project, which stands for W&B's entity; a collection's REGISTRY part
    # stands for W&B's project (model-registry), its own series for the project itself.

    def _secondary(self) -> tuple[str, str, str]:
        """(project, collection, version) of where this version was reached."""
        logged = self._require_logged()
        if logged.member is None or logged.collection is None:
            return logged.project, logged.name, logged.version
        registry, _, collection = logged.collection.partition("/")
        return registry, collection, logged.member.member

    @property
    def name(self) -> str:
        """``name:vN`` once logged (``collection:vN`` if reached through one); the name before."""
        if self._logged is None:
            return self._name
        _, collection, version = self._secondary()
        return f"{collection}:{version}"

    @property
    def source_name(self) -> str:
        logged = self._require_logged()
        return f"{logged.name}:{logged.version}"

    @property
    def type(self) -> str:
        if self._logged is not None:
            return self._logged.type
        assert self._draft is not None
        return self._draft.type or ""

    @property
    def version(self) -> str:
        return self._secondary()[2]

    @property
    def source_version(self) -> str:
        return self._require_logged().version

    @property
    def project(self) -> str:
        return self._secondary()[0]

    @property
    def entity(self) -> str:
        return self._require_logged().project

    source_entity = source_project = entity

    @property
    def qualified_name(self) -> str:
        """``entity/project/name``: what ``Api().artifact`` takes back."""
        return f"{self.entity}/{self.project}/{self.name}"

    @property
    def source_qualified_name(self) -> str:
        return f"{self.entity}/{self.source_project}/{self.source_name}"

    @property
    def id(self) -> str | None:
        return None if self._logged is None else self.qualified_name

    @property
    def source_collection(self) -> ArtifactCollection:
        logged = self._require_logged()
        return ArtifactCollection(logged.name, logged.type, logged.project, logged.project)

    @property
    def collection(self) -> ArtifactCollection:
        project, collection, _ = self._secondary()
        return ArtifactCollection(collection, self.type, project, self.entity)

    @property
    def commit_hash(self) -> str:
        return self._require_logged().digest

    @property
    def created_at(self) -> str:
        return self._require_logged().created_at.isoformat()

    @property
    def updated_at(self) -> str:
        """When the version was committed: its content never changes after that."""
        logged = self._require_logged()
        return (logged.committed_at or logged.created_at).isoformat()

    @property
    def state(self) -> str:
        return "PENDING" if self._logged is None else self._logged.state

    @property
    def description(self) -> str | None:
        if self._logged is None:
            assert self._draft is not None
            return self._draft.description or None
        return self._description or None

    @description.setter
    def description(self, value: str | None) -> None:
        if self._logged is None:
            with translated():
                self._require_draft().description = value or ""
        self._description = value or ""

    @property
    def metadata(self) -> dict[str, Any]:
        """A dict to change in place; a logged artifact sends changes with ``save()``."""
        if self._logged is None:
            assert self._draft is not None
            assert self._draft.metadata is not None
            return self._draft.metadata
        return self._metadata

    @metadata.setter
    def metadata(self, value: dict[str, Any]) -> None:
        with translated():
            checked = names.check_metadata(dict(value))
            if self._logged is None:
                self._require_draft().metadata = checked
        self._metadata = checked

    @property
    def aliases(self) -> list[str]:
        return self._aliases

    @aliases.setter
    def aliases(self, value: list[str]) -> None:
        with translated():
            self._aliases = [names.check_alias(alias) for alias in value if alias != LATEST]

    @property
    def tags(self) -> list[str]:
        return self._tags

    @tags.setter
    def tags(self, value: list[str]) -> None:
        with translated():
            self._tags = [names.check_tag(tag) for tag in value]

    @property
    def ttl(self) -> timedelta | None:
        """How long after its commit the version expires (None: never); on a logged
        artifact, a new value is sent by ``save()``."""
        if self._logged is None:
            assert self._draft is not None
            return self._draft.ttl
        return self._ttl if self._ttl_changed else self._logged.ttl

    @ttl.setter
    def ttl(self, value: timedelta | None) -> None:
        with translated():
            if self._logged is None:
                self._require_draft().ttl = value
                return
            ttl_seconds(value)  # refused now, not at save()
        self._ttl, self._ttl_changed = value, True

    @property
    def digest(self) -> str:
        if self._logged is not None:
            return self._logged.digest
        assert self._draft is not None
        entries = zip(self._draft.assets, self._draft_entries(hashed=True), strict=True)
        # As the registry computes it: a reference without a checksum by its pinned URI.
        return version_digest(
            (entry.path, entry.digest or asset.uri or "", entry.size or 0)
            for asset, entry in entries
        )

    @property
    def size(self) -> int:
        if self._logged is not None:
            return self._logged.size
        return sum(entry.size or 0 for entry in self._draft_entries(hashed=True))

    @property
    def file_count(self) -> int:
        if self._logged is not None:
            return self._logged.file_count
        assert self._draft is not None
        return len(self._draft.assets)

    @property
    def manifest(self) -> ArtifactManifest:
        return ArtifactManifest({entry.path: entry for entry in self._entries()})

    # -- entries ---------------------------------------------------------------

    def _entries(self) -> list[ArtifactManifestEntry]:
        if self._logged is None:
            return self._draft_entries(hashed=False)
        return [
            ArtifactManifestEntry(
                asset.logical_path,
                asset.digest,
                asset.size,
                _ref(asset.uri),
                dict(asset.metadata),
                None,
                self,
            )
            for asset in self._logged.assets
        ]

    def _draft_entries(self, hashed: bool) -> list[ArtifactManifestEntry]:
        assert self._draft is not None
        return [_draft_entry(asset, hashed, self) for asset in self._draft.assets]

    def get_entry(self, name: str) -> ArtifactManifestEntry:
        """The entry at path ``name``; ``KeyError`` if there is none (W&B)."""
        entry = self.manifest.entries.get(name)
        if entry is None:
            raise KeyError(f"{self.name} has no entry {name!r}")
        return entry

    get_path = get_entry

    # -- building ------------------------------------------------------------

    def add_file(
        self,
        local_path: str,
        name: str | None = None,
        is_tmp: bool | None = False,
        skip_cache: bool | None = False,
        policy: str = "mutable",
        overwrite: bool = False,
    ) -> ArtifactManifestEntry:
        """Add one file at ``name`` (default: its file name); returns its entry.

        ``skip_cache`` asks what artfs does anyway: an upload never copies into
        the local cache. ``is_tmp`` names the file after its digest, as W&B does.
        """
        draft = self._require_draft()
        local = Path(local_path)
        if not local.is_file():
            raise InvalidValue(f"{local} is not a file")
        logical = name if name is not None else local.name
        if is_tmp:
            with open(local, "rb") as stream:
                digest, _ = hash_file(stream)
            folder, _, file_name = logical.rpartition("/")
            _stem, dot, suffix = file_name.partition(".")
            logical = (folder + "/" if folder else "") + digest[:20] + dot + suffix
        existing = {asset.logical_path: asset for asset in draft.assets}.get(logical)
        if existing is not None and not overwrite and _same_file(existing, local):
            return self.get_entry(logical)  # W&B: the same file twice is no change
        with translated():
            draft.add_file(local, name=logical, overwrite=overwrite, policy=policy)
        return self.get_entry(logical)

    def add_dir(
        self,
        local_path: str,
        name: str | None = None,
        skip_cache: bool | None = False,
        policy: str = "mutable",
    ) -> None:
        """Add a directory's files, recursively, under ``name/`` (default: the root)."""
        draft = self._require_draft()
        with translated():
            draft.add_dir(local_path, name=name, policy=policy)

    @contextmanager
    def new_file(
        self, name: str, mode: str = "x", encoding: str | None = None
    ) -> Iterator[IO[Any]]:
        """Open a new file to write; it is added at ``name`` when the block ends."""
        draft = self._require_draft()
        if "x" in mode and name in {asset.logical_path for asset in draft.assets}:
            raise InvalidValue(f"{name!r} is already in artifact {draft.name}")
        folder = Path(tempfile.mkdtemp(prefix="artfs-new-file-"))
        try:
            path = folder / Path(name).name
            with open(path, mode, encoding=encoding) as stream:
                yield stream
            with translated():
                draft.add_file(path, name=name, overwrite="x" not in mode)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def add_reference(
        self,
        uri: str,
        name: str | None = None,
        checksum: bool = True,
        max_objects: int | None = None,
    ) -> list[ArtifactManifestEntry]:
        """Track bytes that stay at ``uri`` (``file://``, ``http(s)://``, ``s3://``): one
        entry, or one per object below a directory or prefix (at most ``max_objects``,
        W&B's default 10,000,000). Returns the entries added."""
        draft = self._require_draft()
        limit = W_AND_B_MAX_OBJECTS if max_objects is None else max_objects
        with translated():
            added = draft.add_reference(uri, name, checksum=checksum, max_objects=limit)
        return [_draft_entry(asset, False, self) for asset in added]

    def remove(self, item: str | ArtifactManifestEntry) -> None:
        """Remove a file, a directory (all below it) or an entry."""
        draft = self._require_draft()
        with translated():
            draft.remove(item)

    # -- logged --------------------------------------------------------------

    def _default_root(self) -> str:
        return os.path.join("artifacts", self.name)

    def download(
        self,
        root: str | None = None,
        allow_missing_references: bool = False,
        skip_cache: bool | None = None,
        path_prefix: str | None = None,
    ) -> str:
        """Download the files into ``root`` (default ``./artifacts/NAME:vN``); returns it.

        Files of ``root`` that are not the artifact's are left alone; a file of
        the artifact that differs is replaced, as W&B does. References are
        fetched from their URIs, verified. ``skip_cache=True`` neither reads nor
        fills the machine's cache.
        """
        logged = self._require_logged()
        target = root if root is not None else self._default_root()
        with translated():
            logged.download(
                target,
                overwrite_strategy=OverwriteStrategy.OVERWRITE,
                path_prefix=path_prefix,
                allow_missing_references=allow_missing_references,
                use_cache=not skip_cache,
            )
        return str(target)

    def files(self, names: list[str] | None = None, per_page: int = 50) -> list[File]:
        """The files (all, or those at the paths ``names``)."""
        self._require_logged()
        return [
            File(entry.path, entry.size or 0, entry.digest, entry.ref, entry)
            for entry in self._entries()
            if names is None or entry.path in names
        ]

    def verify(self, root: str | None = None) -> None:
        """Check that ``root`` holds exactly the artifact's files, each with its recorded
        sha256 (a reference logged with ``checksum=False`` has none to check);
        ``ValueError`` names the first that does not."""
        self._require_logged()
        entries = {entry.path: entry for entry in self._entries()}
        base = Path(root if root is not None else self._default_root())
        seen = set()
        for folder, _, files in os.walk(base):
            for file_name in files:
                path = Path(folder) / file_name
                logical = path.relative_to(base).as_posix()
                entry = entries.get(logical)
                if entry is None:
                    raise InvalidValue(f"{path} is not a file of {self.name}")
                if entry.digest is not None:
                    with open(path, "rb") as stream:
                        if hash_file(stream)[0] != entry.digest:
                            raise InvalidValue(f"{path} differs from {logical} of {self.name}")
                seen.add(logical)
        missing = sorted(set(entries) - seen)
        if missing:
            raise InvalidValue(f"{base} lacks {', '.join(missing)} of {self.name}")

    def wait(self, timeout: int | None = None) -> Artifact:
        """The artifact, once logged: logging returns only after the commit, so at once."""
        self._require_logged()
        return self

    def save(self, project: str | None = None, settings: object = None) -> None:
        """Log a draft; send a logged artifact's changed description, metadata,
        aliases and tags."""
        from artfs.compat.wandb.session import active_run, client_for

        if self._logged is None:
            run = active_run()
            self._log(run.log_artifact if run is not None else client_for(project).log_artifact)
            return
        logged = self._logged
        with translated():
            if self._description != logged.description or self._metadata != logged.metadata:
                logged.update(metadata=dict(self._metadata), description=self._description)
            for alias in sorted(set(logged.aliases) - set(self._aliases) - {LATEST}):
                logged.remove_alias(alias)
            for alias in sorted(set(self._aliases) - set(logged.aliases)):
                logged.set_alias(alias)
            for tag in sorted(set(logged.version_tags) - set(self._tags)):
                logged.remove_tag(tag)
            for tag in sorted(set(self._tags) - set(logged.version_tags)):
                logged.add_tag(tag)
            if self._ttl_changed:
                logged.ttl = self._ttl
        self._adopt(logged)

    def _log(
        self,
        log: Callable[[core.Artifact], LoggedArtifact],
        aliases: list[str] | None = None,
        tags: list[str] | None = None,
    ) -> None:
        """Log the draft with ``log`` (a client's or a run's): its aliases and tags go too."""
        draft = self._require_draft()
        with translated():
            draft.aliases = sorted(
                {names.check_alias(a) for a in [*self._aliases, *(aliases or [])] if a != LATEST}
            )
            draft.version_tags = sorted({names.check_tag(t) for t in [*self._tags, *(tags or [])]})
            logged = log(draft)
        self._adopt(logged)

    def link(self, target_path: str, aliases: list[str] | None = None) -> Artifact:
        """Link this version into the collection ``target_path``, with ``aliases`` there.

        ``registry/collection`` (W&B's ``project/portfolio``, e.g.
        ``model-registry/resnet``), ``entity/registry/collection``, or a bare
        ``portfolio``, which goes into the registry named after the project.
        Returns the version as reached through the collection.
        """
        logged = self._require_logged()
        parts = target_path.split("/")
        target = f"{logged.project}/{target_path}" if len(parts) == 1 else "/".join(parts[-2:])
        with translated():
            member = logged.link(target, [a for a in aliases or [] if a != LATEST])
        return Artifact._from_logged(member)

    def logged_by(self) -> RunInfo | None:
        """The run that logged this version (None if none was recorded)."""
        with translated():
            return self._require_logged().logged_by()

    def used_by(self) -> list[RunInfo]:
        """The runs (and mounts) that read this version, earliest first."""
        with translated():
            return self._require_logged().used_by()

    def delete(self, delete_aliases: bool = False) -> None:
        """Delete this version; refused while it has aliases unless ``delete_aliases``."""
        logged = self._require_logged()
        with translated():
            logged.delete(delete_aliases)

    def new_draft(self) -> Artifact:
        """A draft of the next version, holding all this one holds."""
        logged = self._require_logged()
        artifact = Artifact.__new__(Artifact)
        draft = logged.new_draft()
        artifact._draft, artifact._logged = draft, None
        artifact._aliases, artifact._tags = [], []
        artifact._description, artifact._metadata = draft.description, {}
        artifact._ttl, artifact._ttl_changed = None, False
        return artifact


def _draft_entry(
    asset: core.PendingAsset, hashed: bool, artifact: Artifact
) -> ArtifactManifestEntry:
    digest, size = asset.digest, asset.size
    if hashed and digest is None and asset.uri is None and asset.local_path is not None:
        with open(asset.local_path, "rb") as stream:  # policy="immutable": hashed at log time
            digest, size = hash_file(stream)
    local = None if asset.local_path is None else str(asset.local_path)
    return ArtifactManifestEntry(
        asset.logical_path,
        digest,
        size,
        _ref(asset.uri),
        dict(asset.metadata or {}),
        local,
        artifact,
    )


def _ref(uri: str | None) -> str | None:
    """A reference's URI as the user gave it: without the pin artfs keeps in its fragment."""
    return None if uri is None else split_pin(uri)[0]


def _same_file(asset: core.PendingAsset, local: Path) -> bool:
    if asset.digest is None:
        return False
    with open(local, "rb") as stream:
        return hash_file(stream)[0] == asset.digest
