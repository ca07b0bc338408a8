"""Engine creation and migration for the registry's metadata database.

On SQLite, writers are serialized with ``BEGIN IMMEDIATE`` so that two commits
to one artifact cannot both read the same next version number; on PostgreSQL
the same code takes a row lock with ``SELECT … FOR UPDATE`` instead (SQLite's
compiler drops that clause). Reads use plain deferred transactions and, with
WAL, never wait for a writer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError

from artfs.errors import InvalidInput

__all__ = ["WRITE", "create_registry_engine", "database_url", "migrate"]

#: Execution options for a write transaction: ``engine.connect().execution_options(**WRITE)``.
WRITE = {"artfs_write": True}


def database_url(text: str) -> str:
    """``--db``: a PostgreSQL or SQLite URL, as SQLAlchemy takes it, with our driver.

    ``postgresql://`` (and ``postgres://``, as many hosting services write it) goes
    through psycopg 3, the driver we install; anything else is refused here, with
    the forms we take, rather than at the first query.
    """
    try:
        url = make_url(text.strip())
    except ArgumentError:
        url = None
    backend, _, driver = ("" if url is None else url.drivername).partition("+")
    if url is None or backend not in {"postgresql", "postgres", "sqlite"}:
        raise InvalidInput(
            f"--db takes postgresql://USER:PASSWORD@HOST:PORT/DATABASE or "
            f"sqlite:////path/to/registry.db, not {text!r}"
        )
    if backend == "sqlite":
        return url.render_as_string(hide_password=False)
    if driver not in {"", "psycopg"}:
        raise InvalidInput(f"--db: PostgreSQL is reached through psycopg, not {driver}")
    return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def create_registry_engine(url: str) -> Engine:
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 60},
        pool_size=8,
        max_overflow=16,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite so BEGIN is ours to emit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("artfs_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration; safe to run at every start."""
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
    with engine.connect().execution_options(**WRITE) as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
        conn.commit()
