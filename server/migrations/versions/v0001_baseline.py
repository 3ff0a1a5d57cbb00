"""Baseline: hearings and invites, the schema `create_all` made before migrations.

A database that already has these two tables and no ``alembic_version`` is stamped at this
revision by ``Database.migrate()`` instead of running it. Constraint names follow the naming
convention of ``server.db.Base``; such a stamped database keeps the names its engine gave them
(unnamed on SQLite, ``invites_code_key`` style on PostgreSQL): a later revision that drops one of
these constraints by name must allow for both.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "hearings",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("court", sa.String(length=32), nullable=False),
        sa.Column("case_number", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hearings")),
    )
    op.create_index(op.f("ix_hearings_case_number"), "hearings", ["case_number"])
    op.create_index(op.f("ix_hearings_court"), "hearings", ["court"])
    op.create_table(
        "invites",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("hearing_id", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("code_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["hearing_id"], ["hearings.id"], name=op.f("fk_invites_hearing_id_hearings")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invites")),
        sa.UniqueConstraint("code", name=op.f("uq_invites_code")),
    )
    op.create_index(op.f("ix_invites_hearing_id"), "invites", ["hearing_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_invites_hearing_id"), table_name="invites")
    op.drop_table("invites")
    op.drop_index(op.f("ix_hearings_court"), table_name="hearings")
    op.drop_index(op.f("ix_hearings_case_number"), table_name="hearings")
    op.drop_table("hearings")
