"""What every route needs: the registry, and a bound on JSON request bodies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from artfs import names
from artfs.errors import TooLarge
from artfs.server.registry import Registry

__all__ = ["MAX_JSON_BODY", "Project", "RegistryDep", "bounded_body"]

#: Large enough for a 10,000-entry manifest batch with per-file metadata.
MAX_JSON_BODY = 64 << 20


def get_registry(request: Request) -> Registry:
    registry: Registry = request.app.state.registry
    return registry


def bounded_body(request: Request) -> None:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_JSON_BODY:
        raise TooLarge(f"request body of {length} bytes is over the {MAX_JSON_BODY}-byte limit")


def project_name(project: str) -> str:
    return names.check_name(project)


RegistryDep = Annotated[Registry, Depends(get_registry)]
Project = Annotated[str, Depends(project_name)]
