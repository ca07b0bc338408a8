"""The registry's ASGI application, and ``serve`` to run it with uvicorn.

``serve`` runs one or several worker processes on one listening socket
(uvicorn's supervisor). The workers share nothing but the data folder: SQLite
in WAL mode serializes their writes, blob files are written to a temp name and
renamed, and what a worker keeps in memory is either immutable (encoded
manifests) or allowed to be briefly stale (``VisibleBlobs``). Each worker
builds its application from the settings the supervisor leaves in
``SETTINGS_ENV``, so nothing but a string crosses the process boundary.
"""

from __future__ import annotations

import errno
import http.client
import logging
import os
import re
import socket
import ssl
import sys
import threading
import time
from datetime import timedelta

import uvicorn
from fastapi import FastAPI

from artfs import __version__
from artfs.errors import Conflict
from artfs.server.auth import Authenticator, AuthMiddleware
from artfs.server.blob_reads import BlobReadMiddleware
from artfs.server.db.engine import create_registry_engine, migrate
from artfs.server.direct_reads import DirectReadsHeader
from artfs.server.errors import install_error_handlers
from artfs.server.lineage import Lineage
from artfs.server.openapi import install_document
from artfs.server.registry import Registry
from artfs.server.request_bounds import BodyBounds, BodyRule, RequestBoundsMiddleware
from artfs.server.routes import (
    admin,
    artifacts,
    blob_batches,
    blobs,
    collections,
    integrity,
    lineage,
    tokens,
    uploads,
)
from artfs.server.routes.deps import MAX_JSON_BODY
from artfs.server.settings import ServerSettings
from artfs.server.tokens import TokenStore
from artfs.server.upload_slots import UploadSlots
from artfs.store.local import LocalBlobStore
from artfs.store.open import open_blob_store

__all__ = [
    "SETTINGS_ENV",
    "body_bounds",
    "check_port_free",
    "create_app",
    "prepare",
    "serve",
    "worker_app",
]

#: The environment variable that hands a worker process its ``ServerSettings``.
SETTINGS_ENV = "ARTFS_SERVE_SETTINGS"
#: A digest to ask the store whether it presigns at all (it makes a URL without asking).
_PROBE_DIGEST = "0" * 64
#: How long ``serve`` waits for its workers to answer before it stops waiting to say so.
READY_WAIT = 120.0


def prepare(settings: ServerSettings) -> None:
    """Before any worker starts: the store reachable, the data folder, the newest schema,
    no half uploads."""
    store = open_blob_store(settings.store_url, settings.blob_dir)
    if not isinstance(store, LocalBlobStore):
        store.check()  # a bucket that is not there fails the start, saying so, first
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_registry_engine(settings.resolved_database_url)
    try:
        migrate(engine)
    finally:
        engine.dispose()
    if isinstance(store, LocalBlobStore):
        store.discard_interrupted_uploads()
    else:
        # Other replicas' uploads in flight are in the same listing: only those
        # older than any upload may take are a crash's leftovers.
        store.discard_interrupted_uploads(timedelta(seconds=settings.upload_timeout) * 2)


def create_app(settings: ServerSettings) -> FastAPI:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_registry_engine(settings.resolved_database_url)
    migrate(engine)  # a no-op after ``prepare``, and serialized between workers
    app = FastAPI(title="artfs registry", version=__version__)
    registry = Registry(engine, open_blob_store(settings.store_url, settings.blob_dir))
    app.state.registry = registry
    app.state.settings = settings
    app.state.lineage = Lineage(registry)
    install_error_handlers(app)
    app.state.upload_slots = UploadSlots(settings.uploads_per_token)
    install_document(app)
    app.add_middleware(BlobReadMiddleware, registry=registry)
    if settings.direct_reads and registry.store.presign_get(_PROBE_DIGEST, 1) is not None:
        app.add_middleware(DirectReadsHeader)
    app.add_middleware(RequestBoundsMiddleware, bounds=body_bounds(settings))
    # Added last, so outermost: every request meets the token check first.
    app.state.authenticator = Authenticator(TokenStore(engine))
    app.add_middleware(AuthMiddleware, authenticator=app.state.authenticator)
    for module in (
        admin,
        artifacts,
        collections,
        uploads,
        blobs,
        blob_batches,
        integrity,
        tokens,
        lineage,
    ):
        app.include_router(module.router)
    return app


def body_bounds(settings: ServerSettings) -> BodyBounds:
    """Each route class's body limit: a blob its own, a blob batch what it holds, JSON the rest."""
    project = r"/api/v1/projects/[^/]+"
    return BodyBounds(
        rules=(
            BodyRule("PUT", re.compile(project + r"/blobs/[^/]+"), settings.max_blob_bytes),
            BodyRule("PUT", re.compile(project + "/blob-batch"), blob_batches.MAX_UPLOAD_BYTES),
        ),
        default_max_bytes=MAX_JSON_BODY,
        idle_timeout=settings.upload_idle_timeout,
        total_timeout=settings.upload_timeout,
    )


def worker_app() -> FastAPI:
    """The application of one worker process: settings from ``SETTINGS_ENV``, logs set up."""
    settings = ServerSettings.from_json(os.environ[SETTINGS_ENV])
    if settings.access_log is not None:
        # After uvicorn's own logging set-up, which would drop this handler again.
        # Appends of one short line are atomic, so the workers share the file.
        handler = logging.FileHandler(settings.access_log)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        access = logging.getLogger("uvicorn.access")
        access.handlers = [handler]
        access.setLevel(logging.INFO)
        access.propagate = False
    return create_app(settings)


def check_port_free(host: str, port: int) -> None:
    """Raise ``Conflict`` if something listens on ``host:port`` already.

    uvicorn would log ``[Errno 98] error while attempting to bind …`` and exit;
    a user wants to hear which port, and the likely reason. The probe binds as
    uvicorn does (``SO_REUSEADDR``), so a port in TIME_WAIT counts as free.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise Conflict(
                f"port {port} on {host} is taken (is artfs serve already running?)"
            ) from exc


def _scheme(settings: ServerSettings) -> str:
    return "http" if settings.tls_cert is None else "https"


def _probe_connection(settings: ServerSettings) -> http.client.HTTPConnection:
    if settings.tls_cert is None:
        return http.client.HTTPConnection(settings.host, settings.port, timeout=1)
    # Our own socket, asked whether it answers yet: whom it claims to be is not the question.
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    return http.client.HTTPSConnection(settings.host, settings.port, timeout=1, context=unverified)


def _announce_when_ready(settings: ServerSettings) -> None:
    """Say once, on stderr, where the registry answers and what it serves, as soon as it does.

    Asking ``/healthz`` is the one test that holds for one worker or many: the
    line means a request gets an answer, not merely that a socket was bound.
    """
    deadline = time.monotonic() + READY_WAIT
    while time.monotonic() < deadline:
        connection = _probe_connection(settings)
        try:
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                break
        except OSError:
            pass
        finally:
            connection.close()
        time.sleep(0.05)
    else:
        return
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    print(
        f"artfs: registry at {_scheme(settings)}://{host}:{settings.port} "
        f"serving {settings.data_dir.absolute()}",
        file=sys.stderr,
        flush=True,
    )


def serve(settings: ServerSettings) -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    check_port_free(settings.host, settings.port)
    # Once, before any worker starts: a bad data folder is one error, not one per worker.
    prepare(settings)
    os.environ[SETTINGS_ENV] = settings.to_json()
    threading.Thread(
        target=_announce_when_ready, args=(settings,), name="announce", daemon=True
    ).start()
    uvicorn.run(
        f"{__name__}:{worker_app.__name__}",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level="warning",
        access_log=settings.access_log is not None,
        timeout_graceful_shutdown=5,
        ssl_certfile=settings.tls_cert,
        ssl_keyfile=settings.tls_key,
    )
