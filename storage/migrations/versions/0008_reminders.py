"""Add meeting reminders to the outbox and members' own reminder offsets

Revision ID: 0008_reminders
Revises: 0007_outbox
Create Date: 2026-11-30 06:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_reminders"
down_revision: str | None = "0007_outbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("members") as batch_op:
        batch_op.add_column(sa.Column("reminder_offsets", sa.String(length=64), nullable=True))
    with op.batch_alter_table("deliveries") as batch_op:
        batch_op.add_column(sa.Column("meeting_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("offset_minutes", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("planned_start", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_deliveries_meeting_id_meetings"),
            "meetings",
            ["meeting_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_deliveries_meeting_id"),
            ["meeting_id", "member_id", "offset_minutes", "planned_start"],
        )
        batch_op.create_index(batch_op.f("ix_deliveries_meeting_id"), ["meeting_id"])


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch_op:
        batch_op.drop_index(batch_op.f("ix_deliveries_meeting_id"))
        batch_op.drop_constraint(batch_op.f("uq_deliveries_meeting_id"), type_="unique")
        batch_op.drop_constraint(
            batch_op.f("fk_deliveries_meeting_id_meetings"), type_="foreignkey"
        )
        batch_op.drop_column("planned_start")
        batch_op.drop_column("offset_minutes")
        batch_op.drop_column("meeting_id")
    with op.batch_alter_table("members") as batch_op:
        batch_op.drop_column("reminder_offsets")
