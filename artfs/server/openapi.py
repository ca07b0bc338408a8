"""What the API document says beyond what FastAPI infers: every error, and the grammar of names.

The document at ``/openapi.json`` is a contract (docs/design.md, "The API
document"): each route declares every status it can answer, errors with the
one error body, and every name, version, digest and cursor carries the pattern
of its validator, built from the same constants (``artfs.names``). The
constraints are declared here, not enforced by FastAPI: the validators stay the
one authority and answer in the words the SDK uses; tests/integration/
test_openapi_contract.py checks, with schemathesis, that the two agree.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Path, Query
from pydantic import BaseModel, BeforeValidator, Field

from artfs import names
from artfs.digests import DIGEST_PATTERN
from artfs.server.auth import OPEN_PATHS
from artfs.server.registry import LATEST, MAX_PAGE

__all__ = [
    "AliasPath",
    "CollectionCursor",
    "CollectionPath",
    "DigestPath",
    "ErrorBody",
    "NamePath",
    "PageLimit",
    "ProjectPath",
    "RefPath",
    "RegistryPath",
    "RunIdPath",
    "TagPath",
    "UploadIdPath",
    "VersionCursor",
    "answers",
    "bytes_body",
    "install_document",
]


class ErrorDetail(BaseModel):
    code: str = Field(description="what went wrong, for programs: e.g. not_found, conflict")
    message: str = Field(description="what went wrong, for people, naming the offending value")


class ErrorBody(BaseModel):
    """Every error answer's body (artfs/server/errors.py)."""

    error: ErrorDetail


_MEANINGS: dict[int, str] = {
    400: "Bad input: a name, path, value or body the validators refuse; nothing changed",
    401: "No token, or not a valid one",
    403: "The token's scope does not allow this",
    404: (
        "No such project, artifact, version, collection, member, alias, tag, upload or blob "
        "in this project"
    ),
    405: "The path exists, the method does not; `Allow` lists those that do",
    408: "The request body stalled, or took longer than the upload timeout",
    409: "The registry's state forbids it now: exists already, an alias moved, an upload ended",
    413: "Over a size limit",
    416: "The range lies outside the blob",
    429: "Too many uploads at once for this token; `Retry-After` says when to try again",
    503: "Busy or briefly inconsistent; try again",
    507: "The registry's disk is full",
}
#: What any route may answer: every request body is bounded in size and in time
#: as it arrives (artfs/server/request_bounds.py), whatever the route.
_ANY = (408, 413)
#: What any route under /api/v1 may answer besides: a name or value in the request
#: to refuse, and a token (401) whose scope must allow it (403).
_API = (*_ANY, 400, 401, 403)


def answers(*statuses: int, api: bool = True) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route: ``_API`` (``_ANY`` if not ``api``) and ``statuses``."""
    return {
        status: {"model": ErrorBody, "description": _MEANINGS[status]}
        for status in sorted({*(_API if api else _ANY), *statuses})
    }


def install_document(app: FastAPI) -> None:
    """Serve the document with what FastAPI cannot see, and without what it adds wrongly.

    Bad requests get 400 (artfs/server/errors.py), never FastAPI's 422. The token
    check is a middleware (artfs/server/auth.py), so the bearer scheme and which
    paths it spares are declared here.
    """
    generate = app.openapi

    def document() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        generated = generate()  # cached by FastAPI as app.openapi_schema: changed once
        generated["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"}
        }
        for path, path_item in generated["paths"].items():
            for operation in path_item.values():
                operation["responses"].pop("422", None)
                operation["security"] = [] if path in OPEN_PATHS else [{"bearer": []}]
        for unused in ("HTTPValidationError", "ValidationError"):
            generated["components"]["schemas"].pop(unused, None)
        return generated

    app.openapi = document  # type: ignore[method-assign]


def bytes_body(description: str) -> dict[str, Any]:
    """The ``openapi_extra=`` of a route that reads its body as bytes, which FastAPI cannot see."""
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    }


def _string(pattern: str, description: str) -> dict[str, Any]:
    return {"json_schema_extra": {"pattern": pattern}, "description": description}


_PROJECT = _string(names.NAME_PATTERN, "project name")
_NAME = _string(names.NAME_PATTERN, "artifact name")
_TAG = _string(names.NAME_PATTERN, "tag")
# ``latest`` is an alias that only the registry moves.
_ALIAS = _string(f"(?!{LATEST}$){names.ALIAS_PATTERN}", f"alias (other than {LATEST})")
_REF = _string(names.VERSION_REF_PATTERN, "version: v1 and up, a semantic version or an alias")
_DIGEST = _string(DIGEST_PATTERN, "sha256 of the blob's bytes, lowercase hex")
_RUN_ID = _string(names.NAME_PATTERN, "run id")
_UPLOAD_ID = _string(r"^[0-9a-f]{32}$", "the upload_id that starting the upload answered")

ProjectPath = Annotated[str, Path(**_PROJECT)]
RegistryPath = Annotated[str, Path(**_string(names.NAME_PATTERN, "registry name"))]
CollectionPath = Annotated[str, Path(**_string(names.NAME_PATTERN, "collection name"))]
NamePath = Annotated[str, Path(**_NAME)]
TagPath = Annotated[str, Path(**_TAG)]
AliasPath = Annotated[str, Path(**_ALIAS)]
RefPath = Annotated[str, Path(**_REF)]
DigestPath = Annotated[str, Path(**_DIGEST)]
UploadIdPath = Annotated[str, Path(**_UPLOAD_ID)]
RunIdPath = Annotated[str, Path(**_RUN_ID)]

VersionCursor = Annotated[
    str | None,
    Query(**_string(names.VERSION_CURSOR_PATTERN, "next_cursor of the page before")),
]
CollectionCursor = Annotated[
    str | None,
    Query(
        **_string(
            names.COLLECTION_PATH_PATTERN, "next_cursor of the page before (REGISTRY/COLLECTION)"
        )
    ),
]
PageLimit = Annotated[
    int,
    Query(
        description="entries per page",
        json_schema_extra={"minimum": 1, "maximum": MAX_PAGE},
    ),
]

# Body fields (artfs/server/models.py): the same patterns and bounds.
NameField = Annotated[str, Field(json_schema_extra={"pattern": names.NAME_PATTERN})]
AliasField = Annotated[str, Field(json_schema_extra={"pattern": names.ALIAS_PATTERN})]
RefField = Annotated[str, Field(json_schema_extra={"pattern": names.VERSION_REF_PATTERN})]
DigestField = Annotated[str, Field(json_schema_extra={"pattern": DIGEST_PATTERN})]
SemverField = Annotated[
    str,
    Field(json_schema_extra={"pattern": names.SEMVER_PATTERN, "maxLength": names.MAX_NAME_CHARS}),
]


def _not_a_bool(value: object) -> object:
    """pydantic reads ``true`` as 1 for an int field; the document says integer."""
    if isinstance(value, bool):
        raise ValueError("expected an integer, not true or false")  # noqa: TRY004 (pydantic's)
    return value


TtlField = Annotated[
    int,
    BeforeValidator(_not_a_bool),
    Field(json_schema_extra={"minimum": 1, "maximum": names.MAX_TTL_SECONDS}),
]
SizeField = Annotated[
    int,
    BeforeValidator(_not_a_bool),
    Field(json_schema_extra={"minimum": 0, "maximum": names.MAX_FILE_BYTES}),
]
MetadataField = Annotated[
    dict[str, Any],
    Field(
        description=(
            f"a JSON object: at most {names.MAX_METADATA_KEYS} keys, "
            f"{names.MAX_METADATA_DEPTH} levels deep and {names.MAX_METADATA_BYTES} bytes encoded"
        ),
        json_schema_extra={"maxProperties": names.MAX_METADATA_KEYS},
    ),
]
