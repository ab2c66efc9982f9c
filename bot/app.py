"""The wiring: the one place that knows config, storage, handlers and transports."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.config import Config
from bot.core import Platform
from bot.dispatch import Dispatcher
from handlers import meetings, partners, preferences, start, tips
from storage.db import open_database, session_factory

logger = logging.getLogger(__name__)

ROUTERS = (start.router, meetings.router, tips.router, partners.router, preferences.router)


@dataclass(frozen=True, slots=True)
class App:
    """A running bot's shared parts: the database and the dispatcher."""

    config: Config
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    dispatcher: Dispatcher

    async def close(self) -> None:
        """Release the database."""
        await self.engine.dispose()


def coordinators(config: Config) -> set[tuple[Platform, str]]:
    """Return the configured coordinators as (platform, user id) pairs."""
    return {(Platform.TELEGRAM, str(user)) for user in config.coordinators.telegram} | {
        (Platform.MATRIX, user) for user in config.coordinators.matrix
    }


def build_dispatcher(
    config: Config,
    sessions: async_sessionmaker[AsyncSession],
    extra_coordinators: set[tuple[Platform, str]] | None = None,
) -> Dispatcher:
    """Return a dispatcher with every handler router included."""
    dispatcher = Dispatcher(
        sessions,
        network=config.network.name,
        language=config.network.language,
        timezone=config.network.zone,
        coordinators=coordinators(config) | (extra_coordinators or set()),
    )
    dispatcher.include_routers(*ROUTERS)
    return dispatcher


async def open_app(
    config: Config, extra_coordinators: set[tuple[Platform, str]] | None = None
) -> App:
    """Open the database (creating a new one) and build the dispatcher."""
    engine = await open_database(config.database.url)
    sessions = session_factory(engine)
    return App(config, engine, sessions, build_dispatcher(config, sessions, extra_coordinators))
