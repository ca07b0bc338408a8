"""A real PostgreSQL for the tests that run the registry's queries on it, and a way to
commit a version there without blobs.

The server runs in a temporary folder, on a Unix socket only, started and stopped by
the ``engine`` fixture of each module that uses it (scripts/setup installs PostgreSQL);
one whose test process was killed is stopped by the next (tests/support/orphans.py).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine

from artfs.server.db.engine import create_registry_engine, migrate
from artfs.server.registry import FileEntry, Registry
from tests.support.orphans import owned, sweep
from tests.support.registry import free_port

__all__ = ["PostgresServer", "commit_reference_version", "engine", "postgres_server"]


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    assert found, "PostgreSQL is not installed (scripts/setup installs it)"
    return Path(found[-1]).parent


@dataclass(frozen=True)
class PostgresServer:
    """A running PostgreSQL of the tests', on a Unix socket in ``root``."""

    root: Path
    port: int

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@/{database}?host={self.root}&port={self.port}"

    def new_database(self) -> str:
        """The URL of a database made empty for one registry: servers share the server."""
        name = f"r{uuid.uuid4().hex[:16]}"
        admin = create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f"CREATE DATABASE {name}")
        finally:
            admin.dispose()
        return self.url(name)


def _as_owner() -> list[str | Path]:
    # PostgreSQL refuses to run as root: its own system user runs it.
    return ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []


def _pg_ctl(root: Path) -> list[str | Path]:
    return [*_as_owner(), _bindir() / "pg_ctl", "-D", root / "data"]


def _stop(root: Path) -> None:
    """Stop the server of ``root`` at once, if one runs there (its files go next)."""
    subprocess.run([*_pg_ctl(root), "-m", "immediate", "stop"], check=False, capture_output=True)


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A fresh PostgreSQL server, stopped (and its files removed) when the block ends.

    Its folder is under tests/support/orphans.py's root, owned by this process: a test
    process killed before it stopped the server leaves it to the next one to stop.
    """
    sweep("pg", _stop)
    # Not under pytest's tmp_path: its parents are closed to the postgres user.
    with owned("pg") as root:
        bindir, port = _bindir(), free_port()
        if _as_owner():
            shutil.chown(root, "postgres")
        subprocess.run(
            [*_as_owner(), bindir / "initdb", "-D", root / "data", "-A", "trust", "-U", "postgres"],
            check=True,
            capture_output=True,
        )
        options = f"-k {root} -p {port} -c listen_addresses='' -c max_connections=300"
        try:
            subprocess.run(
                [*_pg_ctl(root), "-l", root / "log", "-o", options, "-w", "start"],
                check=True,
                capture_output=True,
            )
            yield PostgresServer(root, port)
        finally:
            _stop(root)


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    """A fresh PostgreSQL server of the module's own, migrated to the newest schema."""
    with postgres_server() as server:
        engine = create_registry_engine(server.url())
        try:
            migrate(engine)
            yield engine
        finally:
            engine.dispose()


def commit_reference_version(
    registry: Registry,
    name: str,
    uri: str,
    *,
    semver: str | None = None,
    source: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Commit a version of ``name`` in project ``p`` holding one reference (no blob to send);
    the registry's answer (``version``, ``semver`` …)."""
    started = registry.start_upload(
        "p",
        name,
        type_="model",
        description="",
        metadata={},
        semver=semver,
        source=source or {},
        ttl_seconds=None,
        entries=[FileEntry("w.bin", 3, None, uri=uri)],
    )
    committed: dict[str, Any] = registry.commit_upload(
        "p", started["upload_id"], aliases_=[], tags=[], alias_expect={}, force=False
    )
    return committed
