"""Add the secret of each member's private calendar feed

Revision ID: 0011_calendar_feed
Revises: 0010_attendance
Create Date: 2026-11-30 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_calendar_feed"
down_revision: str | None = "0010_attendance"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("members") as batch_op:
        batch_op.add_column(sa.Column("calendar_token", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_members_calendar_token"), ["calendar_token"]
        )


def downgrade() -> None:
    with op.batch_alter_table("members") as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_members_calendar_token"), type_="unique")
        batch_op.drop_column("calendar_token")
