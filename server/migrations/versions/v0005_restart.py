"""What a restart must not lose: admissions and the pause in force.

``admissions``: one row per invitation that holds a place in a running hearing (admitted by the
judge or at once, not since gone), with the judge's mute; after a restart it goes straight back in.
``hearings.pause_reason``, ``paused_by``, ``paused_by_name``: while ``state`` is ``paused``, why
and by whom, so that a restart keeps the hearing paused and the recording stopped.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "admissions",
        sa.Column("hearing_id", sa.String(length=32), nullable=False),
        sa.Column("participant_key", sa.String(length=128), nullable=False),
        sa.Column("admitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("silenced", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(
            ["hearing_id"], ["hearings.id"], name=op.f("fk_admissions_hearing_id_hearings")
        ),
        sa.PrimaryKeyConstraint("hearing_id", "participant_key", name=op.f("pk_admissions")),
    )
    with op.batch_alter_table("hearings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pause_reason", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("paused_by", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("paused_by_name", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("hearings", schema=None) as batch_op:
        batch_op.drop_column("paused_by_name")
        batch_op.drop_column("paused_by")
        batch_op.drop_column("pause_reason")
    op.drop_table("admissions")
