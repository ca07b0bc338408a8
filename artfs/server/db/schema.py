"""The metadata schema, as SQLAlchemy Core tables.

Queries are written against these objects only, so the same code runs on
SQLite (the embedded default) and PostgreSQL. The schema itself is created and
evolved by the Alembic migrations beside this module; this file must describe
the result of the newest migration.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from artfs.digests import BLOB_HASH

metadata = MetaData()

artifacts = Table(
    "artifacts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project", String(100), nullable=False),
    Column("name", String(100), nullable=False),
    Column("type", String(100), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("metadata", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Version numbers are never reused, even after deletion: this is the next one.
    Column("next_number", Integer, nullable=False, default=1),
    # A deleted artifact keeps its row, renamed ``#ID``; its name was this.
    Column("deleted_at", DateTime(timezone=True), nullable=True),
    Column("deleted_name", String(100), nullable=True),
    UniqueConstraint("project", "name", name="uq_artifacts_project_name"),
)

versions = Table(
    "versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("artifact_id", Integer, ForeignKey("artifacts.id"), nullable=False),
    # Opaque id a client uses while the version is PENDING and has no number yet.
    Column("upload_id", String(32), nullable=False, unique=True),
    Column("number", Integer, nullable=True),
    Column("semver", String(100), nullable=True),
    # The label a PENDING version asks for; ``semver`` is set only at commit.
    Column("requested_semver", String(100), nullable=True),
    Column("state", String(16), nullable=False),
    Column("digest", String(64), nullable=True),
    Column("size", BigInteger, nullable=False, default=0),
    Column("file_count", Integer, nullable=False, default=0),
    Column("metadata", JSON, nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("source", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("committed_at", DateTime(timezone=True), nullable=True),
    Column("deleted_at", DateTime(timezone=True), nullable=True),
    Column("ttl_seconds", Integer, nullable=True),
    # committed_at + ttl_seconds, kept so every read can hide an expired version in SQL.
    Column("expires_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("artifact_id", "number", name="uq_versions_artifact_number"),
    UniqueConstraint("artifact_id", "semver", name="uq_versions_artifact_semver"),
)

files = Table(
    "files",
    metadata,
    Column("version_id", Integer, ForeignKey("versions.id"), primary_key=True),
    Column("path", String(4096), primary_key=True),
    Column("size", BigInteger, nullable=False),
    # sha256 of the bytes; NULL only for a remote asset whose checksum is unknown.
    Column("digest", String(64), nullable=True),
    Column("uri", Text, nullable=True),
    Column("metadata", JSON, nullable=True),
    Index("ix_files_digest", "digest"),
)

aliases = Table(
    "aliases",
    metadata,
    Column("artifact_id", Integer, ForeignKey("artifacts.id"), primary_key=True),
    Column("name", String(100), primary_key=True),
    Column("version_id", Integer, ForeignKey("versions.id"), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_aliases_version_id", "version_id"),
)

# Comet's artifact_tags: tags of an artifact as a whole, not of one version.
artifact_tags = Table(
    "artifact_tags",
    metadata,
    Column("artifact_id", Integer, ForeignKey("artifacts.id"), primary_key=True),
    Column("tag", String(100), primary_key=True),
)

version_tags = Table(
    "version_tags",
    metadata,
    Column("version_id", Integer, ForeignKey("versions.id"), primary_key=True),
    Column("tag", String(100), primary_key=True),
)

blobs = Table(
    "blobs",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("chunk_size", Integer, nullable=False),
    # Concatenated 32-byte digests of each chunk, in order, made by ``chunk_hash``.
    Column("chunk_digests", LargeBinary, nullable=False),
    Column("chunk_hash", String(16), nullable=False, server_default=BLOB_HASH),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Which projects hold which blobs: a project uploaded the bytes (or had them
# before projects were isolated, migration 0006). Only these may it read, and
# only these is it told the registry has.
held_blobs = Table(
    "held_blobs",
    metadata,
    Column("project", String(100), primary_key=True),
    Column("digest", String(64), primary_key=True),
    Index("ix_held_blobs_digest", "digest"),
)

tokens = Table(
    "tokens",
    metadata,
    # Public: shown by ``artfs token ls`` and named by ``revoke``.
    Column("id", String(32), primary_key=True),
    # sha256 of the secret; the secret itself is shown once and never stored.
    Column("secret_sha256", String(64), nullable=False, unique=True),
    Column("scope", String(16), nullable=False),
    # NULL: every project.
    Column("project", String(100), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

# Collections (registry links, docs/design.md "Collections"): ``REGISTRY/COLLECTION``
# of a project, whose members are links to versions of the project's artifacts.
# Linking copies no blob and no file row: a member names its version.
collections = Table(
    "collections",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project", String(100), nullable=False),
    Column("registry", String(100), nullable=False),
    Column("name", String(100), nullable=False),
    # The type of the first version linked; every later one must have it too.
    Column("type", String(100), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Member numbers are never reused, even after an unlink: this is the next one.
    Column("next_number", Integer, nullable=False, default=1),
    UniqueConstraint("project", "registry", "name", name="uq_collections_project_registry_name"),
)

collection_members = Table(
    "collection_members",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("collection_id", Integer, ForeignKey("collections.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("version_id", Integer, ForeignKey("versions.id"), nullable=False),
    Column("linked_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("collection_id", "number", name="uq_collection_members_number"),
    # A version is linked into a collection at most once; linking it again adds aliases.
    UniqueConstraint("collection_id", "version_id", name="uq_collection_members_version"),
    Index("ix_collection_members_version_id", "version_id"),
)

collection_aliases = Table(
    "collection_aliases",
    metadata,
    Column("collection_id", Integer, ForeignKey("collections.id"), primary_key=True),
    Column("name", String(100), primary_key=True),
    Column("member_id", Integer, ForeignKey("collection_members.id"), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_collection_aliases_member_id", "member_id"),
)

# Runs and lineage (docs/design.md, "Runs and lineage"). A run is whatever read
# or produced versions: an SDK run, a mount, a command. Each edge table is
# indexed both ways, so the graph is walked by index lookups in either direction.
runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project", String(100), nullable=False),
    # The run's own name (``train-42``, ``$ARTFS_RUN``, a mount's generated one).
    Column("run_id", String(100), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("user", String(255), nullable=False),
    Column("host", String(255), nullable=False),
    Column("mount", Text, nullable=True),
    Column("config", JSON, nullable=False),
    Column("message", Text, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("project", "run_id", name="uq_runs_project_run_id"),
)

# A run read a version (first time: ``first_at``); one row per pair, however often.
run_inputs = Table(
    "run_inputs",
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id"), primary_key=True),
    Column("version_id", Integer, ForeignKey("versions.id"), primary_key=True),
    Column("first_at", DateTime(timezone=True), nullable=False),
    Index("ix_run_inputs_version_id", "version_id"),
)

# A run produced a version; a version has at most one producer.
run_outputs = Table(
    "run_outputs",
    metadata,
    Column("version_id", Integer, ForeignKey("versions.id"), primary_key=True),
    Column("run_id", Integer, ForeignKey("runs.id"), nullable=False),
    Index("ix_run_outputs_run_id", "run_id"),
)
