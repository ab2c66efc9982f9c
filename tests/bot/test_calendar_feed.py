"""The private calendar feeds over real HTTP on loopback, in the test and in `klimabot run`."""

from __future__ import annotations

import datetime as dt
import logging
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from icalendar import Calendar, Event
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import build_dispatcher
from bot.calendar_feed import CalendarFeed
from bot.config import Config, ConfigError, Secrets, parse_config, setup_problems
from bot.dispatch import Dispatcher
from storage.models import Meeting, Member
from tests.bot.transports.test_telegram import ask, free_port
from tests.bot_process import BotProcess
from tests.helpers import NOW, Chat, Sessions, add_meeting, stored
from tests.telegram_fixtures import TOKEN
from tests.telegram_peer import TelegramPeer


def feed_link(text: str) -> str:
    [address] = re.findall(r"https?://\S+\.ics", text)
    return str(address)


def feed_events(body: bytes) -> list[Event]:
    return Calendar.from_ical(body).events


class Server:
    """A feed server on loopback, with a dispatcher that gives out its addresses."""

    def __init__(self, dispatcher: Dispatcher, feed: CalendarFeed, base: str) -> None:
        self.dispatcher = dispatcher
        self.feed = feed
        self.base = base  # http://127.0.0.1:PORT

    async def address(self, user: str) -> str:
        """Return the feed address the person gets with /calendar."""
        return feed_link(await Chat(self.dispatcher, user).send("/calendar"))


async def serve(sessions: Sessions, readers: Sessions, path: str = "") -> AsyncIterator[Server]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = Config.model_validate({"calendar": {"public_url": base + path, "port": port}})
    dispatcher = build_dispatcher(config, sessions, readers=readers)
    dispatcher.clock = lambda: NOW
    section = config.calendar
    assert section.feed_url is not None
    feed = CalendarFeed(dispatcher, section.feed_url, section.listen, section.port)
    await feed.start()
    try:
        yield Server(dispatcher, feed, base)
    finally:
        await feed.stop()
        await dispatcher.settled()


@pytest.fixture
async def server(sessions: Sessions, readers: Sessions) -> AsyncIterator[Server]:
    async for running in serve(sessions, readers):
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
async def meetings(session: AsyncSession) -> dict[str, Meeting]:
    found = {
        "long ago": await add_meeting(session, "Vor 40 Tagen", NOW - dt.timedelta(days=40)),
        "recent": await add_meeting(session, "Vor 10 Tagen", NOW - dt.timedelta(days=10)),
        "ahead": await add_meeting(session, "Nächste Woche", NOW + dt.timedelta(days=7)),
        "cancelled": await add_meeting(session, "Fällt aus", NOW + dt.timedelta(days=14)),
    }
    found["cancelled"].cancelled_at = NOW
    await session.commit()
    return found


async def test_the_feed_holds_the_members_meetings(
    server: Server, http: aiohttp.ClientSession, meetings: dict[str, Meeting]
) -> None:
    address = await server.address("anna")
    async with http.get(address) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
        assert response.headers["Cache-Control"] == "private, no-cache"
        etag = response.headers["ETag"]
        body = await response.read()
    calendar = Calendar.from_ical(body)
    assert "method" not in calendar  # a feed, not a message
    assert calendar["refresh-interval"].to_ical() == b"PT1H"
    recent, ahead, cancelled = feed_events(body)
    assert [e["uid"] for e in (recent, ahead, cancelled)] == [
        meetings[key].uid for key in ("recent", "ahead", "cancelled")
    ]
    assert (cancelled["status"], cancelled["sequence"]) == ("CANCELLED", 1)
    assert cancelled.walk("VALARM") == []
    [alarm] = ahead.walk("VALARM")
    assert alarm.decoded("trigger") == -dt.timedelta(days=7)
    assert ahead.decoded("dtstamp") == ahead.decoded("last-modified")

    # Unchanged, it is the same again; an app that has it is told so in a few bytes.
    async with http.get(address) as again:
        assert (again.headers["ETag"], await again.read()) == (etag, body)
    async with http.get(address, headers={"If-None-Match": etag}) as unchanged:
        assert unchanged.status == 304
        assert await unchanged.read() == b""


async def test_the_feed_follows_a_change(
    server: Server,
    http: aiohttp.ClientSession,
    meetings: dict[str, Meeting],
    sessions: Sessions,
) -> None:
    address = await server.address("anna")
    async with http.get(address) as response:
        etag = response.headers["ETag"]
    async with sessions() as session:
        meeting = await session.get(Meeting, meetings["ahead"].id)
        assert meeting is not None
        meeting.cancelled_at = NOW
        await session.commit()
    async with http.get(address, headers={"If-None-Match": etag}) as response:
        assert response.status == 200
        _recent, ahead, _cancelled = feed_events(await response.read())
    assert (ahead["uid"], ahead["status"], ahead["sequence"]) == (
        meetings["ahead"].uid,
        "CANCELLED",
        1,
    )


async def test_head_answers_like_get_without_the_body(
    server: Server, http: aiohttp.ClientSession, meetings: dict[str, Meeting]
) -> None:
    address = await server.address("anna")
    async with http.get(address) as got:
        etag = got.headers["ETag"]
    async with http.head(address) as response:
        assert response.status == 200
        assert response.headers["ETag"] == etag
        assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
        assert await response.read() == b""


async def test_the_feed_speaks_the_members_language_and_keeps_their_offset(
    server: Server, http: aiohttp.ClientSession, meetings: dict[str, Meeting]
) -> None:
    ben = Chat(server.dispatcher, "ben")
    await ben.send("/language en")
    await ben.send("/reminders 2h")
    address = feed_link(await ben.send("/calendar"))
    async with http.get(address) as response:
        _recent, ahead, cancelled = feed_events(await response.read())
    assert cancelled["summary"] == "Cancelled: Fällt aus"
    [alarm] = ahead.walk("VALARM")
    assert alarm.decoded("trigger") == -dt.timedelta(hours=2)
    await ben.send("/reminders off")
    async with http.get(address) as response:
        assert all(e.walk("VALARM") == [] for e in feed_events(await response.read()))


async def test_without_the_right_token_everything_is_404_alike(
    server: Server, http: aiohttp.ClientSession, meetings: dict[str, Meeting], sessions: Sessions
) -> None:
    address = await server.address("anna")
    [(token,)] = await stored(sessions, select(Member.calendar_token))
    base = server.base
    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
    tries = [
        ("GET", f"{base}/calendar/"),
        ("GET", f"{base}/calendar/.ics"),
        ("GET", f"{base}/calendar/{wrong}.ics"),
        ("GET", f"{base}/calendar/{token[:12]}.ics"),  # the part that finds the member
        ("GET", f"{base}/calendar/{token}"),
        ("GET", f"{base}/calendar/{token}x.ics"),
        ("GET", f"{base}/calendar/{token}.ics/x"),
        ("GET", f"{base}/{token}.ics"),
        ("GET", f"{base}/"),
        ("POST", address),
        ("PUT", address),
        ("DELETE", address),
        ("HEAD", f"{base}/calendar/{wrong}.ics"),
    ]
    answers = set()
    for method, url in tries:
        async with http.request(method, url) as response:
            assert response.status == 404, (method, url)
            answers.add((await response.read(), response.headers.get("Content-Type")))
    assert answers == {  # HEAD has no body
        (b"404: Not Found", "text/plain; charset=utf-8"),
        (b"", "text/plain; charset=utf-8"),
    }
    async with http.get(address) as response:
        assert response.status == 200


async def test_reset_turns_the_old_address_off(
    server: Server, http: aiohttp.ClientSession, meetings: dict[str, Meeting]
) -> None:
    anna = Chat(server.dispatcher, "anna")
    old = feed_link(await anna.send("/calendar"))
    new = feed_link(await anna.send("/calendar reset"))
    assert new != old
    async with http.get(old) as response:
        assert response.status == 404
    async with http.get(new) as response:
        assert response.status == 200
        assert len(feed_events(await response.read())) == 3


async def test_the_token_never_reaches_the_log(
    server: Server,
    http: aiohttp.ClientSession,
    meetings: dict[str, Meeting],
    sessions: Sessions,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The level the bot runs at, and everything the feed and its web server say.
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="bot")
    caplog.set_level(logging.DEBUG, logger="aiohttp")
    address = await server.address("anna")
    [(token,)] = await stored(sessions, select(Member.calendar_token))
    for url in (address, address.replace(".ics", "x.ics"), address + "?x=1"):
        async with http.get(url) as response:
            await response.read()
    async with http.post(address) as response:
        await response.read()
    assert token[:12] not in caplog.text


async def test_the_public_urls_path_is_served(
    sessions: Sessions, readers: Sessions, http: aiohttp.ClientSession
) -> None:
    async for server in serve(sessions, readers, "/klima/"):
        address = await server.address("anna")
        assert address.startswith(f"{server.base}/klima/calendar/")
        async with http.get(address) as response:
            assert response.status == 200
        async with http.get(address.replace("/klima", "")) as response:
            assert response.status == 404


def test_the_feed_cannot_share_the_webhooks_port() -> None:
    text = (
        "telegram:\n  mode: webhook\n  webhook_url: https://bot.example.org/hook\n"
        "  port: 8443\ncalendar:\n  public_url: https://bot.example.org\n  port: 8443\n"
    )
    secrets = Secrets(telegram_token=TOKEN, telegram_webhook_secret="s3cr3t-webhook")
    assert setup_problems(parse_config(text, Path("config.yaml")), secrets) == [
        "calendar.port 8443 ist der Port, auf dem der Telegram-Webhook lauscht: "
        "Wählen Sie einen anderen."
    ]
    other = parse_config(text.replace("port: 8443\n", "port: 8444\n", 1), Path("config.yaml"))
    assert setup_problems(other, secrets) == []
    # Polling needs no port of its own.
    polling = parse_config(text.replace("mode: webhook", "mode: polling"), Path("config.yaml"))
    assert setup_problems(polling, secrets) == []


def test_a_wrong_default_duration_names_the_key() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config("meetings:\n  default_duration: zwei Stunden\n", Path("config.yaml"))
    [problem] = raised.value.problems
    assert problem.startswith("meetings.default_duration: 'zwei Stunden' ist nicht erlaubt")


async def test_klimabot_run_serves_the_feed(tmp_path: Path, telegram_peer: TelegramPeer) -> None:
    port = free_port()
    bot = BotProcess(
        tmp_path,
        f"telegram:\n  base_url: {telegram_peer.base_url}\n"
        f"calendar:\n  public_url: http://127.0.0.1:{port}\n  port: {port}\n",
        {"KLIMABOT_TELEGRAM_TOKEN": TOKEN},
    )
    await bot.load_demo()
    await bot.start()
    try:
        anna = telegram_peer.user(1001, "Anna", language_code="de")
        reply = await ask(telegram_peer, anna, "/calendar")
        document = (await telegram_peer.wait_for(anna.id)).document
        assert document is not None
        address = feed_link(reply.text)
        [(token,)] = bot.rows("SELECT calendar_token FROM members")
        assert address == f"http://127.0.0.1:{port}/calendar/{token}.ics"
        async with aiohttp.ClientSession() as http:
            async with http.get(address) as response:
                assert response.status == 200
                feed = feed_events(await response.read())
            shared = {str(e["uid"]) for e in feed_events(document.data)}
            assert shared <= {str(e["uid"]) for e in feed}
            renewed = feed_link((await ask(telegram_peer, anna, "/kalender neu")).text)
            async with http.get(address) as response:
                assert response.status == 404
            async with http.get(renewed) as response:
                assert response.status == 200
    finally:
        assert await bot.stop() == 0
    assert not any(str(token)[:12] in line for line in bot.log)
    assert any(f"calendar feeds served on 127.0.0.1:{port}" in line for line in bot.log)


async def test_klimabot_run_says_when_the_feeds_port_is_taken(
    tmp_path: Path, telegram_peer: TelegramPeer
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        bot = BotProcess(
            tmp_path,
            f"telegram:\n  base_url: {telegram_peer.base_url}\n"
            f"calendar:\n  public_url: http://127.0.0.1:{port}\n  port: {port}\n",
            {"KLIMABOT_TELEGRAM_TOKEN": TOKEN},
        )
        with pytest.raises(AssertionError, match="did not start"):
            await bot.start()
        assert await bot.stop() == 1
    assert bot.log[-1].startswith(
        f"klimabot: Die Kalender-Feeds können nicht auf 127.0.0.1:{port} lauschen: "
    )
    assert not any("Traceback" in line for line in bot.log)
