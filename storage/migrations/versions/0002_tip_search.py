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
# prefix queries such as "Wärmepump*" fast. Only visible tips are indexed, so a match
# count is the number of tips a member can see.
CREATE = """
CREATE VIRTUAL TABLE tips_fts USING fts5(
    title, text,
    content='tips', content_rowid='id',
    tokenize='unicode61 remove_diacritics 2',
    prefix='3 5'
)
"""
TRIGGERS = (
    """CREATE TRIGGER tips_fts_insert AFTER INSERT ON tips WHEN new.hidden_at IS NULL BEGIN
        INSERT INTO tips_fts(rowid, title, text) VALUES (new.id, new.title, new.text);
    END""",
    """CREATE TRIGGER tips_fts_delete AFTER DELETE ON tips WHEN old.hidden_at IS NULL BEGIN
        INSERT INTO tips_fts(tips_fts, rowid, title, text)
        VALUES ('delete', old.id, old.title, old.text);
    END""",
    # One trigger, so that the old entry always leaves before the new one comes in.
    """CREATE TRIGGER tips_fts_update AFTER UPDATE OF title, text, hidden_at ON tips BEGIN
        INSERT INTO tips_fts(tips_fts, rowid, title, text)
        SELECT 'delete', old.id, old.title, old.text WHERE old.hidden_at IS NULL;
        INSERT INTO tips_fts(rowid, title, text)
        SELECT new.id, new.title, new.text WHERE new.hidden_at IS NULL;
    END""",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(CREATE)
    for trigger in TRIGGERS:
        op.execute(trigger)
    op.execute(
        "INSERT INTO tips_fts(rowid, title, text) "
        "SELECT id, title, text FROM tips WHERE hidden_at IS NULL"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name in ("tips_fts_update", "tips_fts_delete", "tips_fts_insert"):
        op.execute(f"DROP TRIGGER {name}")
    op.execute("DROP TABLE tips_fts")
