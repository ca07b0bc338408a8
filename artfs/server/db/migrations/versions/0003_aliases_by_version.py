"""An index on ``aliases.version_id``.

Every version described by the API lists the aliases pointing at it, and
deleting a version finds them the same way; without the index SQLite scanned
the whole ``aliases`` table (every alias of every project) each time.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_index("ix_aliases_version_id", "aliases", ["version_id"])
