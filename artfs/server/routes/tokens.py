"""Token management, for admin tokens of every project: create (shown once), list, revoke."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from artfs.server.auth import AdminCaller, Authenticator
from artfs.server.openapi import NameField, answers
from artfs.server.tokens import Scope

router = APIRouter(prefix="/api/v1/tokens")


class CreateToken(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scope: Scope = Scope.READ
    project: NameField | None = None


def _authenticator(request: Request) -> Authenticator:
    authenticator: Authenticator = request.app.state.authenticator
    return authenticator


@router.post("", status_code=201, responses=answers())
async def create_token(request: Request, _caller: AdminCaller, body: CreateToken) -> dict[str, Any]:
    """A new token; the answer's ``token`` is its secret, which is never shown again."""
    made = await run_in_threadpool(_authenticator(request).tokens.create, body.scope, body.project)
    return {**made.record.to_json(), "token": made.secret}


@router.get("", responses=answers())
async def list_tokens(request: Request, _caller: AdminCaller) -> dict[str, Any]:
    records = await run_in_threadpool(_authenticator(request).tokens.list)
    return {"tokens": [record.to_json() for record in records]}


@router.delete("/{token_id}", responses=answers(404))
async def revoke_token(request: Request, _caller: AdminCaller, token_id: str) -> dict[str, Any]:
    return (await _authenticator(request).revoke(token_id)).to_json()
