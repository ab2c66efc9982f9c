"""Test helpers: a person talking to the bot through dispatch, as a transport would."""

from __future__ import annotations

import datetime as dt
from html.parser import HTMLParser
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql import Executable

from bot.core import ChatId, Platform, Reply, Request, Sender, UserId, parse_action
from bot.dispatch import Dispatcher
from bot.markup import ALLOWED_TAGS, to_plain
from storage.models import Category, Meeting, Partner, Tip

Sessions = async_sessionmaker[AsyncSession]

# A fixed "now": Wednesday 25 November 2026, 10:00 UTC.
NOW = dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.UTC)


class Chat:
    """One person's conversation with the bot: send a line, read the plain reply."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        user_id: str,
        *,
        platform: Platform = Platform.CONSOLE,
        language_code: str | None = None,
        is_group: bool = False,
    ) -> None:
        self.dispatcher = dispatcher
        self.sender = Sender(UserId(user_id), user_id, language_code)
        self.platform = platform
        self.is_group = is_group
        self.last: Reply | None = None

    async def reply(self, line: str) -> Reply:
        """Send one line such as ``/tips Wärmepumpe`` and return the bot's reply."""
        reply = await self.answer(line)
        assert reply is not None, f"no reply to {line!r}"
        return reply

    async def answer(self, line: str) -> Reply | None:
        """Send one line and return the reply, or None if the bot stays silent."""
        command, _, args = line.removeprefix("/").partition(" ")
        if not line.startswith("/"):
            command, args = "", line
        return await self._handle(command, args.strip(), via_button=False)

    async def send(self, line: str) -> str:
        """Send one line and return the reply as the person reads it (plain text)."""
        return to_plain((await self.reply(line)).text)

    async def press(self, label: str) -> Reply:
        """Press the button of the last reply whose label contains ``label``."""
        assert self.last is not None, "no reply with buttons yet"
        for row in self.last.buttons:
            for button in row:
                if label in button.label:
                    command, args = parse_action(button.action)
                    reply = await self._handle(command, args, via_button=True)
                    assert reply is not None
                    return reply
        raise AssertionError(f"no button {label!r} in {self.last.buttons}")

    async def _handle(self, command: str, args: str, *, via_button: bool) -> Reply | None:
        request = Request(
            self.platform,
            ChatId(f"chat-{self.sender.user_id}"),
            self.sender,
            command,
            args,
            is_group=self.is_group,
            via_button=via_button,
        )
        reply = await self.dispatcher.handle(request)
        if reply is not None:
            self.last = reply
        return reply


async def stored(sessions: Sessions, statement: Executable) -> list[Any]:
    """Return what the database holds now, in a unit of work of its own."""
    async with sessions() as session:
        return list((await session.execute(statement)).all())


class _TagChecker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        assert tag in ALLOWED_TAGS, f"<{tag}> is not in the reply subset"
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open, f"</{tag}> closes nothing"
        assert self.open.pop() == tag, f"</{tag}> closes another tag"


def assert_well_formed(text: str) -> None:
    """Fail unless the markup uses only the allowed tags, each closed in order."""
    checker = _TagChecker()
    checker.feed(text)
    checker.close()
    assert not checker.open, f"unclosed: {checker.open}"


def buttons(reply: Reply | None) -> list[str]:
    """Return the actions of a reply's buttons, row by row."""
    assert reply is not None
    return [button.action for row in reply.buttons for button in row]


async def add_partner(session: AsyncSession, name: str = "WEIQIAO Germany GmbH") -> Partner:
    """Store a partner and return it."""
    partner = Partner(name=name, sector="Textil und Aluminium", joined=dt.date(2022, 10, 1))
    session.add(partner)
    await session.flush()
    return partner


async def add_tip(
    session: AsyncSession,
    partner: Partner,
    title: str,
    text: str = "",
    *,
    category: Category = Category.ENERGY,
    endorsements: int = 0,
    co2: float | None = None,
) -> Tip:
    """Store a tip and return it."""
    tip = Tip(
        partner_id=partner.id,
        title=title,
        text=text or title,
        category=category,
        endorsement_count=endorsements,
        co2_t_per_year=co2,
    )
    session.add(tip)
    await session.flush()
    return tip


async def add_meeting(
    session: AsyncSession,
    title: str,
    starts: dt.datetime,
    *,
    hours: float | None = 3,
    location: str | None = "IHK Düsseldorf",
    online_url: str | None = None,
    agenda: str | None = None,
) -> Meeting:
    """Store a meeting and return it."""
    meeting = Meeting(
        title=title,
        starts_at=starts,
        ends_at=None if hours is None else starts + dt.timedelta(hours=hours),
        location=location,
        online_url=online_url,
        agenda=agenda,
    )
    session.add(meeting)
    await session.flush()
    return meeting
