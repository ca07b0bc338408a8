"""``Artifact``: a version being assembled locally, before it is logged.

Mirrors ``wandb.Artifact`` and ``comet_ml.Artifact``: ``add`` files, whole
directories (at the root, as W&B's ``add_dir``, or under ``name=``) or
file-like objects under logical paths; ``add_reference`` for
bytes that stay where they are. Nothing touches the network until
``Client.log_artifact``. File-like objects are copied to a temporary file at
``add`` time (Comet's ``copy_to_tmp``), streamed, so later changes to the
object cannot change what is logged.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.parse
import weakref
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from artfs import names
from artfs.digests import hash_file
from artfs.errors import InvalidInput

__all__ = ["Artifact", "PendingAsset"]


@dataclass
class PendingAsset:
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
    _assets: dict[str, PendingAsset] = field(default_factory=dict, init=False, repr=False)
    # How many assets lie below each directory, so file/directory clashes are O(depth).
    _dirs: Counter[str] = field(default_factory=Counter, init=False, repr=False)

    def __post_init__(self) -> None:
        names.check_name(self.name)
        if self.type is not None:
            names.check_type(self.type)
        if self.version is not None:
            names.check_semver(self.version)
        self.aliases = sorted({names.check_alias(alias) for alias in self.aliases})
        self.version_tags = sorted({names.check_tag(tag) for tag in self.version_tags})
        self.metadata = names.check_metadata(self.metadata if self.metadata is not None else {})
        if self.ttl_seconds is not None and self.ttl_seconds <= 0:
            raise InvalidInput("ttl_seconds must be positive")

    # -- building -----------------------------------------------------------

    @property
    def assets(self) -> list[PendingAsset]:
        return [self._assets[path] for path in sorted(self._assets)]

    def add(
        self,
        local_path_or_data: str | os.PathLike[str] | BinaryIO,
        logical_path: str | None = None,
        overwrite: bool = False,
        metadata: dict[str, Any] | None = None,
        *,
        name: str | None = None,
    ) -> None:
        """Add a file, a directory (recursively) or a binary file-like object.

        Where it goes is ``logical_path`` (Comet) or ``name`` (W&B), one of the
        two: for a file, its path in the artifact (default: the file's name);
        for a directory, the folder its files go under (default: the artifact's
        root, as W&B's ``add_dir``), so ``add("checkpoints/")`` adds
        ``checkpoints/a.pt`` as ``a.pt`` and ``add("checkpoints/",
        name="checkpoints")`` as ``checkpoints/a.pt``.
        """
        if name is not None and logical_path is not None and name != logical_path:
            raise InvalidInput(
                f"give the path in the artifact once: logical_path={logical_path!r} "
                f"or name={name!r}, not both"
            )
        where = logical_path if logical_path is not None else name
        if metadata is not None:
            names.check_metadata(metadata, "file metadata")
        if hasattr(local_path_or_data, "read"):
            self._add_filelike(local_path_or_data, where, overwrite, metadata)  # type: ignore[arg-type]
            return
        path = Path(local_path_or_data)
        if path.is_dir():
            self._add_dir(path, where, overwrite, metadata)
        elif path.is_file():
            self._add_file(path, where, overwrite, metadata)
        else:
            raise InvalidInput(f"{path} is neither a file nor a directory")

    def add_dir(
        self,
        local_path: str | os.PathLike[str],
        name: str | None = None,
        overwrite: bool = False,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """W&B's ``add_dir``: a directory's files, recursively, under ``name/`` (default: root)."""
        path = Path(local_path)
        if not path.is_dir():
            raise InvalidInput(f"{path} is not a directory")
        self.add(path, overwrite=overwrite, metadata=metadata, name=name)

    def add_file(
        self,
        local_path: str | os.PathLike[str],
        name: str | None = None,
        overwrite: bool = False,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """W&B's ``add_file``: one file at path ``name`` in the artifact (default: its name)."""
        path = Path(local_path)
        if not path.is_file():
            raise InvalidInput(f"{path} is not a file")
        self.add(path, overwrite=overwrite, metadata=metadata, name=name)

    def _add_dir(
        self, path: Path, folder: str | None, overwrite: bool, metadata: dict[str, Any] | None
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
        # All of the directory or none of it: a clash halfway must not leave half added.
        kept_assets, kept_dirs = dict(self._assets), Counter(self._dirs)
        try:
            for local, logical in added:
                self._put(
                    PendingAsset(names.check_logical_path(logical), local, metadata=metadata),
                    overwrite,
                )
        except InvalidInput:
            self._assets, self._dirs = kept_assets, kept_dirs
            raise

    def _add_file(
        self, path: Path, logical_path: str | None, overwrite: bool, metadata: dict[str, Any] | None
    ) -> None:
        logical = logical_path if logical_path is not None else path.name
        self._put(
            PendingAsset(names.check_logical_path(logical), path, metadata=metadata), overwrite
        )

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
        names.check_logical_path(logical_path)
        self._check_addable(logical_path, overwrite)
        handle = tempfile.NamedTemporaryFile(prefix="artfs-add-", delete=False)  # noqa: SIM115
        with handle:
            shutil.copyfileobj(stream, handle, 1 << 20)
        local = Path(handle.name)
        # Removed once logged; if the artifact is never logged, when it is collected.
        weakref.finalize(self, local.unlink, missing_ok=True)
        with open(local, "rb") as copied:
            digest, size = hash_file(copied)
        self._put(
            PendingAsset(
                logical_path, local, size=size, digest=digest, metadata=metadata, temporary=True
            ),
            overwrite,
        )

    def add_reference(
        self,
        uri: str,
        logical_path: str | None = None,
        size: int | None = None,
        digest: str | None = None,
        overwrite: bool = False,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Track bytes that stay at ``uri`` (``http(s)://``, ``s3://``, ``file://``).

        For ``file://`` the size and sha256 are taken from the file now.
        """
        parsed = urllib.parse.urlparse(uri)
        if parsed.scheme not in ("http", "https", "s3", "file"):
            raise InvalidInput(f"reference {uri!r}: scheme must be http, https, s3 or file")
        if metadata is not None:
            names.check_metadata(metadata, "file metadata")
        if logical_path is None:
            logical_path = Path(parsed.path).name or parsed.netloc
        names.check_logical_path(logical_path)
        if parsed.scheme == "file":
            local = Path(urllib.parse.unquote(parsed.path))
            if not local.is_file():
                raise InvalidInput(f"reference {uri!r}: no such file")
            with open(local, "rb") as stream:
                digest, size = hash_file(stream)
        self._put(
            PendingAsset(
                logical_path, None, size=size or 0, digest=digest, uri=uri, metadata=metadata
            ),
            overwrite,
        )

    def remove(self, logical_path: str) -> None:
        if self._assets.pop(logical_path, None) is None:
            raise InvalidInput(f"{logical_path!r} is not in artifact {self.name}")
        for parent in _parents(logical_path):
            self._dirs[parent] -= 1
            if not self._dirs[parent]:
                del self._dirs[parent]

    def _check_addable(self, logical_path: str, overwrite: bool) -> None:
        if logical_path in self._assets and not overwrite:
            raise InvalidInput(
                f"{logical_path!r} is already in artifact {self.name}; "
                "pass overwrite=True to replace it"
            )

    def _put(self, asset: PendingAsset, overwrite: bool) -> None:
        self._check_addable(asset.logical_path, overwrite)
        parents = _parents(asset.logical_path)
        for parent in parents:
            if parent in self._assets:
                raise InvalidInput(f"{asset.logical_path!r} would sit below the file {parent!r}")
        if asset.logical_path in self._dirs:
            raise InvalidInput(
                f"{asset.logical_path!r} is already a directory in artifact {self.name}"
            )
        if asset.logical_path not in self._assets:
            self._dirs.update(parents)
        self._assets[asset.logical_path] = asset


def _parents(logical_path: str) -> list[str]:
    parts = logical_path.split("/")
    return ["/".join(parts[:depth]) for depth in range(1, len(parts))]
