"""The registry's ASGI application, and ``serve`` to run it with uvicorn."""

from __future__ import annotations

import logging

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

__all__ = ["create_app", "serve"]


def create_app(settings: ServerSettings) -> FastAPI:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_registry_engine(settings.resolved_database_url)
    migrate(engine)
    app = FastAPI(title="artfs registry", version=__version__)
    registry = Registry(engine, LocalBlobStore(settings.blob_dir))
    app.state.registry = registry
    install_error_handlers(app)
    app.add_middleware(BlobReads, registry=registry)
    for module in (admin, artifacts, uploads, blobs, blob_batches):
        app.include_router(module.router)
    return app


def serve(settings: ServerSettings) -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=settings.access_log is not None,
        timeout_graceful_shutdown=5,
    )
    if settings.access_log is not None:
        # After uvicorn's own logging set-up, which would drop this handler again.
        handler = logging.FileHandler(settings.access_log)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        access = logging.getLogger("uvicorn.access")
        access.handlers = [handler]
        access.setLevel(logging.INFO)
        access.propagate = False
    uvicorn.Server(config).run()
