"""Runs and lineage: which run produced a version, and which runs read it.

Existing versions keep their ``source`` and get no producer row: a ``run`` named
in an old source was never checked as a run id, and lineage starts from here.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("run_id", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("user", sa.String(255), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("mount", sa.Text, nullable=True),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("project", "run_id", name="uq_runs_project_run_id"),
    )
    op.create_table(
        "run_inputs",
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("version_id", sa.Integer, sa.ForeignKey("versions.id"), primary_key=True),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_run_inputs_version_id", "run_inputs", ["version_id"])
    op.create_table(
        "run_outputs",
        sa.Column("version_id", sa.Integer, sa.ForeignKey("versions.id"), primary_key=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
    )
    op.create_index("ix_run_outputs_run_id", "run_outputs", ["run_id"])
