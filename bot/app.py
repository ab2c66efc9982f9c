"""The wiring: the one place that knows config, storage, handlers and transports."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot import i18n
from bot.allowance import Allowance
from bot.config import Config, Secrets, setup_problems
from bot.core import Platform, Recipient, Reply, Role
from bot.delivery import DeliveryWorker, ProgressUpdate
from bot.dispatch import Dispatcher
from bot.scheduler import ReminderPlanner
from bot.transports import Transport
from handlers import (
    accounts,
    announcements,
    attendees,
    calendar,
    dialogs,
    meetings,
    notices,
    partners,
    planning,
    preferences,
    reminders,
    start,
    tips,
)
from storage.announcements import unfinished_announcements
from storage.db import create_reader_engine, open_new_or_existing, session_factory
from storage.members import mark_unreachable
from storage.models import utcnow
from storage.outbox import Claimed
from storage.reminders import ReminderRules

if TYPE_CHECKING:
    # The chat libraries are imported only when their transport runs: the CLI starts fast.
    from bot.calendar_feed import CalendarFeed
    from bot.transports.matrix import MatrixTransport
    from bot.transports.telegram import Menu, TelegramTransport

logger = logging.getLogger(__name__)

ROUTERS = (
    start.router,
    announcements.router,
    meetings.router,
    calendar.router,
    attendees.router,
    tips.router,
    partners.router,
    preferences.router,
    reminders.router,
    accounts.router,
    planning.router,
    dialogs.router,
)


@dataclass(frozen=True, slots=True)
class App:
    """A running bot's shared parts: the database and the dispatcher."""

    config: Config
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    dispatcher: Dispatcher
    created: bool = False  # the database file was created by this process
    readers: AsyncEngine | None = None

    async def close(self) -> None:
        """Release the database."""
        if self.readers is not None:
            await self.readers.dispose()
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
    readers: async_sessionmaker[AsyncSession] | None = None,
) -> Dispatcher:
    """Return a dispatcher with every handler router included."""
    dispatcher = Dispatcher(
        sessions,
        readers=readers,
        network=config.network.name,
        language=config.network.language,
        timezone=config.network.zone,
        coordinators=coordinators(config) | (extra_coordinators or set()),
        allowance=Allowance(config.rate_limit.commands, config.rate_limit.seconds),
        quiet_hours=config.announcements.quiet(config.network.zone),
        reminder_offsets=config.reminders.offset_minutes,
        meeting_length=config.meetings.default_length,
        feed_url=config.calendar.feed_url,
    )
    dispatcher.include_routers(*ROUTERS)
    dispatcher.dialog = dialogs.DIALOG
    return dispatcher


async def open_app(
    config: Config, extra_coordinators: set[tuple[Platform, str]] | None = None
) -> App:
    """Open the database (creating a new one) and build the dispatcher.

    The unit-of-work policy: each command begins as a reader, which never waits for a
    writer; one that writes starts again from the beginning as a writer, and the writers
    take turns on one connection that holds the write lock from its first statement.
    """
    busy_timeout = config.database.busy_timeout
    engine, created = await open_new_or_existing(config.database.url, busy_timeout=busy_timeout)
    readers = create_reader_engine(engine, busy_timeout=busy_timeout)
    sessions = session_factory(engine)
    dispatcher = build_dispatcher(
        config,
        sessions,
        extra_coordinators,
        readers=session_factory(readers) if readers is not None else None,
    )
    return App(config, engine, sessions, dispatcher, created, readers)


class SetupError(Exception):
    """A transport cannot be set up as configured; the message says what is missing."""


def transports(app: App, secrets: Secrets) -> list[Transport]:
    """Return the transports whose secrets are set, wired to the app's dispatcher."""
    problems = setup_problems(app.config, secrets)
    if problems:
        raise SetupError(problems[0])
    found: list[Transport] = []
    if secrets.telegram_token:
        found.append(_telegram(app, secrets.telegram_token, secrets.telegram_webhook_secret))
    if secrets.matrix_access_token or secrets.matrix_password:
        found.append(_matrix(app, secrets))
    return found


def _matrix(app: App, secrets: Secrets) -> MatrixTransport:
    from bot.transports.matrix import MatrixSettings, MatrixTransport  # noqa: PLC0415

    section = app.config.matrix
    # setup_problems refused a Matrix section without these.
    assert section.homeserver is not None
    assert section.user_id is not None
    settings = MatrixSettings(
        homeserver=str(section.homeserver).rstrip("/"),
        user_id=section.user_id,
        data_dir=section.data_dir,
        access_token=secrets.matrix_access_token,
        password=secrets.matrix_password,
        pickle_key=secrets.matrix_pickle_key,
    )
    return MatrixTransport(
        app.dispatcher.handle,
        settings,
        coordinators=frozenset(app.config.coordinators.matrix),
        unreachable=lambda recipient: _mark_unreachable(app, recipient),
    )


def _telegram(app: App, token: str, webhook_secret: str | None) -> TelegramTransport:
    from bot.transports.telegram import TelegramSettings, TelegramTransport  # noqa: PLC0415
    from bot.transports.telegram_pacing import Limits  # noqa: PLC0415

    section = app.config.telegram
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
    from bot.transports.telegram import Menu  # noqa: PLC0415

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


def delivery_worker(app: App, running: Iterable[Transport]) -> DeliveryWorker:
    """Return the worker that sends the outbox through the running transports."""
    dispatcher = app.dispatcher

    async def render(session: AsyncSession, row: Claimed) -> Reply:
        if row.notice_id is not None:
            return await notices.notice_message(session, row.notice_id, row.member_id)
        if row.announcement_id is not None:
            return await announcements.delivery_message(
                session, row.announcement_id, dispatcher.network
            )
        if row.meeting_id is not None:
            return await reminders.reminder_message(
                session, row.meeting_id, row.member_id, dispatcher.clock()
            )
        raise LookupError(f"delivery {row.id} has nothing to send")

    async def progress(
        session: AsyncSession, finished: set[int] | None, now: dt.datetime
    ) -> list[ProgressUpdate]:
        if finished is None:
            finished = set(await unfinished_announcements(session))
        updates = []
        for announcement_id in sorted(finished):
            note = await announcements.due_progress(session, announcement_id, now)
            if note is None or note.watcher is None:
                continue
            with i18n.using(dispatcher.localizer(note.language)):
                reply = announcements.progress_reply(note)
            updates.append(ProgressUpdate(note.watcher, note.message, reply))
        return updates

    return DeliveryWorker(
        app.sessions,
        {transport.platform: transport for transport in running},
        render,
        dispatcher.localizer,
        progress=progress,
        readers=dispatcher.readers,
    )


def reminder_planner(app: App) -> ReminderPlanner:
    """Return the planner that queues meeting reminders for the delivery worker."""
    settings = app.config.reminders
    rules = ReminderRules(
        settings.offset_minutes,
        dt.timedelta(minutes=settings.catch_up_minutes),
        app.config.network.zone,
    )
    return ReminderPlanner(
        app.sessions, rules, clock=app.dispatcher.clock, readers=app.dispatcher.readers
    )


def calendar_feed(app: App) -> CalendarFeed | None:
    """Return the server of the private calendar feeds, where calendar.public_url is set."""
    from bot.calendar_feed import CalendarFeed  # noqa: PLC0415

    section = app.config.calendar
    if section.feed_url is None:
        return None
    return CalendarFeed(app.dispatcher, section.feed_url, section.listen, section.port)
