"""Operations on the registry as a whole: health and garbage collection."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter

from artfs.server.openapi import answers
from artfs.server.routes.deps import RegistryDep

router = APIRouter()


@router.get("/healthz", responses=answers(api=False))
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.post("/api/v1/admin/gc", responses=answers())
def gc(registry: RegistryDep, dry_run: bool = False) -> dict[str, Any]:
    return asdict(registry.gc(dry_run))
