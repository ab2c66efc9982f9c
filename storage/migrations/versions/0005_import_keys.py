"""Add import keys to partners, meetings and tips; partner names unique regardless of case

Revision ID: 0005_import_keys
Revises: 0004
Create Date: 2026-11-30 06:00:00
"""

import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_import_keys"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("partners", "meetings", "tips")


def _fold(name: str) -> str:
    # The same as storage.models.fold_name, frozen here as this revision knew it.
    return unicodedata.normalize("NFKC", name).casefold()


def upgrade() -> None:
    # Columns and unique indexes only: rebuilding partners would cascade to its tips.
    op.add_column(
        "partners",
        sa.Column("name_folded", sa.String(length=200), nullable=False, server_default=""),
    )
    bind = op.get_bind()
    taken: set[str] = set()
    for partner_id, name in bind.execute(sa.text("SELECT id, name FROM partners ORDER BY id")):
        folded = _fold(name)
        if folded in taken:
            # Older versions allowed "Acme" beside "acme": the later one keeps a distinct key
            # until an operator merges or renames it.
            folded = f"{folded} #{partner_id}"
        taken.add(folded)
        bind.execute(
            sa.text("UPDATE partners SET name_folded = :folded WHERE id = :id"),
            {"folded": folded, "id": partner_id},
        )
    op.create_index(op.f("ix_partners_name_folded"), "partners", ["name_folded"], unique=True)
    for table in TABLES:
        op.add_column(table, sa.Column("import_key", sa.String(length=100), nullable=True))
        op.create_index(op.f(f"ix_{table}_import_key"), table, ["import_key"], unique=True)


def downgrade() -> None:
    for table in TABLES:
        op.drop_index(op.f(f"ix_{table}_import_key"), table_name=table)
        op.execute(f"ALTER TABLE {table} DROP COLUMN import_key")
    op.drop_index(op.f("ix_partners_name_folded"), table_name="partners")
    op.execute("ALTER TABLE partners DROP COLUMN name_folded")
