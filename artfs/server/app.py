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

import logging
import os

import uvicorn
from fastapi import FastAPI

from artfs import __version__
from artfs.server.blob_reads import BlobReads
from artfs.server.db.engine import create_registry_engine, migrate
from artfs.server.errors import install_error_handlers
from artfs.server.registry import Registry
from artfs.server.routes import admin, artifacts, blob_batches, blobs, uploads
from artfs.server.settings import ServerSettings
from artfs.store.local import LocalBlobStore

__all__ = ["SETTINGS_ENV", "create_app", "prepare", "serve", "worker_app"]

#: The environment variable that hands a worker process its ``ServerSettings``.
SETTINGS_ENV = "ARTFS_SERVE_SETTINGS"


def prepare(settings: ServerSettings) -> None:
    """Before any worker starts: the data folder, the newest schema, no half uploads."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_registry_engine(settings.resolved_database_url)
    try:
        migrate(engine)
    finally:
        engine.dispose()
    LocalBlobStore(settings.blob_dir).discard_interrupted_uploads()


def create_app(settings: ServerSettings) -> FastAPI:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_registry_engine(settings.resolved_database_url)
    migrate(engine)  # a no-op after ``prepare``, and serialized between workers
    app = FastAPI(title="artfs registry", version=__version__)
    registry = Registry(engine, LocalBlobStore(settings.blob_dir))
    app.state.registry = registry
    install_error_handlers(app)
    app.add_middleware(BlobReads, registry=registry)
    for module in (admin, artifacts, uploads, blobs, blob_batches):
        app.include_router(module.router)
    return app


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


def serve(settings: ServerSettings) -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Once, before any worker starts: a bad data folder is one error, not one per worker.
    prepare(settings)
    os.environ[SETTINGS_ENV] = settings.to_json()
    uvicorn.run(
        f"{__name__}:{worker_app.__name__}",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level="warning",
        access_log=settings.access_log is not None,
        timeout_graceful_shutdown=5,
    )
