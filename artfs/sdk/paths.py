"""``path_artifact``: a file or directory as a draft, DVCLive's ``log_artifact(path)`` way.

One call, one path: the artifact's name defaults to the path's stem (``model.pt``
→ ``model``), and how the bytes are kept is chosen by two switches, as DVCLive
has them. ``cache=True`` (the default) uploads the bytes, read when the draft
is logged; ``copy=True`` snapshots them now instead, so a file that changes
while it uploads cannot reach the version; ``cache=False`` uploads nothing and
records each file as a ``file://`` reference with its size and sha256: the
annotation without the storage. ``artfs log`` and ``artfs.compat.dvclive`` use it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from artfs import names
from artfs.errors import InvalidInput
from artfs.sdk.artifact import Artifact

__all__ = ["path_artifact", "stem_name"]


def stem_name(path: Path) -> str:
    """The artifact name a path gives when none is: its last part without the extension."""
    stem = path.resolve().stem if path.name in ("", ".", "..") else path.stem
    try:
        return names.check_name(stem)
    except InvalidInput as exc:
        raise InvalidInput(
            f"{path}: its stem {stem!r} is not an artifact name ({exc.message}); give a name"
        ) from exc


def path_artifact(
    path: str | os.PathLike[str],
    name: str | None = None,
    type: str | None = None,
    description: str = "",
    tags: Iterable[str] = (),
    metadata: dict[str, Any] | None = None,
    *,
    copy: bool = False,
    cache: bool = True,
) -> Artifact:
    """A draft holding ``path`` (a file, or a directory's files below the root)."""
    local = Path(path)
    if not (local.is_file() or local.is_dir()):
        raise InvalidInput(f"{local} is neither a file nor a directory")
    if copy and not cache:
        raise InvalidInput("copy and cache=False exclude each other: a reference keeps no copy")
    artifact = Artifact(
        name if name is not None else stem_name(local),
        type=type,
        description=description,
        metadata=metadata,
        version_tags=tags,
    )
    if cache:
        artifact.add(local, policy="mutable" if copy else "immutable")
        return artifact
    if local.is_file():
        artifact.add_reference(local.absolute().as_uri(), local.name)
        return artifact
    for root, dirs, files in os.walk(local):  # as Artifact.add walks a directory
        dirs.sort()
        for file_name in sorted(files):
            file = Path(root) / file_name
            artifact.add_reference(file.absolute().as_uri(), file.relative_to(local).as_posix())
    return artifact
