"""W&B's run, for what it does with artifacts: ``log_artifact``, ``use_artifact``,
``link_artifact``, ``finish``; over ``artfs.sdk.run.Run``, so lineage is recorded."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from artfs.compat.wandb._translate import translated
from artfs.compat.wandb.artifact import Artifact
from artfs.compat.wandb.errors import InvalidValue
from artfs.config import resolve_config
from artfs.sdk import run as core

__all__ = ["Run"]


class Run:
    def __init__(self, run: core.Run, project: str | None = None) -> None:
        self._run = run
        self.project = resolve_config(None, project, None).project

    @property
    def id(self) -> str:
        return self._run.id

    name = id

    @property
    def config(self) -> dict[str, Any]:
        return self._run.config

    def log_artifact(
        self,
        artifact_or_path: Artifact | str | os.PathLike[str],
        name: str | None = None,
        type: str | None = None,
        aliases: list[str] | None = None,
        tags: list[str] | None = None,
    ) -> Artifact:
        """Log a draft (or a path: a file or directory, named ``run-<id>-<basename>`` unless
        ``name``, of type ``unspecified`` unless ``type``); returns the artifact, logged."""
        if isinstance(artifact_or_path, Artifact):
            artifact = artifact_or_path
        else:
            path = Path(artifact_or_path)
            artifact = Artifact(name or f"run-{self.id}-{path.name}", type or "unspecified")
            if path.is_dir():
                artifact.add_dir(str(path))
            else:
                artifact.add_file(str(path))
        artifact._log(self._run.log_artifact, aliases, tags)
        return artifact

    def use_artifact(
        self,
        artifact_or_name: Artifact | str,
        type: str | None = None,
        aliases: list[str] | None = None,
        use_as: str | None = None,
    ) -> Artifact:
        """The version ``name:alias`` (``name`` alone: ``latest``) or a logged artifact,
        recorded as read by this run."""
        with translated():
            if isinstance(artifact_or_name, Artifact):
                logged = self._run.use_artifact(artifact_or_name._require_logged())
            else:
                logged = self._run.use_artifact(artifact_or_name)
        if type is not None and logged.type != type:
            raise InvalidValue(f"{logged.name} is of type {logged.type}, not {type}")
        used = Artifact._from_logged(logged)
        if aliases:
            used.aliases = [*used.aliases, *aliases]
            used.save()
        return used

    def link_artifact(
        self, artifact: Artifact, target_path: str, aliases: list[str] | None = None
    ) -> Artifact:
        return artifact.link(target_path, aliases)

    def finish(self, exit_code: int | None = None, quiet: bool | None = None) -> None:
        from artfs.compat.wandb.session import active_run, set_active_run

        self._run.finish()
        if active_run() is self._run:
            set_active_run(None)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.finish()
