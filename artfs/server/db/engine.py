"""Engine creation and migration for the registry's metadata database.

On SQLite, writers are serialized with ``BEGIN IMMEDIATE`` so that two commits
to one artifact cannot both read the same next version number; on PostgreSQL
the same code takes a row lock with ``SELECT … FOR UPDATE`` instead (SQLite's
compiler drops that clause). Reads use plain deferred transactions and, with
WAL, never wait for a writer.

What has no row to lock — a blob digest that an upload is about to name, or that
gc or verify is about to forget — is locked by name (``lock_digests``,
``claim_digests``, ``await_claim``):
PostgreSQL's transaction-scoped advisory locks, which every server process on the
database sees; on SQLite the write transaction already excludes every other
writer, so they take nothing more. Several ``artfs serve`` processes on one
PostgreSQL agree through these and the row locks alone, never through memory or
files of one process.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, Insert, Table, bindparam, create_engine, event, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.types import BigInteger

from artfs.errors import InvalidInput

__all__ = [
    "WRITE",
    "await_claim",
    "claim_digests",
    "create_registry_engine",
    "database_url",
    "insert_unless_present",
    "lock_digests",
    "migrate",
]

#: Execution options for a write transaction: ``engine.connect().execution_options(**WRITE)``.
WRITE = {"artfs_write": True}

#: The advisory lock key that serializes migrations between server processes;
#: digests' keys (``_digest_key``) are 60-bit, so they never take this one.
MIGRATION_LOCK = -0x61727466_73000001

_LOCK_SHARED = text(
    "SELECT pg_advisory_xact_lock_shared(k) FROM unnest(:keys) AS k ORDER BY k"
).bindparams(bindparam("keys", type_=ARRAY(BigInteger)))
_LOCK = text("SELECT pg_advisory_xact_lock(:key)")
_SET_LOCK_TIMEOUT = text("SELECT set_config('lock_timeout', :value, true)")
#: PostgreSQL's ``lock_not_available``: a lock not granted within ``lock_timeout``.
_LOCK_NOT_AVAILABLE = "55P03"
_TRY_LOCK = text("SELECT k FROM unnest(:keys) AS k WHERE pg_try_advisory_xact_lock(k)").bindparams(
    bindparam("keys", type_=ARRAY(BigInteger))
)


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
        # No server-side prepared statements (psycopg prepares a query after 5 runs):
        # PostgreSQL's generic plan for them is made once, for the table as it was
        # then, so a path lookup planned on an empty upload went on scanning all its
        # rows as it grew (100,000 file rows took 37 s, 30 of them in PostgreSQL), and
        # PgBouncer's transaction pooling does not keep them between transactions.
        return create_engine(url, pool_pre_ping=True, connect_args={"prepare_threshold": None})
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


def insert_unless_present(dialect: str, table: Table, key: list[str]) -> Insert | None:
    """An ``INSERT`` into ``table`` that skips rows whose ``key`` is there already, where
    the database has one: what two server processes may both insert at once."""
    if dialect == "sqlite":
        return sqlite_insert(table).on_conflict_do_nothing(index_elements=key)
    if dialect == "postgresql":
        return postgresql_insert(table).on_conflict_do_nothing(index_elements=key)
    return None


def _digest_key(digest: str) -> int:
    # 60 bits of a SHA-256: a shared key between two digests only costs a wait.
    return int(digest[:15], 16)


def lock_digests(conn: Connection, digests: Iterable[str]) -> None:
    """Until ``conn``'s transaction ends, no gc may forget or delete these blobs.

    Shared locks, taken in key order: uploads naming the same blob never wait for
    each other, only for a gc that has claimed it (``claim_digests``).
    """
    keys = sorted({_digest_key(digest) for digest in digests})
    if keys and conn.dialect.name == "postgresql":
        conn.execute(_LOCK_SHARED, {"keys": keys})


def claim_digests(conn: Connection, digests: Iterable[str]) -> set[str]:
    """Which of ``digests`` this transaction may now forget or delete: those no
    transaction holds ``lock_digests`` on, locked against them until it ends.

    Never waits, so gc cannot deadlock with an upload: a blob being named right
    now is simply left for the next gc.
    """
    wanted = set(digests)
    if conn.dialect.name != "postgresql" or not wanted:
        return wanted
    by_key: dict[int, list[str]] = {}
    for digest in wanted:
        by_key.setdefault(_digest_key(digest), []).append(digest)
    claimed = conn.execute(_TRY_LOCK, {"keys": sorted(by_key)}).scalars()
    return {digest for key in claimed for digest in by_key[key]}


def await_claim(conn: Connection, digest: str, timeout: float) -> bool:
    """``claim_digests`` for one digest, waiting up to ``timeout`` seconds for the
    transactions that hold ``lock_digests`` on it (or a gc's claim) to end; ``False``
    if they have not by then, and the claim is not taken.

    For ``artfs verify``, which must not skip a bad blob only because an upload names
    it right now. It waits in PostgreSQL's queue, so the uploads that come after it
    wait for it in turn instead of starving it; it holds no other digest's lock, so
    it cannot deadlock with them.
    """
    if conn.dialect.name != "postgresql":
        return True
    before = conn.execute(text("SELECT current_setting('lock_timeout')")).scalar_one()
    try:
        with conn.begin_nested():
            conn.execute(_SET_LOCK_TIMEOUT, {"value": f"{max(1, round(timeout * 1000))}ms"})
            conn.execute(_LOCK, {"key": _digest_key(digest)})
            conn.execute(_SET_LOCK_TIMEOUT, {"value": before})
    except OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) == _LOCK_NOT_AVAILABLE:
            return False  # the savepoint's rollback put the timeout back
        raise
    return True


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration; safe to run at every start, from
    several server processes at once (on PostgreSQL they take turns, by a lock)."""
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
    with engine.connect().execution_options(**WRITE) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
        conn.commit()
