"""Blobs name the hash of their per-chunk digests.

New blobs record BLAKE3 chunk digests (``artfs.digests``); the blobs already
stored keep their sha256 ones, which is what the default says.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    with op.batch_alter_table("blobs") as batch:
        batch.add_column(
            sa.Column("chunk_hash", sa.String(16), nullable=False, server_default="sha256")
        )
