"""Migrations on a real SQLite file: from nothing, and from 0001 with a pending label."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from artfs.server.db.engine import WRITE, create_registry_engine, migrate
from artfs.server.db.schema import metadata
from artfs.server.registry import Registry
from artfs.store.local import LocalBlobStore


def _config(conn: object) -> Config:
    config = Config()
    config.set_main_option(
        "script_location",
        str(Path(__file__).parents[2] / "artfs" / "server" / "db" / "migrations"),
    )
    config.attributes["connection"] = conn
    return config


def test_fresh_database_reaches_head_and_is_idempotent(tmp_path: Path) -> None:
    engine = create_registry_engine(f"sqlite:///{tmp_path / 'r.db'}")
    migrate(engine)
    migrate(engine)
    columns = {c["name"] for c in inspect(engine).get_columns("versions")}
    assert "requested_semver" in columns
    with engine.connect() as conn:
        head = ScriptDirectory.from_config(_config(conn)).get_current_head()
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head
        # schema.py describes what the migrations make: the queries and the tables agree.
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    # Every table of the schema module is made by the migrations, and one head leads there.
    assert set(metadata.tables) <= set(inspect(engine).get_table_names())


def test_0002_moves_a_pending_label_to_requested(tmp_path: Path) -> None:
    engine = create_registry_engine(f"sqlite:///{tmp_path / 'r.db'}")
    with engine.connect().execution_options(**WRITE) as conn:
        command.upgrade(_config(conn), "0001")
        conn.commit()
    now = datetime.now(UTC)
    with engine.connect().execution_options(**WRITE) as conn, conn.begin():
        conn.execute(
            text(
                "INSERT INTO artifacts (id, project, name, type, description, metadata,"
                " created_at, next_number) VALUES (1, 'p', 'a', 'dataset', '', '{}', :t, 2)"
            ),
            {"t": now},
        )
        for vid, state, label, number in [
            (1, "COMMITTED", "1.0.0", 1),
            (2, "PENDING", "2.0.0", None),
        ]:
            conn.execute(
                text(
                    "INSERT INTO versions (id, artifact_id, upload_id, number, semver, state,"
                    " size, file_count, metadata, description, source, created_at)"
                    " VALUES (:id, 1, :u, :n, :s, :state, 0, 0, '{}', '', '{}', :t)"
                ),
                {"id": vid, "u": f"u{vid}", "n": number, "s": label, "state": state, "t": now},
            )
    migrate(engine)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id, semver, requested_semver FROM versions ORDER BY id")
        ).all()
    assert [tuple(r) for r in rows] == [(1, "1.0.0", None), (2, None, "2.0.0")]


def test_0004_blobs_stored_before_keep_sha256_chunk_digests(tmp_path: Path) -> None:
    engine = create_registry_engine(f"sqlite:///{tmp_path / 'r.db'}")
    with engine.connect().execution_options(**WRITE) as conn:
        command.upgrade(_config(conn), "0003")
        conn.commit()
    digest = "ab" * 32
    with engine.connect().execution_options(**WRITE) as conn, conn.begin():
        conn.execute(
            text(
                "INSERT INTO blobs (digest, size, chunk_size, chunk_digests, created_at)"
                " VALUES (:d, 5, 1048576, :c, :t)"
            ),
            {"d": digest, "c": bytes(32), "t": datetime.now(UTC)},
        )
    migrate(engine)
    registry = Registry(engine, LocalBlobStore(tmp_path / "blobs"))
    assert registry.blob_info(digest).chunk_hash == "sha256"


def test_0006_projects_hold_what_their_committed_versions_name(tmp_path: Path) -> None:
    engine = create_registry_engine(f"sqlite:///{tmp_path / 'r.db'}")
    with engine.connect().execution_options(**WRITE) as conn:
        command.upgrade(_config(conn), "0005")
        conn.commit()
    now = datetime.now(UTC)
    committed, pending, absent = "aa" * 32, "bb" * 32, "cc" * 32
    with engine.connect().execution_options(**WRITE) as conn, conn.begin():
        for digest in (committed, pending):
            conn.execute(
                text(
                    "INSERT INTO blobs (digest, size, chunk_size, chunk_digests, created_at)"
                    " VALUES (:d, 1, 1048576, :c, :t)"
                ),
                {"d": digest, "c": bytes(32), "t": now},
            )
        conn.execute(
            text(
                "INSERT INTO artifacts (id, project, name, type, description, metadata,"
                " created_at, next_number) VALUES (1, 'p', 'a', 'dataset', '', '{}', :t, 2)"
            ),
            {"t": now},
        )
        for vid, state, number, files in [
            (1, "COMMITTED", 1, [committed, absent]),
            (2, "PENDING", None, [pending]),
        ]:
            conn.execute(
                text(
                    "INSERT INTO versions (id, artifact_id, upload_id, number, state,"
                    " size, file_count, metadata, description, source, created_at)"
                    " VALUES (:id, 1, :u, :n, :state, 0, 0, '{}', '', '{}', :t)"
                ),
                {"id": vid, "u": f"u{vid}", "n": number, "state": state, "t": now},
            )
            for index, digest in enumerate(files):
                conn.execute(
                    text(
                        "INSERT INTO files (version_id, path, size, digest) VALUES (:v, :p, 1, :d)"
                    ),
                    {"v": vid, "p": f"f{index}", "d": digest},
                )
    migrate(engine)
    registry = Registry(engine, LocalBlobStore(tmp_path / "blobs"))
    # Committed and stored: held. Stored but only a pending upload's: sent again.
    # Never stored: missing, as before.
    assert registry.missing_blobs("p", [committed, pending, absent]) == [pending, absent]
    assert registry.missing_blobs("q", [committed]) == [committed]
