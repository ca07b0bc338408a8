"""Runs, the versions they read, and the lineage graph (artfs/server/lineage.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from artfs.server.lineage import DEFAULT_DEPTH, MAX_DEPTH, Lineage, RunFields
from artfs.server.models import RunBody, UseBody
from artfs.server.openapi import NamePath, RefPath, RunIdPath, answers
from artfs.server.routes.deps import Project

router = APIRouter(prefix="/api/v1/projects/{project}")

JSON = dict[str, Any]


def get_lineage(request: Request) -> Lineage:
    lineage: Lineage = request.app.state.lineage
    return lineage


LineageDep = Annotated[Lineage, Depends(get_lineage)]


def _fields(body: RunBody) -> RunFields:
    return RunFields(
        kind=body.kind,
        user=body.user,
        host=body.host,
        mount=body.mount,
        config=body.config,
        message=body.message,
    )


@router.put("/runs/{run_id}", responses=answers())
def start_run(lineage: LineageDep, project: Project, run_id: RunIdPath, body: RunBody) -> JSON:
    """The run ``run_id``, made from the body if it does not exist (its first word stays)."""
    return lineage.start_run(project, run_id, _fields(body))


@router.get("/runs/{run_id}", responses=answers(404))
def get_run(lineage: LineageDep, project: Project, run_id: RunIdPath) -> JSON:
    return lineage.get_run(project, run_id)


@router.post("/runs/{run_id}/finish", responses=answers(404))
def finish_run(lineage: LineageDep, project: Project, run_id: RunIdPath) -> JSON:
    return lineage.finish_run(project, run_id)


@router.post("/runs/{run_id}/uses", responses=answers(404))
def record_use(lineage: LineageDep, project: Project, run_id: RunIdPath, body: UseBody) -> JSON:
    """``run_id`` read ``artifact:version`` (recorded once; a read token may say so)."""
    return lineage.record_use(project, run_id, _fields(body), body.artifact, body.version)


@router.get("/artifacts/{name}/versions/{ref}/runs", responses=answers(404))
def version_runs(lineage: LineageDep, project: Project, name: NamePath, ref: RefPath) -> JSON:
    """The run that produced the version (``logged_by``, or null) and those that read it."""
    return lineage.version_runs(project, name, ref)


@router.get("/artifacts/{name}/versions/{ref}/lineage", responses=answers(404))
def version_lineage(
    lineage: LineageDep,
    project: Project,
    name: NamePath,
    ref: RefPath,
    direction: Annotated[
        str,
        Query(description="up, down or both", json_schema_extra={"enum": ["up", "down", "both"]}),
    ] = "both",
    depth: Annotated[
        int,
        Query(description="levels of runs", json_schema_extra={"minimum": 1, "maximum": MAX_DEPTH}),
    ] = DEFAULT_DEPTH,
) -> JSON:
    """The graph around the version: producers and what they read (up), readers and
    what they produced (down), ``depth`` levels of runs each way."""
    return lineage.graph(project, name, ref, direction, depth)
