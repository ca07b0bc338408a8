"""Comet's ``Experiment`` for what it does with artifacts, over ``artfs.sdk.run.Run``:
``log_artifact`` records it as the producer, ``get_artifact`` as a consumer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from artfs.compat.comet.artifact import LATEST, Artifact, LoggedArtifact
from artfs.compat.comet.exceptions import ArtifactNotFound
from artfs.errors import NotFound
from artfs.sdk.run import Run, init

__all__ = ["APIExperiment", "Experiment"]


@dataclass(frozen=True)
class APIExperiment:
    """An experiment as the registry recorded it (a run): ``key``, ``name``, ``workspace``."""

    key: str
    name: str
    workspace: str
    project_name: str
    user: str
    host: str
    parameters: dict[str, Any]
    start_server_timestamp: datetime

    @property
    def id(self) -> str:
        return self.key

    @classmethod
    def _from_run(cls, run: Any) -> APIExperiment:
        return cls(
            key=run.id,
            name=run.id,
            workspace=run.project,
            project_name=run.project,
            user=run.user,
            host=run.host,
            parameters=dict(run.config),
            start_server_timestamp=run.started_at,
        )


class Experiment:
    """``Experiment(api_key=None, project_name=None, workspace=None)``: a run.

    ``api_key`` is the artfs token (default ``$ARTFS_TOKEN``); ``project_name``
    (else ``workspace``) the artfs project. The experiment key is the run id
    (``$ARTFS_RUN``, else a new one).
    """

    def __init__(
        self,
        api_key: str | None = None,
        project_name: str | None = None,
        workspace: str | None = None,
        experiment_key: str | None = None,
    ) -> None:
        self._run: Run = init(experiment_key, token=api_key, project=project_name or workspace)

    def get_key(self) -> str:
        return self._run.id

    @property
    def id(self) -> str:
        return self._run.id

    def log_artifact(self, artifact: Artifact) -> LoggedArtifact:
        """Log ``artifact`` as produced by this experiment."""
        return LoggedArtifact(self._run.log_artifact(artifact._draft))

    def get_artifact(
        self,
        artifact_name: str,
        workspace: str | None = None,
        project_name: str | None = None,
        version_or_alias: str | None = None,
    ) -> LoggedArtifact:
        """``name``, ``name:version_or_alias`` or ``workspace/name:…`` (default: ``latest``),
        recorded as read by this experiment."""
        name = artifact_name.rpartition("/")[2]
        if version_or_alias is not None:
            name = f"{name.partition(':')[0]}:{version_or_alias}"
        elif ":" not in name:
            name = f"{name}:{LATEST}"
        try:
            return LoggedArtifact(self._run.use_artifact(name))
        except NotFound as exc:
            raise ArtifactNotFound(exc.message) from exc

    def end(self) -> None:
        self._run.finish()

    def __enter__(self) -> Experiment:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.end()
