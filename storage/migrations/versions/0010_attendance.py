"""Add meeting capacity, waiting lists on answers, and meeting series with their occurrences

Revision ID: 0010_attendance
Revises: 0009_meeting_lifecycle
Create Date: 2026-11-30 08:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_attendance"
down_revision: str | None = "0009_meeting_lifecycle"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "meeting_series",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rule", sa.String(length=500), nullable=False),
        sa.Column("location", sa.String(length=300), nullable=True),
        sa.Column("online_url", sa.String(length=500), nullable=True),
        sa.Column("agenda", sa.Text(), nullable=True),
        sa.Column("capacity", sa.Integer(), nullable=True),
        sa.Column("import_key", sa.String(length=100), nullable=True),
        sa.Column("materialised_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "capacity IS NULL OR capacity >= 0",
            name=op.f("ck_meeting_series_capacity_positive"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_series")),
        sa.UniqueConstraint("title", "starts_at", name=op.f("uq_meeting_series_title")),
    )
    op.create_index(
        op.f("ix_meeting_series_import_key"), "meeting_series", ["import_key"], unique=True
    )
    with op.batch_alter_table("meetings") as batch_op:
        batch_op.add_column(sa.Column("capacity", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("series_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("recurrence_id", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_check_constraint(
            batch_op.f("ck_meetings_capacity_positive"), "capacity IS NULL OR capacity >= 0"
        )
        batch_op.create_index(batch_op.f("ix_meetings_series_id"), ["series_id"], unique=False)
        batch_op.create_unique_constraint(
            batch_op.f("uq_meetings_series_id"), ["series_id", "recurrence_id"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_meetings_series_id_meeting_series"),
            "meeting_series",
            ["series_id"],
            ["id"],
            ondelete="SET NULL",
        )
    with op.batch_alter_table("rsvps") as batch_op:
        batch_op.add_column(sa.Column("waiting_since", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rsvps") as batch_op:
        batch_op.drop_column("waiting_since")
    with op.batch_alter_table("meetings") as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_meetings_series_id_meeting_series"), type_="foreignkey"
        )
        batch_op.drop_constraint(batch_op.f("uq_meetings_series_id"), type_="unique")
        batch_op.drop_index(batch_op.f("ix_meetings_series_id"))
        batch_op.drop_constraint(batch_op.f("ck_meetings_capacity_positive"), type_="check")
        batch_op.drop_column("recurrence_id")
        batch_op.drop_column("series_id")
        batch_op.drop_column("capacity")
    op.drop_index(op.f("ix_meeting_series_import_key"), table_name="meeting_series")
    op.drop_table("meeting_series")
