"""The database: migrations from nothing, their match with the models, SQLite settings."""

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import (
    SchemaState,
    alembic_config,
    create_engine,
    open_database,
    schema_state,
    upgrade,
)
from storage.models import Base


async def test_a_new_file_is_created_and_migrated(tmp_path: Path) -> None:
    engine = await open_database(f"sqlite+aiosqlite:///{tmp_path}/sub/dir/new.db")
    try:
        assert await schema_state(engine) is SchemaState.CURRENT
    finally:
        await engine.dispose()
    assert (tmp_path / "sub" / "dir" / "new.db").exists()


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
    assert pragmas == ["wal", 1, 10000]


async def test_foreign_tables_are_not_taken_for_ours(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/other.db")
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE invoices (id INTEGER)"))
        assert await schema_state(engine) is SchemaState.UNKNOWN
    finally:
        await engine.dispose()
