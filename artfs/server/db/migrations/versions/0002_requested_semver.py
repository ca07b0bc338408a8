"""A PENDING version asks for its semver label; it claims it only when committed.

Until now the label sat in ``versions.semver`` from the start, so the unique
(artifact, semver) constraint made a re-push of identical content under the
same label fail instead of being the no-op, and let abandoned uploads hold a
label. Pending rows now keep the wish in ``requested_semver``.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    with op.batch_alter_table("versions") as batch:
        batch.add_column(sa.Column("requested_semver", sa.String(100), nullable=True))
    op.execute(
        "UPDATE versions SET requested_semver = semver, semver = NULL WHERE state = 'PENDING'"
    )
