"""Search tips in German as people type it: folded spellings, stems and compound parts

Revision ID: 0006_german_search
Revises: 0005_import_keys
Create Date: 2026-11-30 06:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006_german_search"
down_revision: str | None = "0005_import_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The index holds what storage/search.py makes of a tip (the engine gives every connection
# its functions): the stems of the title and the text, and the parts inside compound
# words. It keeps no copy of the text (content=''); a tip leaves it by the same values it
# came in with. Only visible tips are indexed, so a match count is what a member can see.
CREATE = """
CREATE VIRTUAL TABLE tips_search USING fts5(
    title, text, parts,
    content='',
    tokenize='unicode61 remove_diacritics 0'
)
"""
INDEXED = (
    "klimabot_index_words({row}.title), klimabot_index_words({row}.text), "
    "klimabot_compound_parts({row}.title, {row}.text)"
)
TRIGGERS = (
    f"""CREATE TRIGGER tips_search_insert AFTER INSERT ON tips WHEN new.hidden_at IS NULL
    BEGIN
        INSERT INTO tips_search(rowid, title, text, parts)
        VALUES (new.id, {INDEXED.format(row="new")});
    END""",
    f"""CREATE TRIGGER tips_search_delete AFTER DELETE ON tips WHEN old.hidden_at IS NULL
    BEGIN
        INSERT INTO tips_search(tips_search, rowid, title, text, parts)
        VALUES ('delete', old.id, {INDEXED.format(row="old")});
    END""",
    # One trigger, so that the old entry always leaves before the new one comes in.
    f"""CREATE TRIGGER tips_search_update AFTER UPDATE OF title, text, hidden_at ON tips
    BEGIN
        INSERT INTO tips_search(tips_search, rowid, title, text, parts)
        SELECT 'delete', old.id, {INDEXED.format(row="old")} WHERE old.hidden_at IS NULL;
        INSERT INTO tips_search(rowid, title, text, parts)
        SELECT new.id, {INDEXED.format(row="new")} WHERE new.hidden_at IS NULL;
    END""",
)
FILL = (
    "INSERT INTO tips_search(rowid, title, text, parts) "
    f"SELECT tips.id, {INDEXED.format(row='tips')} FROM tips WHERE tips.hidden_at IS NULL"
)

# Revision 0002's index, for the way down.
OLD_CREATE = """
CREATE VIRTUAL TABLE tips_fts USING fts5(
    title, text,
    content='tips', content_rowid='id',
    tokenize='unicode61 remove_diacritics 2',
    prefix='3 5'
)
"""
OLD_TRIGGERS = (
    """CREATE TRIGGER tips_fts_insert AFTER INSERT ON tips WHEN new.hidden_at IS NULL BEGIN
        INSERT INTO tips_fts(rowid, title, text) VALUES (new.id, new.title, new.text);
    END""",
    """CREATE TRIGGER tips_fts_delete AFTER DELETE ON tips WHEN old.hidden_at IS NULL BEGIN
        INSERT INTO tips_fts(tips_fts, rowid, title, text)
        VALUES ('delete', old.id, old.title, old.text);
    END""",
    """CREATE TRIGGER tips_fts_update AFTER UPDATE OF title, text, hidden_at ON tips BEGIN
        INSERT INTO tips_fts(tips_fts, rowid, title, text)
        SELECT 'delete', old.id, old.title, old.text WHERE old.hidden_at IS NULL;
        INSERT INTO tips_fts(rowid, title, text)
        SELECT new.id, new.title, new.text WHERE new.hidden_at IS NULL;
    END""",
)
OLD_FILL = (
    "INSERT INTO tips_fts(rowid, title, text) "
    "SELECT id, title, text FROM tips WHERE hidden_at IS NULL"
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name in ("tips_fts_update", "tips_fts_delete", "tips_fts_insert"):
        op.execute(f"DROP TRIGGER {name}")
    op.execute("DROP TABLE tips_fts")
    op.execute(CREATE)
    for trigger in TRIGGERS:
        op.execute(trigger)
    op.execute(FILL)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name in ("tips_search_update", "tips_search_delete", "tips_search_insert"):
        op.execute(f"DROP TRIGGER {name}")
    op.execute("DROP TABLE tips_search")
    op.execute(OLD_CREATE)
    for trigger in OLD_TRIGGERS:
        op.execute(trigger)
    op.execute(OLD_FILL)
