"""``artfs verify`` over HTTP: the stored blobs re-hashed, bad ones quarantined.

The answer is JSON lines (``application/x-ndjson``): ``{"progress": …}`` at
least once a second while the run hashes, then ``{"report": …}``; an error met
after the answer began is ``{"error": {"code", "message"}}`` as its last line.
The scope is resolved before the answer starts, so a name that does not exist
is an ordinary 404. Every verify needs an admin token (quarantine changes what
the registry serves): for every project for ``--all``, for the artifact's
project otherwise. Starlette steps the blocking generator in worker threads.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import asdict

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from artfs.errors import ArtfsError
from artfs.server.auth import AdminCaller
from artfs.server.integrity import Progress, resolve_scope, verify
from artfs.server.openapi import NamePath, RefPath, answers
from artfs.server.registry import Registry
from artfs.server.routes.deps import Project, RegistryDep

__all__ = ["router"]

log = logging.getLogger("artfs.server")

router = APIRouter()

MEDIA_TYPE = "application/x-ndjson"
_ANSWERS = {200: {"content": {MEDIA_TYPE: {}}}, **answers()}


def _lines(registry: Registry, project: str | None, name: str | None, ref: str | None,
           dry_run: bool) -> StreamingResponse:  # fmt: skip
    scope = resolve_scope(registry, project, name, ref)

    def lines() -> Iterator[bytes]:
        try:
            for step in verify(registry, scope, dry_run):
                key = "progress" if isinstance(step, Progress) else "report"
                yield json.dumps({key: asdict(step)}).encode() + b"\n"
        except ArtfsError as exc:
            log.warning("verify of %s failed: %s", scope.describe(), exc.message)
            yield json.dumps({"error": {"code": exc.code, "message": exc.message}}).encode() + b"\n"
        except Exception:
            log.exception("verify of %s failed", scope.describe())
            error = {"code": "internal", "message": "internal server error"}
            yield json.dumps({"error": error}).encode() + b"\n"

    return StreamingResponse(lines(), media_type=MEDIA_TYPE)


@router.post("/api/v1/admin/verify", response_class=StreamingResponse, responses=_ANSWERS)
def verify_all(
    registry: RegistryDep, _caller: AdminCaller, dry_run: bool = False
) -> StreamingResponse:
    """Every blob that a committed version of any project names."""
    return _lines(registry, None, None, None, dry_run)


@router.post(
    "/api/v1/projects/{project}/artifacts/{name}/verify",
    response_class=StreamingResponse,
    responses={**_ANSWERS, **answers(404)},
)
def verify_artifact(
    registry: RegistryDep,
    _caller: AdminCaller,
    project: Project,
    name: NamePath,
    dry_run: bool = False,
) -> StreamingResponse:
    """Every blob that a committed version of the artifact names."""
    return _lines(registry, project, name, None, dry_run)


@router.post(
    "/api/v1/projects/{project}/artifacts/{name}/versions/{ref}/verify",
    response_class=StreamingResponse,
    responses={**_ANSWERS, **answers(404)},
)
def verify_version(
    registry: RegistryDep,
    _caller: AdminCaller,
    project: Project,
    name: NamePath,
    ref: RefPath,
    dry_run: bool = False,
) -> StreamingResponse:
    """Every blob the version names."""
    return _lines(registry, project, name, ref, dry_run)
