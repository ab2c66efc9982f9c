"""The wiring: the one place that knows config, storage, handlers and transports."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot import i18n
from bot.config import Config, Secrets
from bot.core import Platform, Recipient, Role
from bot.dispatch import Dispatcher
from bot.transports import Transport
from bot.transports.matrix import MatrixSettings, MatrixTransport
from bot.transports.telegram import Menu, TelegramSettings, TelegramTransport
from bot.transports.telegram_pacing import Limits
from handlers import accounts, meetings, partners, preferences, start, tips
from storage.changes import Changes, watch_other_writers
from storage.db import open_database, session_factory
from storage.members import mark_unreachable
from storage.models import utcnow

logger = logging.getLogger(__name__)

ROUTERS = (
    start.router,
    meetings.router,
    tips.router,
    partners.router,
    preferences.router,
    accounts.router,
)


@dataclass(frozen=True, slots=True)
class App:
    """A running bot's shared parts: the database, its changes and the dispatcher."""

    config: Config
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    changes: Changes
    dispatcher: Dispatcher

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[None]:
        """Keep what dispatch remembers current, also when other processes write the data."""
        watcher = asyncio.create_task(watch_other_writers(self.engine, self.changes))
        try:
            yield
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

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
    changes: Changes | None = None,
) -> Dispatcher:
    """Return a dispatcher with every handler router included.

    Given the engine's changes, it answers repeated requests from memory where it can.
    """
    dispatcher = Dispatcher(
        sessions,
        network=config.network.name,
        language=config.network.language,
        timezone=config.network.zone,
        coordinators=coordinators(config) | (extra_coordinators or set()),
        changes=changes,
    )
    dispatcher.include_routers(*ROUTERS)
    return dispatcher


async def open_app(
    config: Config, extra_coordinators: set[tuple[Platform, str]] | None = None
) -> App:
    """Open the database (creating a new one) and build the dispatcher."""
    engine = await open_database(config.database.url)
    sessions = session_factory(engine)
    changes = Changes.track(engine)
    dispatcher = build_dispatcher(config, sessions, extra_coordinators, changes)
    return App(config, engine, sessions, changes, dispatcher)


class SetupError(Exception):
    """A transport cannot be set up as configured; the message says what is missing."""


def transports(app: App, secrets: Secrets) -> list[Transport]:
    """Return the transports whose secrets are set, wired to the app's dispatcher."""
    found: list[Transport] = []
    if secrets.telegram_token:
        found.append(_telegram(app, secrets.telegram_token, secrets.telegram_webhook_secret))
    if secrets.matrix_access_token or secrets.matrix_password:
        found.append(_matrix(app, secrets))
    return found


def _matrix(app: App, secrets: Secrets) -> MatrixTransport:
    section = app.config.matrix
    if section.homeserver is None or section.user_id is None:
        raise SetupError(
            i18n._("Matrix needs matrix.homeserver and matrix.user_id in the configuration.")
        )
    settings = MatrixSettings(
        homeserver=str(section.homeserver).rstrip("/"),
        user_id=section.user_id,
        data_dir=section.data_dir,
        access_token=secrets.matrix_access_token,
        password=secrets.matrix_password,
    )
    return MatrixTransport(
        app.dispatcher.handle,
        settings,
        coordinators=frozenset(app.config.coordinators.matrix),
        unreachable=lambda recipient: _mark_unreachable(app, recipient),
    )


def _telegram(app: App, token: str, webhook_secret: str | None) -> TelegramTransport:
    section = app.config.telegram
    if section.mode == "webhook" and not webhook_secret:
        raise SetupError(
            i18n._("Webhook mode needs a secret: set KLIMABOT_TELEGRAM_WEBHOOK_SECRET.")
        )
    settings = TelegramSettings(
        token=token,
        base_url=str(section.base_url),
        mode=section.mode,
        webhook_url=str(section.webhook_url) if section.webhook_url else None,
        webhook_secret=webhook_secret,
        listen=section.listen,
        port=section.port,
    )
    group = frozenset(
        name
        for command in app.dispatcher.commands_for(Role.MEMBER)
        if command.group
        for name in (command.name, *command.aliases)
    )
    limits = section.limits
    return TelegramTransport(
        app.dispatcher.handle,
        settings,
        menus=telegram_menus(app),
        group_commands=group,
        unreachable=lambda recipient: _mark_unreachable(app, recipient),
        limits=Limits.per_second(
            limits.messages_per_second,
            limits.private_chat_messages_per_second,
            limits.group_messages_per_minute / 60,
        ),
    )


def telegram_menus(app: App) -> list[Menu]:
    """Return Telegram's command menus: per language, for private chats, groups, coordinators."""
    dispatcher = app.dispatcher
    menus = []
    for language in (None, *i18n.LANGUAGES):
        with i18n.using(dispatcher.localizer(language)):

            def entries(role: Role, *, group: bool = False) -> list[tuple[str, str]]:
                return [
                    (command.name_in(i18n.current().language), i18n._(command.help))
                    for command in dispatcher.commands_for(role)
                    if command.group or not group
                ]

            menus.append(Menu("private", language, entries(Role.MEMBER)))
            menus.append(Menu("group", language, entries(Role.MEMBER, group=True)))
            menus.extend(
                Menu(int(user), language, entries(Role.COORDINATOR))
                for user in app.config.coordinators.telegram
            )
    return menus


async def _mark_unreachable(app: App, recipient: Recipient) -> None:
    async with app.sessions() as session:
        await mark_unreachable(session, recipient.platform, recipient.chat_id, utcnow())
        await session.commit()
