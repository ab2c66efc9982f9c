"""Fixtures: a real SQLite database file and a dispatcher wired like the real bot."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.app import build_dispatcher
from bot.config import Config
from bot.core import Platform
from bot.dispatch import Dispatcher
from storage.changes import Changes, watch_other_writers
from storage.db import create_engine, open_database, session_factory
from tests.helpers import NOW, Chat, Sessions

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
async def session(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One session for arranging data and looking at what is stored."""
    async with sessions() as session:
        yield session


@pytest.fixture
def changes(engine: AsyncEngine) -> Changes:
    """The engine's writes, counted per table, as the bot process counts them."""
    return Changes.track(engine)


@pytest.fixture
async def watched(engine: AsyncEngine, changes: Changes) -> AsyncIterator[None]:
    """Other processes' writes counted as the bot counts them, but every 20 ms."""
    watcher = asyncio.create_task(watch_other_writers(engine, changes, every=0.02))
    await asyncio.sleep(0.1)  # the first look, which every later one is compared with
    yield
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher


@pytest.fixture
async def other_process(engine: AsyncEngine) -> AsyncIterator[Sessions]:
    """Sessions of a second engine on the same file, as `klimabot import` would open it."""
    other = create_engine(str(engine.url))
    yield session_factory(other)
    await other.dispose()


@pytest.fixture
def dispatcher(sessions: async_sessionmaker[AsyncSession], changes: Changes) -> Dispatcher:
    """A dispatcher wired like the bot's: every router, memory, one console coordinator.

    Its clock stands still at NOW unless a test moves it.
    """
    dispatcher = build_dispatcher(Config(), sessions, {(Platform.CONSOLE, "coordinator")}, changes)
    dispatcher.clock = lambda: NOW
    return dispatcher


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
