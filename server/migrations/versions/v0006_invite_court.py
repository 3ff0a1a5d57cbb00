"""The court each invitation is at.

``invites.court``: the code of the court the invitee joins from (a courtroom endpoint in a
cross-court hearing, a county court in a prefecture meeting). NULL, as in every invitation made
before this revision, means the hearing's own court, and follows it if that court changes.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("invites", schema=None) as batch_op:
        batch_op.add_column(sa.Column("court", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("invites", schema=None) as batch_op:
        batch_op.drop_column("court")
