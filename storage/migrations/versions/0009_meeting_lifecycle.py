"""Add calendar UIDs and sequence numbers to meetings, meeting notices and dialogs

Revision ID: 0009_meeting_lifecycle
Revises: 0008_reminders
Create Date: 2026-11-30 08:30:00
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_meeting_lifecycle"
down_revision: str | None = "0008_reminders"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("meetings") as batch_op:
        batch_op.add_column(sa.Column("uid", sa.String(length=80), nullable=True))
        batch_op.add_column(
            sa.Column("sequence", sa.Integer(), server_default="0", nullable=False)
        )
    connection = op.get_bind()
    meetings = sa.table("meetings", sa.column("id", sa.Integer), sa.column("uid", sa.String))
    for (meeting_id,) in connection.execute(sa.select(meetings.c.id)).all():
        connection.execute(
            meetings.update()
            .where(meetings.c.id == meeting_id)
            .values(uid=f"{uuid.uuid4()}@klimabot")
        )
    with op.batch_alter_table("meetings") as batch_op:
        batch_op.alter_column("uid", existing_type=sa.String(length=80), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_meetings_uid"), ["uid"])

    op.create_table(
        "meeting_notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "changed",
                "cancelled",
                "moved_up",
                name="notice_kind",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("changes", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meetings.id"],
            name=op.f("fk_meeting_notices_meeting_id_meetings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_notices")),
    )
    op.create_index(
        op.f("ix_meeting_notices_meeting_id"), "meeting_notices", ["meeting_id"], unique=False
    )
    op.create_table(
        "dialogs",
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("step", sa.String(length=32), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_dialogs_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_dialogs")),
    )
    with op.batch_alter_table("deliveries") as batch_op:
        batch_op.add_column(sa.Column("notice_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_deliveries_notice_id"), ["notice_id"], unique=False)
        batch_op.create_unique_constraint(
            batch_op.f("uq_deliveries_notice_id"), ["notice_id", "member_id"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_deliveries_notice_id_meeting_notices"),
            "meeting_notices",
            ["notice_id"],
            ["id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_deliveries_notice_id_meeting_notices"), type_="foreignkey"
        )
        batch_op.drop_constraint(batch_op.f("uq_deliveries_notice_id"), type_="unique")
        batch_op.drop_index(batch_op.f("ix_deliveries_notice_id"))
        batch_op.drop_column("notice_id")
    op.drop_table("dialogs")
    op.drop_index(op.f("ix_meeting_notices_meeting_id"), table_name="meeting_notices")
    op.drop_table("meeting_notices")
    with op.batch_alter_table("meetings") as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_meetings_uid"), type_="unique")
        batch_op.drop_column("sequence")
        batch_op.drop_column("uid")
