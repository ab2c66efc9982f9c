"""The Telegram transport's HTTP backend: python-telegram-bot's Bot over aiohttp, real peers."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.typedefs import Handler
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from bot.transports.telegram_http import AiohttpRequest
from tests.telegram_fixtures import TOKEN
from tests.telegram_peer import TelegramPeer


@pytest.fixture
async def bot(telegram_peer: TelegramPeer) -> AsyncIterator[Bot]:
    """A python-telegram-bot Bot that talks to the peer through the transport's backend."""
    bot = Bot(
        TOKEN,
        base_url=telegram_peer.base_url,
        base_file_url=telegram_peer.base_file_url,
        request=AiohttpRequest(2),
        # Far shorter than a long poll: python-telegram-bot must add the poll's time to it.
        get_updates_request=AiohttpRequest(1, read_timeout=0.5),
    )
    async with bot:
        yield bot


async def test_html_and_a_keyboard_arrive_as_sent(bot: Bot, telegram_peer: TelegramPeer) -> None:
    anna = telegram_peer.user(4001, "Anna")
    await anna.send("/start")
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Zusagen #1", callback_data="rsvp:1")]])
    sent = await bot.send_message(
        anna.id, "<b>Klimapakt</b> &amp; Ümläute 🌍", ParseMode.HTML, reply_markup=keyboard
    )
    received = await telegram_peer.wait_for(anna.id)
    assert received.text == "Klimapakt & Ümläute 🌍"
    assert received.spans("bold") == ["Klimapakt"]
    assert received.buttons == [[("Zusagen #1", "rsvp:1")]]
    assert sent.message_id == received.message_id


async def test_a_file_arrives_with_its_name_type_and_bytes(
    bot: Bot, telegram_peer: TelegramPeer
) -> None:
    anna = telegram_peer.user(4001, "Anna")
    await anna.send("/start")
    data = b"BEGIN:VCALENDAR\r\n" + bytes(range(256)) * 40
    await bot.send_document(anna.id, data, filename="meetings.ics", caption="Kalender")
    received = await telegram_peer.wait_for(anna.id)
    assert received.document is not None
    assert received.document.filename == "meetings.ics"
    assert received.document.data == data
    assert received.text == "Kalender"


async def test_the_peer_s_refusals_become_telegram_errors(
    bot: Bot, telegram_peer: TelegramPeer
) -> None:
    anna = telegram_peer.user(4001, "Anna")
    await anna.send("/start")
    with pytest.raises(BadRequest, match="parse entities"):
        await bot.send_message(anna.id, "<b>offen", ParseMode.HTML)
    telegram_peer.block(anna.id)
    with pytest.raises(Forbidden):
        await bot.send_message(anna.id, "Hallo")
    telegram_peer.unblock(anna.id)
    telegram_peer.inject_flood(retry_after=3)
    with pytest.raises(RetryAfter, match="3"):
        await bot.send_message(anna.id, "Hallo")


async def test_a_long_poll_waits_longer_than_the_read_timeout(
    bot: Bot, telegram_peer: TelegramPeer
) -> None:
    anna = telegram_peer.user(4001, "Anna")

    async def write_later() -> None:
        await asyncio.sleep(1.5)
        await anna.send("/meetings")

    writer = asyncio.create_task(write_later())
    updates = await bot.get_updates(timeout=10)
    await writer
    assert [update.message.text for update in updates if update.message] == ["/meetings"]


@contextlib.asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[str]:
    """Serve every path with handler on a free port of 127.0.0.1; yield the base URL."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def silent_server() -> AsyncIterator[str]:
    """A server on 127.0.0.1 that accepts requests and answers none for a minute."""

    async def hang(_request: web.Request) -> web.Response:
        await asyncio.sleep(60)
        return web.Response()

    async with serving(hang) as url:
        yield f"{url}/bot"


async def test_a_server_that_does_not_answer_times_out(silent_server: str) -> None:
    request = AiohttpRequest(1, read_timeout=0.3)
    await request.initialize()
    bot = Bot(TOKEN, base_url=silent_server, request=request)
    try:
        with pytest.raises(TimedOut):
            await bot.send_message(4001, "Hallo")
    finally:
        await request.shutdown()


async def test_a_request_that_finds_no_free_connection_is_not_sent(silent_server: str) -> None:
    request = AiohttpRequest(1, read_timeout=2.0, pool_timeout=0.2)
    await request.initialize()
    bot = Bot(TOKEN, base_url=silent_server, request=request)
    try:
        first = asyncio.create_task(bot.send_message(4001, "eins"))
        await asyncio.sleep(0.1)
        with pytest.raises(TimedOut, match="not sent"):
            await bot.send_message(4001, "zwei")
        with pytest.raises(TimedOut):
            await first
    finally:
        await request.shutdown()


async def test_no_server_at_all_is_a_network_error() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    request = AiohttpRequest(1)
    await request.initialize()
    bot = Bot(TOKEN, base_url=f"http://127.0.0.1:{closed_port}/bot", request=request)
    try:
        with pytest.raises(NetworkError) as error:
            await bot.send_message(4001, "Hallo")
        assert not isinstance(error.value, TimedOut)
    finally:
        await request.shutdown()


@pytest.fixture
async def forward_proxy(telegram_peer: TelegramPeer) -> AsyncIterator[tuple[str, list[str]]]:
    """An HTTP proxy on 127.0.0.1 that forwards to wherever it is asked, and notes where."""
    seen: list[str] = []
    client = aiohttp.ClientSession()

    async def forward(request: web.Request) -> web.Response:
        seen.append(str(request.url))
        body = await request.read()
        async with client.request(
            request.method, request.url, data=body, headers={"Content-Type": request.content_type}
        ) as answer:
            return web.Response(
                status=answer.status, body=await answer.read(), content_type="application/json"
            )

    async with serving(forward) as url:
        yield url, seen
    await client.close()


async def test_the_proxy_the_environment_names_is_used(
    telegram_peer: TelegramPeer,
    forward_proxy: tuple[str, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy, seen = forward_proxy
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    request = AiohttpRequest(1)
    await request.initialize()
    bot = Bot(TOKEN, base_url=telegram_peer.base_url, request=request)
    try:
        me = await bot.get_me()
    finally:
        await request.shutdown()
    assert me.username == telegram_peer.bot_username
    assert seen == [f"{telegram_peer.base_url}{TOKEN}/getMe"]
