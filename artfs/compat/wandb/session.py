"""The clients and the run W&B code reaches without naming one.

W&B keeps a global API (``wandb.Api()``, ``artifact.save()``); here that is
an ``artfs.Client`` configured from the environment (``ARTFS_URL``,
``ARTFS_TOKEN``, ``ARTFS_PROJECT``), made on first use and closed at exit, and
the run ``wandb.init`` started (``wandb.run``), which ``save()`` logs through.
"""

from __future__ import annotations

import atexit

from artfs.cache.ondisk import default_cache_dir
from artfs.config import ClientConfig, resolve_config
from artfs.sdk.client import Client
from artfs.sdk.run import Run

__all__ = ["active_run", "client_for", "set_active_run"]

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


#: The run ``wandb.init`` started and ``finish`` ends: W&B's ``wandb.run``.
_active: list[Run] = []


def active_run() -> Run | None:
    return _active[-1] if _active else None


def set_active_run(run: Run | None) -> None:
    _active[:] = [] if run is None else [run]
