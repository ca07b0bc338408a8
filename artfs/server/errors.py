"""The one table from domain errors to HTTP statuses, and the handlers that apply it.

Every error leaves the server as ``{"error": {"code": ..., "message": ...}}``.
Request-shape problems FastAPI finds itself (malformed JSON, wrong types) are
bad input like any other: 400, never 422 and never 500.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from artfs.errors import (
    ArtfsError,
    Busy,
    Conflict,
    Corrupt,
    Forbidden,
    InvalidInput,
    LocalError,
    NoSpace,
    NotFound,
    ReadOnly,
    TooLarge,
    Transient,
    Unauthorized,
)

__all__ = ["HTTP_STATUS", "RETRY_AFTER", "error_response", "install_error_handlers", "status_for"]

log = logging.getLogger("artfs.server")

_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")

HTTP_STATUS: dict[type[ArtfsError], int] = {
    InvalidInput: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    TooLarge: 413,
    ReadOnly: 403,
    Corrupt: 500,
    NoSpace: 507,
    Busy: 429,
    Transient: 503,
    LocalError: 500,
    ArtfsError: 500,
}
#: Seconds a 429 asks the caller to wait before it tries again.
RETRY_AFTER = 1


def status_for(error: ArtfsError) -> int:
    for cls in type(error).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 500


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        if err.get("type") == "json_invalid":
            parts.append(f"malformed JSON body: {err.get('ctx', {}).get('error', 'cannot parse')}")
            continue
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{where or 'body'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def _allowed_methods(request: Request) -> str:
    """The ``Allow`` of a 405 (RFC 9110): the methods of every route of the path.

    Starlette names only those of the first route that matched the path, and a
    path often has several (GET and POST ``/artifacts``): each method is tried.
    """
    routes = request.app.router.routes
    return ", ".join(
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ArtfsError)
    async def _domain(_request: Request, exc: ArtfsError) -> JSONResponse:
        status = status_for(exc)
        if status >= 500:
            log.error("request failed: %s", exc.message)
        response = error_response(status, exc.code, exc.message)
        if status == 429:
            response.headers["Retry-After"] = str(RETRY_AFTER)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, InvalidInput.code, _describe_validation(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {
            400: InvalidInput.code,  # e.g. a body that is not UTF-8
            404: NotFound.code,
            405: "method_not_allowed",
            413: TooLarge.code,
        }.get(exc.status_code, "http_error")
        response = error_response(exc.status_code, code, str(exc.detail))
        response.headers.update(exc.headers or {})
        if exc.status_code == 405:
            response.headers["Allow"] = _allowed_methods(request)
        return response

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return error_response(500, "internal", "internal server error")
