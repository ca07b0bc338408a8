"""Who is asking, and may they: the bearer-token check in front of every route.

``AuthMiddleware`` wraps the whole application, the blob-read fast path
included, so no route can be forgotten: every path but ``OPEN_PATHS`` needs a
live token (401 otherwise), a token for one project meets every other project
as 404 (never 403: it learns nothing of what other projects hold), and a token
without the scope the request needs gets 403. ``required_scope`` is the one
table from requests to scopes (docs/design.md, "Authentication and
authorization"). The caller is left on the request as ``request.state.caller``.

Tokens found are remembered for ``REMEMBER_SECONDS``, so a mount's stream of
blob reads costs a hash and a dictionary lookup each, not a database query; a
revocation reaches this process at once and other worker processes within
that time. A failed lookup is never remembered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

import anyio
from cachetools import TTLCache
from fastapi import Depends, Request
from starlette.types import ASGIApp, Receive, Send
from starlette.types import Scope as AsgiScope

from artfs.errors import ArtfsError, Forbidden, NotFound, Unauthorized
from artfs.server.errors import error_response, status_for
from artfs.server.tokens import Scope, TokenRecord, TokenStore, hash_secret

__all__ = [
    "OPEN_PATHS",
    "AdminCaller",
    "AuthMiddleware",
    "Authenticator",
    "Caller",
    "CallerDep",
    "current_caller",
    "require_scope",
    "required_scope",
]

#: Paths anyone may ask for: liveness and the API's own description.
OPEN_PATHS = frozenset({"/healthz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
REMEMBER_SECONDS = 2.0
#: Longer than any secret ``TokenStore.create`` makes; a header past it is malformed.
MAX_SECRET = 200

_PROJECT_PATH = re.compile(r"/api/v1/projects/([^/]+)(/.*)?")
_USES_PATH = re.compile(r"/api/v1/projects/[^/]+/runs/[^/]+/uses")
_SECRET = re.compile(r"[\x21-\x7e]+")


@dataclass(frozen=True)
class Caller:
    """The token a request came with (never its secret)."""

    token_id: str
    scope: Scope
    #: ``None``: every project.
    project: str | None

    @classmethod
    def of(cls, record: TokenRecord) -> Caller:
        return cls(record.id, record.scope, record.project)


def required_scope(method: str, path: str) -> Scope:
    """The scope a request needs: reads ``read``, changes ``write``, the server ``admin``."""
    if path.startswith(("/api/v1/admin/", "/api/v1/tokens")) or path in (
        "/api/v1/admin",
        "/api/v1/tokens",
    ):
        return Scope.ADMIN
    if method in ("GET", "HEAD"):
        return Scope.READ
    # A batch read is a POST only because its list of digests does not fit a URL.
    if method == "POST" and path.endswith("/blob-batch"):
        return Scope.READ
    # A reader records what it read (lineage): a read-only mount leaves its uses too.
    if method == "POST" and _USES_PATH.fullmatch(path):
        return Scope.READ
    if _PROJECT_PATH.fullmatch(path) is None:
        return Scope.READ  # not an API route: FastAPI answers it (404, 405)
    return Scope.WRITE


def authorize(caller: Caller, method: str, path: str) -> None:
    """Raise ``NotFound`` (another project) or ``Forbidden`` (scope) unless ``caller`` may."""
    project = _PROJECT_PATH.fullmatch(path)
    if project is not None and caller.project not in (None, project.group(1)):
        raise NotFound(f"project {project.group(1)} not found")
    needed = required_scope(method, path)
    if not caller.scope.allows(needed):
        raise Forbidden(f"this token has {caller.scope.value} scope; this needs {needed.value}")
    if needed is Scope.ADMIN and caller.project is not None:
        raise Forbidden("this needs an admin token for every project")


def _bearer_secret(scope: AsgiScope) -> str:
    """The secret of the request's one ``Authorization: Bearer`` header (never echoed)."""
    found: list[bytes] = [value for key, value in scope["headers"] if key == b"authorization"]
    if not found:
        raise Unauthorized("this registry needs a token: set ARTFS_TOKEN or 'token' in config")
    if len(found) > 1:
        raise Unauthorized("malformed Authorization header: sent more than once")
    kind, _, rest = found[0].decode("latin-1").strip().partition(" ")
    secret = rest.strip()
    if kind.lower() != "bearer" or not _SECRET.fullmatch(secret) or len(secret) > MAX_SECRET:
        raise Unauthorized("malformed Authorization header: expected 'Bearer <token>'")
    return secret


class Authenticator:
    """The token store, and the tokens found in it lately (see the module doc)."""

    def __init__(self, tokens: TokenStore) -> None:
        self.tokens = tokens
        self._known: TTLCache[str, Caller] = TTLCache(maxsize=10_000, ttl=REMEMBER_SECONDS)

    async def caller(self, scope: AsgiScope) -> Caller:
        digest = hash_secret(_bearer_secret(scope))
        caller = self._known.get(digest)
        if caller is None:
            record = await anyio.to_thread.run_sync(self.tokens.find, digest)
            if record is None:
                raise Unauthorized("invalid or revoked token")
            caller = self._known[digest] = Caller.of(record)
        return caller

    async def revoke(self, token_id: str) -> TokenRecord:
        """Revoke a token, at once for this process (``REMEMBER_SECONDS`` for others)."""
        record = await anyio.to_thread.run_sync(self.tokens.revoke, token_id)
        self._known.clear()  # here, on the event loop: the cache is not thread-safe
        return record


class AuthMiddleware:
    """ASGI middleware: authenticate, authorize, then pass the request on (module doc)."""

    def __init__(self, app: ASGIApp, authenticator: Authenticator) -> None:
        self.app = app
        self.authenticator = authenticator

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        try:
            caller = await self.authenticator.caller(scope)
            authorize(caller, scope["method"], scope["path"])
        except ArtfsError as exc:
            response = error_response(status_for(exc), exc.code, exc.message)
            if isinstance(exc, Unauthorized):
                response.headers["WWW-Authenticate"] = "Bearer"
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["caller"] = caller
        await self.app(scope, receive, send)


def current_caller(request: Request) -> Caller:
    """The caller ``AuthMiddleware`` left on the request."""
    caller: Caller | None = getattr(request.state, "caller", None)
    if caller is None:  # an open path: nobody was asked for a token
        raise Unauthorized("this needs a token")
    return caller


def require_scope(needed: Scope) -> object:
    """A route dependency: the caller must hold ``needed`` (the middleware checks it too)."""

    def check(caller: Annotated[Caller, Depends(current_caller)]) -> Caller:
        if not caller.scope.allows(needed):
            raise Forbidden(f"this token has {caller.scope.value} scope; this needs {needed.value}")
        return caller

    return Depends(check)


CallerDep = Annotated[Caller, Depends(current_caller)]
AdminCaller = Annotated[Caller, require_scope(Scope.ADMIN)]
