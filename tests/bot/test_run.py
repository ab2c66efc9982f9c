"""`klimabot run` when a chat server is down: it says so once, serves the rest, and comes back."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.bot_process import READY, BotProcess
from tests.telegram_fixtures import TOKEN
from tests.telegram_peer import TelegramPeer


def free_port() -> int:
    """Return a port of 127.0.0.1 that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def telegram_section(port: int) -> str:
    return f"telegram:\n  base_url: http://127.0.0.1:{port}/bot\n"


async def logged(bot: BotProcess, text: str, within: float = 30) -> None:
    """Wait until the process has logged a line containing ``text``."""
    for _ in range(int(within / 0.05)):
        if any(text in line for line in bot.log):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never logged {text!r}:\n" + "\n".join(bot.log))


def lines_with(bot: BotProcess, text: str) -> list[str]:
    return [line for line in bot.log if text in line]


async def answer(peer: TelegramPeer, user_id: int, text: str) -> str:
    """Send a line as a user and return the text of the bot's answer."""
    sent = await peer.user(user_id, "Anna", language_code="de").send(text)
    return (await peer.wait_for(int(sent["chat"]["id"]), timeout=30)).text


@pytest.fixture
async def starting() -> AsyncIterator[list[asyncio.Task[None]]]:
    """Tasks of `BotProcess.start` that a test leaves waiting; cancelled at its end."""
    tasks: list[asyncio.Task[None]] = []
    yield tasks
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_bot_api_that_answers_only_later_is_served_then(
    tmp_path: Path, starting: list[asyncio.Task[None]]
) -> None:
    port = free_port()
    bot = BotProcess(tmp_path, telegram_section(port), {"KLIMABOT_TELEGRAM_TOKEN": TOKEN})
    starting.append(asyncio.create_task(bot.start()))
    await logged(bot, f"Telegram: http://127.0.0.1:{port} does not answer")
    async with TelegramPeer(TOKEN, "KlimaTestBot") as peer:
        await peer.stop()
        await peer.serve(port)
        await starting[0]  # the process says it is running once Telegram is served
        assert (await answer(peer, 1001, "/start")).startswith("Willkommen beim Klimabot")
        assert await bot.stop() == 0
    assert len(lines_with(bot, "does not answer")) == 1
    assert lines_with(bot, "answers again")
    assert not lines_with(bot, "Traceback")
    assert not lines_with(bot, TOKEN)


async def test_a_bot_api_that_goes_away_and_comes_back_is_served_again(
    tmp_path: Path, telegram_peer: TelegramPeer
) -> None:
    peer = telegram_peer
    port = int(peer.url.rsplit(":", 1)[1])
    bot = BotProcess(tmp_path, telegram_section(port), {"KLIMABOT_TELEGRAM_TOKEN": TOKEN})
    await bot.start()
    assert (await answer(peer, 1001, "/start")).startswith("Willkommen beim Klimabot")
    await peer.stop()
    await logged(bot, f"Telegram: http://127.0.0.1:{port} does not answer")
    await peer.serve(port)
    assert (await answer(peer, 1001, "/help")).startswith("Was ich kann")
    await logged(bot, f"Telegram: http://127.0.0.1:{port} answers again")
    assert await bot.stop() == 0
    assert len(lines_with(bot, "does not answer")) == 1
    assert not lines_with(bot, "Traceback")


async def test_telegram_is_served_while_the_homeserver_is_unreachable(
    tmp_path: Path, telegram_peer: TelegramPeer, starting: list[asyncio.Task[None]]
) -> None:
    peer = telegram_peer
    closed = free_port()
    sections = telegram_section(int(peer.url.rsplit(":", 1)[1])) + (
        f"matrix:\n  homeserver: http://127.0.0.1:{closed}\n"
        f'  user_id: "@klimabot:localhost"\n  data_dir: {tmp_path / "matrix-data"}\n'
    )
    bot = BotProcess(
        tmp_path,
        sections,
        {"KLIMABOT_TELEGRAM_TOKEN": TOKEN, "KLIMABOT_MATRIX_PASSWORD": "not-needed-yet"},
    )
    starting.append(asyncio.create_task(bot.start()))
    await logged(bot, "Telegram: serving as @KlimaTestBot")
    await logged(bot, f"Matrix: http://127.0.0.1:{closed} does not answer")
    assert (await answer(peer, 1001, "/start")).startswith("Willkommen beim Klimabot")
    assert (await answer(peer, 1001, "/help")).startswith("Was ich kann")
    # SIGTERM ends the waiting for the homeserver at once, with a clean exit.
    assert await bot.stop() == 0
    assert len(lines_with(bot, "does not answer")) == 1
    assert not lines_with(bot, READY)
    assert not lines_with(bot, "Traceback")
