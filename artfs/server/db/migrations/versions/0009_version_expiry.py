"""``versions.expires_at``: when a version's ttl runs out, for every read to filter on.

Expired versions were served until ``gc`` marked them DELETED; each read now
hides them at once, which needs the moment as a column (date arithmetic is
not portable between SQLite and PostgreSQL). Filled for versions that have a
ttl already.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from datetime import UTC, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    with op.batch_alter_table("versions") as batch:
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    versions = sa.table(
        "versions",
        sa.column("id", sa.Integer),
        sa.column("committed_at", sa.DateTime(timezone=True)),
        sa.column("ttl_seconds", sa.Integer),
        sa.column("expires_at", sa.DateTime(timezone=True)),
    )
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(versions.c.id, versions.c.committed_at, versions.c.ttl_seconds).where(
            versions.c.ttl_seconds.is_not(None), versions.c.committed_at.is_not(None)
        )
    ).all()
    for version_id, committed_at, ttl_seconds in rows:
        # SQLite hands back naive datetimes, always UTC.
        start = committed_at if committed_at.tzinfo else committed_at.replace(tzinfo=UTC)
        conn.execute(
            sa.update(versions)
            .where(versions.c.id == version_id)
            .values(expires_at=start + timedelta(seconds=ttl_seconds))
        )
