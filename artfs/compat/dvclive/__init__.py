"""DVCLive's ``Live.log_artifact`` on artfs: ``from artfs.compat.dvclive import Live``.

``Live(dir="dvclive")`` is a run; ``log_artifact(path, type, name, desc,
labels, meta, copy, cache)`` logs ``path`` as the next version of the artifact
``name`` (default: the path's stem) with ``type``, ``desc`` as its description,
``labels`` as version tags and ``meta`` as its metadata. ``copy=True`` copies
``path`` into ``<dir>/artifacts/`` first and logs the copy, as DVCLive does;
``cache=False`` uploads nothing and records the files as ``file://`` references
(with size and sha256): the annotation without the stored copy.
``type="model"`` also links the version into ``model-registry/<name>``, where
DVC's model registry would show it.
"""

from __future__ import annotations

import builtins
import os
import shutil
from pathlib import Path
from typing import Any

from artfs.compat.dvclive.error import DvcLiveError, InvalidDataTypeError
from artfs.errors import InvalidInput
from artfs.sdk.paths import path_artifact
from artfs.sdk.run import init

__all__ = ["DvcLiveError", "InvalidDataTypeError", "Live"]

#: ``type="model"`` puts a model in DVC's model registry; artfs links it into
#: ``model-registry/<name>``, a collection the registry's model stages live in.
MODEL = "model"
MODEL_REGISTRY = "model-registry"


class Live:
    """``Live(dir="dvclive", exp_name=None)``: a run named ``exp_name`` (default
    ``$ARTFS_RUN``, else a new id) that records what it logs as its output."""

    def __init__(
        self, dir: str = "dvclive", exp_name: str | None = None, **client_options: Any
    ) -> None:
        self.dir = dir
        self._run = init(exp_name, **client_options)

    @property
    def artifacts_path(self) -> str:
        """Where ``copy=True`` puts the copies (DVCLive's ``dvclive/artifacts``)."""
        return os.path.join(self.dir, "artifacts")

    def log_artifact(
        self,
        path: str | os.PathLike[str],
        type: str | None = None,
        name: str | None = None,
        desc: str | None = None,
        labels: list[str] | None = None,
        meta: dict[str, Any] | None = None,
        copy: bool | None = False,
        cache: bool | None = True,
    ) -> None:
        if not isinstance(path, str | os.PathLike):
            raise InvalidDataTypeError(path, builtins.type(path))
        source = Path(path)
        if copy:
            source = self._copy(source)
        artifact = path_artifact(
            source, name, type, desc or "", labels or (), meta, cache=cache is not False
        )
        logged = self._run.log_artifact(artifact)
        if type == MODEL:  # DVC's model registry: here, the model-registry collections
            logged.link(f"{MODEL_REGISTRY}/{logged.name}")

    def _copy(self, source: Path) -> Path:
        if not (source.is_file() or source.is_dir()):
            raise InvalidInput(f"{source} is neither a file nor a directory")
        target = Path(self.artifacts_path) / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target)
        return target

    def end(self) -> None:
        self._run.finish()

    def __enter__(self) -> Live:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.end()
