"""Collections: ``REGISTRY/COLLECTION`` holding links to versions, with their own aliases.

Three new tables and nothing changed in the old ones: a link names a version
by id and copies nothing (docs/design.md, "Collections").

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.create_table(
        "collections",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("registry", sa.String(100), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_number", sa.Integer, nullable=False),
        sa.UniqueConstraint(
            "project", "registry", "name", name="uq_collections_project_registry_name"
        ),
    )
    op.create_table(
        "collection_members",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("collection_id", sa.Integer, sa.ForeignKey("collections.id"), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("version_id", sa.Integer, sa.ForeignKey("versions.id"), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("collection_id", "number", name="uq_collection_members_number"),
        sa.UniqueConstraint("collection_id", "version_id", name="uq_collection_members_version"),
    )
    op.create_index("ix_collection_members_version_id", "collection_members", ["version_id"])
    op.create_table(
        "collection_aliases",
        sa.Column("collection_id", sa.Integer, sa.ForeignKey("collections.id"), primary_key=True),
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("member_id", sa.Integer, sa.ForeignKey("collection_members.id"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_collection_aliases_member_id", "collection_aliases", ["member_id"])


def downgrade() -> None:
    op.drop_index("ix_collection_aliases_member_id", "collection_aliases")
    op.drop_table("collection_aliases")
    op.drop_index("ix_collection_members_version_id", "collection_members")
    op.drop_table("collection_members")
    op.drop_table("collections")
