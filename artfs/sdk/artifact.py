"""``Artifact``: a version being assembled locally, before it is logged.

Mirrors ``wandb.Artifact`` and ``comet_ml.Artifact``: ``add`` files, whole
directories (at the root, as W&B's ``add_dir``, or under ``name=``) or
file-like objects under logical paths; ``add_reference`` for
bytes that stay where they are. Nothing touches the network until
``Client.log_artifact``.

What is logged is what was added, at ``add`` time (W&B's default ``policy=
"mutable"``): files and file-like objects are copied to a temporary file as
they are added (Comet's ``copy_to_tmp``), hashed in the same pass, so an edit
before logging cannot reach the version; ``policy="immutable"`` skips the copy
for files the caller promises not to change. Once logged (or after ``finalize()``),
a draft refuses changes with ``Finalized``; ``LoggedArtifact.new_draft`` or
``incremental=True`` start the next one (``artfs.sdk.drafts``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import weakref
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import IO, Any, BinaryIO

from artfs import names
from artfs.digests import hash_file
from artfs.errors import Finalized, InvalidInput, NotFound
from artfs.transfer.parallel import parallel

__all__ = ["POLICIES", "Artifact", "PendingAsset", "ttl_seconds"]

COPY_BLOCK = 4 << 20

#: W&B's ``policy``: "mutable" copies a file at ``add``, "immutable" trusts it to stay.
POLICIES = ("mutable", "immutable")


@dataclass
class PendingAsset:
    """One entry of a draft: local bytes, a reference (``uri``), or, with neither, a
    blob the registry holds already (an entry of the version a draft started from)."""

    logical_path: str
    local_path: Path | None
    size: int | None = None
    digest: str | None = None
    uri: str | None = None
    metadata: dict[str, Any] | None = None
    temporary: bool = False

    @property
    def is_reference(self) -> bool:
        return self.uri is not None

    @property
    def path(self) -> str:
        """W&B's name for the logical path (``ArtifactManifestEntry.path``)."""
        return self.logical_path


@dataclass
class Artifact:
    name: str
    type: str | None = None
    version: str | None = None
    aliases: Iterable[str] = ()
    metadata: dict[str, Any] | None = None
    version_tags: Iterable[str] = ()
    description: str = ""
    ttl_seconds: int | None = None
    #: W&B's incremental artifact: logged on top of the artifact's ``latest`` version,
    #: whose entries (and metadata and description, unless given here) it keeps.
    incremental: bool = False
    #: Comet's ``artifact_tags``: tags of the artifact as a whole, set when it is logged.
    artifact_tags: Iterable[str] = ()
    _assets: dict[str, PendingAsset] = field(default_factory=dict, init=False, repr=False)
    # How many assets lie below each directory, so file/directory clashes are O(depth).
    _dirs: Counter[str] = field(default_factory=Counter, init=False, repr=False)
    #: Paths (files or directories) an incremental draft drops from the version below it.
    _removed: set[str] = field(default_factory=set, init=False, repr=False)
    _finalized: bool = field(default=False, init=False, repr=False)
    #: Copies made at ``add``: removed once logged, or when the draft is collected.
    _temporaries: list[Path] = field(default_factory=list, init=False, repr=False)

    def __setattr__(self, key: str, value: Any) -> None:
        if getattr(self, "_finalized", False) and not key.startswith("_"):
            raise Finalized(self._finalized_message())
        super().__setattr__(key, value)

    def __post_init__(self) -> None:
        names.check_name(self.name)
        if self.type is not None:
            names.check_type(self.type)
        if self.version is not None:
            names.check_semver(self.version)
        self.aliases = sorted({names.check_alias(alias) for alias in self.aliases})
        self.version_tags = sorted({names.check_tag(tag) for tag in self.version_tags})
        self.artifact_tags = sorted({names.check_tag(tag) for tag in self.artifact_tags})
        self.metadata = names.check_metadata(self.metadata if self.metadata is not None else {})
        if self.ttl_seconds is not None:
            self.ttl_seconds = ttl_seconds(self.ttl_seconds)
        weakref.finalize(self, _unlink_all, self._temporaries)

    @property
    def ttl(self) -> timedelta | None:
        """W&B's ``ttl``: how long after its commit the version expires (None: never)."""
        return None if self.ttl_seconds is None else timedelta(seconds=self.ttl_seconds)

    @ttl.setter
    def ttl(self, value: timedelta | int | None) -> None:
        self.ttl_seconds = ttl_seconds(value)

    # -- state ---------------------------------------------------------------

    @property
    def finalized(self) -> bool:
        return self._finalized

    def finalize(self) -> None:
        """Refuse every change from now on (``log_artifact`` finalizes too), as W&B does."""
        self._finalized = True

    def _finalized_message(self) -> str:
        return (
            f"artifact {self.name} is finalized (logged or finalize()d) and cannot change; "
            "start a new draft (LoggedArtifact.new_draft()) instead"
        )

    def _check_open(self) -> None:
        if self._finalized:
            raise Finalized(self._finalized_message())

    def _logged(self) -> None:
        """Finalize after a successful log; local copies go, the registry has the bytes now.

        Entries keep their digests, so logging the same draft again still
        works (commit by digest): it is the no-op unless forced.
        """
        for asset in self._assets.values():
            if asset.uri is None and asset.digest is not None:
                if asset.temporary and asset.local_path is not None:
                    Path(asset.local_path).unlink(missing_ok=True)
                asset.local_path, asset.temporary = None, False
        self._finalized = True

    # -- building -----------------------------------------------------------

    @property
    def assets(self) -> list[PendingAsset]:
        return [self._assets[path] for path in sorted(self._assets)]

    @property
    def removed(self) -> list[str]:
        """Paths an incremental draft removes from the version it is logged on top of."""
        return sorted(self._removed)

    def add(
        self,
        local_path_or_data: str | os.PathLike[str] | BinaryIO,
        logical_path: str | None = None,
        overwrite: bool = False,
        metadata: dict[str, Any] | None = None,
        *,
        name: str | None = None,
        policy: str = "mutable",
    ) -> None:
        """Add a file, a directory (recursively) or a binary file-like object.

        Where it goes is ``logical_path`` (Comet) or ``name`` (W&B), one of the
        two: for a file, its path in the artifact (default: the file's name);
        for a directory, the folder its files go under (default: the artifact's
        root, as W&B's ``add_dir``), so ``add("checkpoints/")`` adds
        ``checkpoints/a.pt`` as ``a.pt`` and ``add("checkpoints/",
        name="checkpoints")`` as ``checkpoints/a.pt``.

        ``policy="mutable"`` (the default) copies files now, so later edits do not
        reach the version; ``"immutable"`` reads them at log time instead.
        """
        self._check_open()
        if policy not in POLICIES:
            raise InvalidInput(f"policy must be one of {', '.join(POLICIES)}, not {policy!r}")
        where = _where(logical_path, name)
        if metadata is not None:
            names.check_metadata(metadata, "file metadata")
        if hasattr(local_path_or_data, "read"):
            self._add_filelike(local_path_or_data, where, overwrite, metadata)  # type: ignore[arg-type]
            return
        path = Path(local_path_or_data)
        copy = policy == "mutable"
        if path.is_dir():
            self._add_dir(path, where, overwrite, metadata, copy)
        elif path.is_file():
            self._add_file(path, where, overwrite, metadata, copy)
        else:
            raise InvalidInput(f"{path} is neither a file nor a directory")

    def add_dir(
        self,
        local_path: str | os.PathLike[str],
        name: str | None = None,
        overwrite: bool = False,
        metadata: dict[str, Any] | None = None,
        *,
        policy: str = "mutable",
    ) -> None:
        """W&B's ``add_dir``: a directory's files, recursively, under ``name/`` (default: root)."""
        self._check_open()
        path = Path(local_path)
        if not path.is_dir():
            raise InvalidInput(f"{path} is not a directory")
        self.add(path, overwrite=overwrite, metadata=metadata, name=name, policy=policy)

    def add_file(
        self,
        local_path: str | os.PathLike[str],
        name: str | None = None,
        overwrite: bool = False,
        metadata: dict[str, Any] | None = None,
        *,
        policy: str = "mutable",
    ) -> None:
        """W&B's ``add_file``: one file at path ``name`` in the artifact (default: its name)."""
        self._check_open()
        path = Path(local_path)
        if not path.is_file():
            raise InvalidInput(f"{path} is not a file")
        self.add(path, overwrite=overwrite, metadata=metadata, name=name, policy=policy)

    def _add_dir(
        self,
        path: Path,
        folder: str | None,
        overwrite: bool,
        metadata: dict[str, Any] | None,
        copy: bool,
    ) -> None:
        prefix = ""
        if folder is not None:
            # "checkpoints/" and "checkpoints" name the same folder.
            prefix = names.check_logical_path(folder.rstrip("/")) + "/"
        added = []
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for file_name in sorted(files):
                local = Path(root) / file_name
                relative = local.relative_to(path).as_posix()
                added.append((local, prefix + relative))
        pending = [
            PendingAsset(names.check_logical_path(logical), local, metadata=metadata)
            for local, logical in added
        ]
        self._put_all(pending, overwrite)
        if copy:  # after the checks: a refused directory copies nothing
            self._copy(pending)

    def _add_file(
        self,
        path: Path,
        logical_path: str | None,
        overwrite: bool,
        metadata: dict[str, Any] | None,
        copy: bool,
    ) -> None:
        logical = names.check_logical_path(logical_path if logical_path is not None else path.name)
        asset = PendingAsset(logical, path, metadata=metadata)
        if copy:
            self._check_placeable(asset, overwrite)
            self._copy([asset])
        self._put(asset, overwrite)

    def _add_filelike(
        self,
        stream: BinaryIO,
        logical_path: str | None,
        overwrite: bool,
        metadata: dict[str, Any] | None,
    ) -> None:
        if logical_path is None:
            name = getattr(stream, "name", None)
            if not isinstance(name, str):
                raise InvalidInput("a file-like object needs a logical_path")
            logical_path = Path(name).name
        asset = PendingAsset(names.check_logical_path(logical_path), None, metadata=metadata)
        self._check_placeable(asset, overwrite)
        _copy_stream(stream, asset)
        self._temporaries.append(asset.local_path)  # type: ignore[arg-type]
        self._put(asset, overwrite)

    def _copy(self, assets: list[PendingAsset]) -> None:
        """Snapshot files being added, in parallel; all of them or (on a failure) none."""
        try:
            parallel(_snapshot, assets)
        finally:
            self._temporaries.extend(a.local_path for a in assets if a.temporary)  # type: ignore[misc]

    def add_reference(
        self,
        uri: str,
        name: str | None = None,
        checksum: bool = True,
        max_objects: int | None = None,
        *,
        logical_path: str | None = None,
        overwrite: bool = False,
        metadata: dict[str, Any] | None = None,
    ) -> list[PendingAsset]:
        """Track bytes that stay at ``uri`` (``file://``, ``http(s)://``, ``s3://``).

        One object is one entry, at ``name`` (or Comet's ``logical_path``; default:
        its file name). A directory or an S3 prefix is one entry per object below
        it, under the folder ``name`` (default: the root), at most ``max_objects``
        of them (default ``DEFAULT_MAX_OBJECTS``; more is ``InvalidInput``).
        ``checksum=True`` streams each object once now and records its sha256;
        ``checksum=False`` records only what the source offers (size, ETag, S3
        version id, mtime). Either way a reader refuses bytes that no longer
        match (``SourceChanged``). Returns the entries added.
        """
        from artfs.references import describe

        self._check_open()
        where = _where(logical_path, name)
        if where is not None:
            where = names.check_logical_path(where.rstrip("/"))
        if metadata is not None:
            names.check_metadata(metadata, "file metadata")
        try:
            described = describe(uri, checksum=checksum, max_objects=max_objects)
        except NotFound as exc:
            raise InvalidInput(exc.message) from exc
        pending = [
            PendingAsset(
                names.check_logical_path(
                    "/".join(part for part in (where, found.relative) if part)
                    if found.expanded or where is None
                    else where
                ),
                None,
                size=found.size,
                digest=found.digest,
                uri=found.uri,
                metadata=metadata,
            )
            for found in described
        ]
        self._put_all(pending, overwrite)
        return pending

    def remove(self, item: str | Any) -> None:
        """Remove a file, a directory (everything below it) or an entry (an asset object).

        In an incremental draft, a path that is not among the entries added to
        it is removed from the version it is logged on top of; ``log_artifact``
        refuses the draft if that version has no such path.
        """
        self._check_open()
        logical_path = _item_path(item)
        if logical_path in self._assets:
            self._drop(logical_path)
        elif logical_path in self._dirs:
            prefix = logical_path + "/"
            for path in [path for path in self._assets if path.startswith(prefix)]:
                self._drop(path)
        elif not self.incremental:
            raise InvalidInput(f"{logical_path!r} is not in artifact {self.name}")
        if self.incremental:
            self._removed.add(logical_path)

    def _drop(self, logical_path: str) -> None:
        asset = self._assets.pop(logical_path)
        if asset.temporary and asset.local_path is not None:
            Path(asset.local_path).unlink(missing_ok=True)
        for parent in _parents(logical_path):
            self._dirs[parent] -= 1
            if not self._dirs[parent]:
                del self._dirs[parent]

    def _check_placeable(self, asset: PendingAsset, overwrite: bool) -> None:
        if asset.logical_path in self._assets and not overwrite:
            raise InvalidInput(
                f"{asset.logical_path!r} is already in artifact {self.name}; "
                "pass overwrite=True to replace it"
            )
        for parent in _parents(asset.logical_path):
            if parent in self._assets:
                raise InvalidInput(f"{asset.logical_path!r} would sit below the file {parent!r}")
        if asset.logical_path in self._dirs:
            raise InvalidInput(
                f"{asset.logical_path!r} is already a directory in artifact {self.name}"
            )

    def _put_all(self, pending: list[PendingAsset], overwrite: bool) -> None:
        """All of them or none: a clash halfway must not leave half added."""
        kept_assets, kept_dirs = dict(self._assets), Counter(self._dirs)
        try:
            for asset in pending:
                self._put(asset, overwrite)
        except InvalidInput:
            self._assets, self._dirs = kept_assets, kept_dirs
            raise

    def _put(self, asset: PendingAsset, overwrite: bool) -> None:
        self._check_open()
        self._check_placeable(asset, overwrite)
        replaced = self._assets.get(asset.logical_path)
        if replaced is None:
            self._dirs.update(_parents(asset.logical_path))
        elif replaced.temporary and replaced.local_path is not None:
            Path(replaced.local_path).unlink(missing_ok=True)
        self._assets[asset.logical_path] = asset
        self._removed.discard(asset.logical_path)


def ttl_seconds(value: timedelta | int | None) -> int | None:
    """A ttl given as seconds or a ``timedelta`` (None: keep for good), as whole seconds."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
        if seconds != int(seconds):
            raise InvalidInput(f"ttl must be whole seconds, not {value}")
        value = int(seconds)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInput(f"ttl must be seconds or a timedelta, not {type(value).__name__}")
    return names.check_ttl_seconds(value)


def _where(logical_path: str | None, name: str | None) -> str | None:
    """Where an addition goes: Comet's ``logical_path`` or W&B's ``name``, one of the two."""
    if name is not None and logical_path is not None and name != logical_path:
        raise InvalidInput(
            f"give the path in the artifact once: logical_path={logical_path!r} "
            f"or name={name!r}, not both"
        )
    return logical_path if logical_path is not None else name


def _item_path(item: object) -> str:
    """The logical path ``remove`` is given: a string, or an entry that carries one."""
    path: object = item
    if not isinstance(item, str):
        path = getattr(item, "logical_path", None) or getattr(item, "path", None)
    if not isinstance(path, str):
        raise InvalidInput(f"remove() takes a path or an entry, not {type(item).__name__}")
    return names.check_logical_path(path.rstrip("/"))


def _copy_stream(stream: BinaryIO, asset: PendingAsset) -> None:
    """Copy ``stream`` to a new temporary file, hashing it in the same pass; ``asset``
    takes the copy as its bytes."""
    hasher = hashlib.sha256()
    with _temporary(asset) as handle:
        while block := stream.read(COPY_BLOCK):
            hasher.update(block)
            handle.write(block)
    asset.digest, asset.size = hasher.hexdigest(), Path(handle.name).stat().st_size


def _snapshot(asset: PendingAsset) -> None:
    """Make ``asset`` a copy of its file as it is now (W&B's ``policy="mutable"``).

    The kernel copies (``shutil.copyfile``: no bytes through Python, a reflink
    where the filesystem has them), then the copy is hashed: the digest is of
    exactly the bytes that will be uploaded.
    """
    source = asset.local_path
    assert source is not None
    try:
        with _temporary(asset) as handle:
            shutil.copyfile(source, handle.name)
        with open(handle.name, "rb") as copied:
            asset.digest, asset.size = hash_file(copied)
    except OSError as exc:
        raise InvalidInput(f"cannot read {source}: {exc.strerror}") from exc


@contextlib.contextmanager
def _temporary(asset: PendingAsset) -> Iterator[IO[bytes]]:
    """A new temporary file for ``asset``'s copy, removed again if the copy fails."""
    handle = tempfile.NamedTemporaryFile(prefix="artfs-add-", delete=False)  # noqa: SIM115
    try:
        with handle:
            yield handle
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    asset.local_path, asset.temporary = Path(handle.name), True


def _unlink_all(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def _parents(logical_path: str) -> list[str]:
    parts = logical_path.split("/")
    return ["/".join(parts[:depth]) for depth in range(1, len(parts))]
