"""Fixtures: a real SQLite database file and a dispatcher wired like the real bot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.app import build_dispatcher
from bot.config import Config
from bot.core import Platform
from bot.dispatch import Dispatcher
from storage.db import create_reader_engine, open_database, session_factory
from tests.helpers import NOW, Chat

pytest_plugins = ["tests.telegram_fixtures", "tests.matrix_fixtures"]


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A new, migrated SQLite database file."""
    engine = await open_database(f"sqlite+aiosqlite:///{tmp_path / 'klimabot.db'}")
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """The session factory, as the bot process has it."""
    return session_factory(engine)


@pytest.fixture
async def readers(engine: AsyncEngine) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """The session factory for units that only read, as the bot process has it."""
    reader = create_reader_engine(engine)
    assert reader is not None
    yield session_factory(reader)
    await reader.dispose()


@pytest.fixture
async def session(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One session for arranging data and looking at what is stored."""
    async with sessions() as session:
        yield session


@pytest.fixture
async def dispatcher(
    sessions: async_sessionmaker[AsyncSession], readers: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Dispatcher]:
    """A dispatcher wired like the bot's: every router, one console coordinator.

    Units begin as readers and move to a writer when they write, as in the bot process.
    Its clock stands still at NOW unless a test moves it.
    """
    dispatcher = build_dispatcher(
        Config(), sessions, {(Platform.CONSOLE, "coordinator")}, readers=readers
    )
    dispatcher.clock = lambda: NOW
    yield dispatcher
    await dispatcher.settled()


@pytest.fixture
async def demo(sessions: async_sessionmaker[AsyncSession]) -> None:
    """The demo network, as `klimabot chat` loads it, relative to the fixed clock."""
    from storage.demo import load_demo

    async with sessions() as session:
        await load_demo(session, NOW.date(), Config().network.zone)
        await session.commit()


@pytest.fixture
def member(dispatcher: Dispatcher) -> Chat:
    """A member talking to the bot on the console."""
    return Chat(dispatcher, "member")


@pytest.fixture
def coordinator(dispatcher: Dispatcher) -> Chat:
    """A coordinator talking to the bot on the console."""
    return Chat(dispatcher, "coordinator")
