"""The clients W&B code reaches without naming one: one per project, for the process.

W&B keeps a global API (``wandb.Api()``, ``artifact.save()``); here that is
an ``artfs.Client`` configured from the environment (``ARTFS_URL``,
``ARTFS_TOKEN``, ``ARTFS_PROJECT``), made on first use and closed at exit.
"""

from __future__ import annotations

import atexit

from artfs.cache.ondisk import default_cache_dir
from artfs.config import ClientConfig, resolve_config
from artfs.sdk.client import Client

__all__ = ["client_for"]

#: By everything a client is made of, so that a changed environment gets a new one.
_clients: dict[tuple[ClientConfig, str], Client] = {}


def client_for(project: str | None = None) -> Client:
    """The process's client for ``project`` (None: the configured one)."""
    key = (resolve_config(None, project, None), str(default_cache_dir()))
    client = _clients.get(key)
    if client is None:
        client = _clients[key] = Client(project=project)
    return client


@atexit.register
def _close_all() -> None:
    while _clients:
        _clients.popitem()[1].close()
