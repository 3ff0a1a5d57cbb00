"""Lobby and revocation: which roles a hearing admits without the lobby; revoked invitations.

``hearings.auto_admit``: comma-separated roles let in at once (judge and clerk always are).
``invites.revoked_at``: set when the judge ejects the invitation's holder; its token and join code
stop working at once, across restarts.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("hearings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("auto_admit", sa.String(length=256), server_default="", nullable=False)
        )
    with op.batch_alter_table("invites", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("invites", schema=None) as batch_op:
        batch_op.drop_column("revoked_at")
    with op.batch_alter_table("hearings", schema=None) as batch_op:
        batch_op.drop_column("auto_admit")
