"""The registry's ASGI application, and ``serve`` to run it with uvicorn."""

from __future__ import annotations

import logging

import uvicorn
from fastapi import FastAPI

from artfs import __version__
from artfs.server.db.engine import create_registry_engine, migrate
from artfs.server.errors import install_error_handlers
from artfs.server.registry import Registry
from artfs.server.routes import admin, artifacts, blobs, uploads
from artfs.server.settings import ServerSettings
from artfs.store.local import LocalBlobStore

__all__ = ["create_app", "serve"]


def create_app(settings: ServerSettings) -> FastAPI:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_registry_engine(settings.resolved_database_url)
    migrate(engine)
    app = FastAPI(title="artfs registry", version=__version__)
    app.state.registry = Registry(engine, LocalBlobStore(settings.blob_dir))
    install_error_handlers(app)
    for module in (admin, artifacts, uploads, blobs):
        app.include_router(module.router)
    return app


def serve(settings: ServerSettings) -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )
