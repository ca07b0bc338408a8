"""Which projects hold which blobs, so that dedup never crosses a project.

Until now a blob stored for one project counted as present for all: naming
its digest in another project's upload answered "not missing", and then that
project could read it. A project now holds a blob only once it uploaded the
bytes. The blobs that committed (or deleted) versions of a project name are
held by it already; a PENDING upload's blobs are not carried over, so an
upload in progress across this migration sends them again at commit.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.create_table(
        "held_blobs",
        sa.Column("project", sa.String(100), primary_key=True),
        sa.Column("digest", sa.String(64), primary_key=True),
    )
    op.create_index("ix_held_blobs_digest", "held_blobs", ["digest"])
    op.execute(
        "INSERT INTO held_blobs (project, digest)"
        " SELECT DISTINCT artifacts.project, files.digest FROM files"
        " JOIN versions ON versions.id = files.version_id"
        " JOIN artifacts ON artifacts.id = versions.artifact_id"
        " JOIN blobs ON blobs.digest = files.digest"
        " WHERE versions.state IN ('COMMITTED', 'DELETED')"
    )
