"""Which engines the registries of a test run use: ``ARTFS_TEST_BACKEND``.

``embedded`` (the default) is SQLite and a blob folder in the data folder;
``postgres-s3`` is a real PostgreSQL (a database of its own per registry) and
a real S3-compatible server (SeaweedFS, a key prefix of its own per
registry). scripts/test runs the suites that matter a second time on
``postgres-s3``; the ``registry`` and ``shared_registry`` fixtures start every
server through ``Backend.registry``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.support.postgres import PostgresServer
from tests.support.registry import RegistryProcess
from tests.support.s3_source import S3Source

__all__ = ["BACKENDS", "BACKEND_ENV", "Backend", "chosen_backend"]

BACKEND_ENV = "ARTFS_TEST_BACKEND"
BACKENDS = ("embedded", "postgres-s3")


def chosen_backend() -> str:
    name = os.environ.get(BACKEND_ENV, "embedded")
    if name not in BACKENDS:
        raise ValueError(f"{BACKEND_ENV} is one of {', '.join(BACKENDS)}, not {name!r}")
    return name


@dataclass(frozen=True)
class Backend:
    name: str
    postgres: PostgresServer | None = None
    s3: S3Source | None = None

    def registry(
        self, data_dir: Path, serve_args: Sequence[str] = (), workers: str = "1"
    ) -> RegistryProcess:
        """A registry (not started) on this backend."""
        if self.postgres is None or self.s3 is None:
            return RegistryProcess(data_dir, serve_args=serve_args, workers=workers)
        store = f"s3://{self.s3.bucket}/registry-{uuid.uuid4().hex[:12]}"
        return RegistryProcess(
            data_dir,
            serve_args=[*serve_args, "--store", store],
            workers=workers,
            database_url=self.postgres.new_database(),
            env=self.s3.env,
        )
