"""What every route needs: the registry, and the bound on JSON request bodies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from artfs import names
from artfs.server.openapi import ProjectPath
from artfs.server.registry import Registry

__all__ = ["MAX_JSON_BODY", "Project", "RegistryDep"]

#: Large enough for a 10,000-entry manifest batch with per-file metadata;
#: enforced as the body arrives, by ``artfs.server.request_bounds``.
MAX_JSON_BODY = 64 << 20


def get_registry(request: Request) -> Registry:
    registry: Registry = request.app.state.registry
    return registry


def project_name(project: ProjectPath) -> str:
    return names.check_name(project)


RegistryDep = Annotated[Registry, Depends(get_registry)]
Project = Annotated[str, Depends(project_name)]
