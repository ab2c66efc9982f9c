"""Add full-text search over tips (SQLite FTS5)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 17:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# remove_diacritics 2 lets "Warmepumpe" find "Wärmepumpe"; the prefix indexes keep
# prefix queries such as "Wärmepump*" fast.
CREATE = """
CREATE VIRTUAL TABLE tips_fts USING fts5(
    title, text,
    content='tips', content_rowid='id',
    tokenize='unicode61 remove_diacritics 2',
    prefix='3 5'
)
"""
TRIGGERS = (
    """CREATE TRIGGER tips_fts_insert AFTER INSERT ON tips BEGIN
        INSERT INTO tips_fts(rowid, title, text) VALUES (new.id, new.title, new.text);
    END""",
    """CREATE TRIGGER tips_fts_delete AFTER DELETE ON tips BEGIN
        INSERT INTO tips_fts(tips_fts, rowid, title, text)
        VALUES ('delete', old.id, old.title, old.text);
    END""",
    """CREATE TRIGGER tips_fts_update AFTER UPDATE OF title, text ON tips BEGIN
        INSERT INTO tips_fts(tips_fts, rowid, title, text)
        VALUES ('delete', old.id, old.title, old.text);
        INSERT INTO tips_fts(rowid, title, text) VALUES (new.id, new.title, new.text);
    END""",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(CREATE)
    for trigger in TRIGGERS:
        op.execute(trigger)
    op.execute("INSERT INTO tips_fts(tips_fts) VALUES ('rebuild')")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name in ("tips_fts_update", "tips_fts_delete", "tips_fts_insert"):
        op.execute(f"DROP TRIGGER {name}")
    op.execute("DROP TABLE tips_fts")
