"""The database: migrations from nothing, their match with the models, SQLite settings."""

import sqlite3
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import (
    DatabaseError,
    SchemaState,
    WriteNeeded,
    alembic_config,
    backup,
    create_engine,
    create_reader_engine,
    open_database,
    open_new_or_existing,
    schema_state,
    session_factory,
    upgrade,
)
from storage.models import Base


async def test_a_new_file_is_created_and_migrated(tmp_path: Path) -> None:
    engine = await open_database(f"sqlite+aiosqlite:///{tmp_path}/new.db")
    try:
        assert await schema_state(engine) is SchemaState.CURRENT
    finally:
        await engine.dispose()
    assert (tmp_path / "new.db").exists()


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection)
    return list(compare_metadata(context, Base.metadata))


async def test_the_migrations_build_exactly_the_models(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        differences = await connection.run_sync(_differences)
    # The full-text index is SQLite's own and not in the models.
    differences = [d for d in differences if "tips_search" not in str(d)]
    assert differences == []


def _downgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, revision)


async def test_every_migration_goes_down_and_up_again(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(_downgrade, "base")
    assert await schema_state(engine) is SchemaState.EMPTY
    await upgrade(engine)
    assert await schema_state(engine) is SchemaState.CURRENT


async def test_sqlite_runs_with_wal_foreign_keys_and_a_busy_timeout(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        pragmas = [
            (await connection.execute(text(f"PRAGMA {name}"))).scalar()
            for name in ("journal_mode", "foreign_keys", "busy_timeout")
        ]
    assert pragmas == ["wal", 1, 30000]


async def test_foreign_tables_are_not_taken_for_ours(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/other.db")
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE invoices (id INTEGER)"))
        assert await schema_state(engine) is SchemaState.UNKNOWN
    finally:
        await engine.dispose()


async def test_readers_never_wait_for_a_writer_and_never_write(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    readers = create_reader_engine(engine)
    assert readers is not None
    lock = sqlite3.connect(tmp_path / "klimabot.db", isolation_level=None, timeout=0)
    try:
        lock.execute("BEGIN IMMEDIATE")
        lock.execute("CREATE TABLE half_done (id INTEGER)")
        async with session_factory(readers)() as session:
            assert (await session.execute(text("SELECT count(*) FROM partners"))).scalar() == 0
            with pytest.raises(WriteNeeded):
                await session.execute(text("DELETE FROM partners"))
    finally:
        lock.close()
        await readers.dispose()


async def test_open_tells_whether_it_created_the_database(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/k.db"
    for expected in (True, False):
        engine, created = await open_new_or_existing(url)
        await engine.dispose()
        assert created is expected


async def test_a_file_that_is_not_sqlite_is_named(tmp_path: Path) -> None:
    (tmp_path / "k.db").write_text("partner;sector\n" * 50, encoding="utf-8")
    with pytest.raises(DatabaseError) as error:
        await open_database(f"sqlite+aiosqlite:///{tmp_path}/k.db")
    assert error.value.code == "not_sqlite"
    assert str(error.value) == (
        f"{tmp_path}/k.db: this file is not a SQLite database; correct database.url "
        "or move the file away"
    )


async def test_a_backup_needs_no_current_schema_and_never_overwrites(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(_downgrade, "0002")
    url = f"sqlite+aiosqlite:///{tmp_path}/klimabot.db"
    await backup(url, tmp_path / "copy.db")
    with sqlite3.connect(tmp_path / "copy.db") as copy:
        assert copy.execute("SELECT version_num FROM alembic_version").fetchall() == [("0002",)]
    with pytest.raises(DatabaseError) as error:
        await backup(url, tmp_path / "copy.db")
    assert error.value.code == "backup_exists"
    with pytest.raises(DatabaseError) as error:
        await backup(f"sqlite+aiosqlite:///{tmp_path}/none.db", tmp_path / "other.db")
    assert error.value.code == "missing"
    assert not (tmp_path / "none.db").exists()
    assert not (tmp_path / "other.db").exists()
