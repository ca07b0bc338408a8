"""Artifact-level tags (Comet's ``artifact_tags``), and deleted artifacts kept as tombstones.

A deleted artifact keeps its row so that what refers to its versions (runs,
their uses) stays whole; it is renamed ``#ID`` to free its name, the old one
kept in ``deleted_name``.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    op.create_table(
        "artifact_tags",
        sa.Column("artifact_id", sa.Integer, sa.ForeignKey("artifacts.id"), primary_key=True),
        sa.Column("tag", sa.String(100), primary_key=True),
    )
    with op.batch_alter_table("artifacts") as batch:
        batch.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("deleted_name", sa.String(100), nullable=True))
