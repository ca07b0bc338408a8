"""W&B's artifact API on artfs: ``from artfs.compat import wandb``.

``wandb.init`` (a run: ``log_artifact``, ``use_artifact``, ``link_artifact``,
``finish``, recorded as lineage), ``wandb.Artifact`` (a draft, then the logged
version), ``wandb.Api().artifact`` and W&B's exceptions (``wandb.errors``),
translated to artfs's SDK; see ``artfs.compat.wandb.artifact`` and docs/compat.md.
"""

from __future__ import annotations

import os
from typing import Any

from artfs.compat.wandb import errors
from artfs.compat.wandb.api import Api
from artfs.compat.wandb.artifact import (
    Artifact,
    ArtifactCollection,
    ArtifactManifest,
    ArtifactManifestEntry,
    File,
)
from artfs.compat.wandb.errors import (
    ArtifactFinalizedError,
    ArtifactNotLoggedError,
    CommError,
    Error,
    UsageError,
)
from artfs.compat.wandb.runs import Run
from artfs.compat.wandb.session import active_run, set_active_run

__all__ = [
    "Api",
    "Artifact",
    "ArtifactCollection",
    "ArtifactFinalizedError",
    "ArtifactManifest",
    "ArtifactManifestEntry",
    "ArtifactNotLoggedError",
    "CommError",
    "Error",
    "File",
    "Run",
    "UsageError",
    "errors",
    "finish",
    "init",
    "log_artifact",
    "run",
    "use_artifact",
]

#: W&B's ``wandb.run``: the run ``init`` started, until ``finish`` (read through
#: ``__getattr__``, so it is always the current one).
run: Run | None


def __getattr__(name: str) -> Any:
    if name == "run":
        return _started[0] if _started and active_run() is not None else None
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: The run ``init`` started last (a list, so the functions below need no ``global``).
_started: list[Run] = []


def init(
    project: str | None = None,
    entity: str | None = None,
    config: dict[str, Any] | None = None,
    id: str | None = None,
    name: str | None = None,
    job_type: str | None = None,
    **client_options: Any,
) -> Run:
    """Start the run ``id`` (default: ``$ARTFS_RUN``, else a new id) in ``project``.

    ``entity`` is the artfs project when ``project`` is not given (artfs has one
    namespace); ``name`` is the run id when ``id`` is not given; ``job_type`` is
    kept in the run's config.
    """
    from artfs.sdk.run import init as start

    finish()
    if job_type is not None:
        config = {**(config or {}), "job_type": job_type}
    core = start(id or name, config=config, project=project or entity, **client_options)
    set_active_run(core)
    _started[:] = [Run(core, project or entity)]
    return _started[0]


def _current() -> Run:
    if not _started or active_run() is None:
        raise UsageError("no run: call wandb.init() first")
    return _started[0]


def log_artifact(
    artifact_or_path: Artifact | str | os.PathLike[str],
    name: str | None = None,
    type: str | None = None,
    aliases: list[str] | None = None,
    tags: list[str] | None = None,
) -> Artifact:
    """``wandb.log_artifact``: ``run.log_artifact`` of the current run."""
    return _current().log_artifact(artifact_or_path, name, type, aliases, tags)


def use_artifact(
    artifact_or_name: Artifact | str, type: str | None = None, aliases: list[str] | None = None
) -> Artifact:
    """``wandb.use_artifact``: ``run.use_artifact`` of the current run."""
    return _current().use_artifact(artifact_or_name, type, aliases)


def finish(exit_code: int | None = None, quiet: bool | None = None) -> None:
    """End the current run, if there is one."""
    if _started:
        _started.pop().finish()
