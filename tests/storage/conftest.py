"""Fixtures for the storage tests: new, migrated SQLite database files."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage.db import open_database, session_factory

Sessions = async_sessionmaker[AsyncSession]
MakeDatabase = Callable[[], Awaitable[Sessions]]
StoredRows = Callable[[Sessions], Awaitable[dict[str, list[tuple[object, ...]]]]]


@pytest.fixture
async def make_database(tmp_path: Path) -> AsyncIterator[MakeDatabase]:
    """Create new database files on demand (a round trip needs two); dispose of them after."""
    engines: list[AsyncEngine] = []

    async def make() -> Sessions:
        engine = await open_database(f"sqlite+aiosqlite:///{tmp_path}/db{len(engines)}.db")
        engines.append(engine)
        return session_factory(engine)

    yield make
    for engine in engines:
        await engine.dispose()


@pytest.fixture
def db(sessions: Sessions) -> Sessions:
    """The session factory of one new database file (the suite's `sessions` fixture)."""
    return sessions


@pytest.fixture
def stored_rows() -> StoredRows:
    """Read every row of partners, meetings and tips, exactly as the database holds them."""

    async def read(sessions: Sessions) -> dict[str, list[tuple[object, ...]]]:
        rows: dict[str, list[tuple[object, ...]]] = {}
        async with sessions() as session:
            for table in ("partners", "meetings", "tips"):
                result = await session.execute(text(f"SELECT * FROM {table} ORDER BY id"))
                rows[table] = [tuple(row) for row in result]
        return rows

    return read
