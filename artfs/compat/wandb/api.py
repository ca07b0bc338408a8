"""W&B's public ``Api``, for what it says of artifacts: ``Api().artifact("name:alias")``."""

from __future__ import annotations

from artfs.compat.wandb._translate import ArtifactNotFoundError, translated
from artfs.compat.wandb.artifact import Artifact
from artfs.compat.wandb.errors import InvalidValue
from artfs.compat.wandb.session import client_for

__all__ = ["Api"]


class Api:
    def __init__(self, overrides: dict[str, str] | None = None) -> None:
        #: W&B's ``overrides``: of its keys, ``project`` means something here.
        self.project = (overrides or {}).get("project")

    def artifact(self, name: str, type: str | None = None) -> Artifact:
        """``name:alias``, ``registry/collection:alias``, or W&B's ``entity/project/name:…``
        (``Artifact.qualified_name``), whose entity is the artfs project and whose
        project is that same project or a collection's registry."""
        project, ref = self.project, name
        parts = name.split("/")
        if len(parts) == 3:
            project = parts[0]
            ref = parts[2] if parts[1] == parts[0] else f"{parts[1]}/{parts[2]}"
        with translated():
            logged = client_for(project).get_artifact(ref)
        if type is not None and logged.type != type:
            raise InvalidValue(f"{name} is of type {logged.type}, not {type}")
        return Artifact._from_logged(logged)

    def artifact_exists(self, name: str, type: str | None = None) -> bool:
        try:
            self.artifact(name, type)
        except (ArtifactNotFoundError, InvalidValue):
            return False
        return True
