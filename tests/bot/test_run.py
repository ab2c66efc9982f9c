"""`klimabot run` when a chat server is down: it says so once, serves the rest, and comes back."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.bot_process import READY, BotProcess
from tests.matrix_fixtures import MakeAccount, MakeMember
from tests.synapse import Synapse
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
    assert len(lines_with(bot, "does not answer")) == 1, "\n".join(bot.log)
    assert lines_with(bot, "answers again")
    assert not lines_with(bot, "Traceback"), "\n".join(bot.log)
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
    assert len(lines_with(bot, "does not answer")) == 1, "\n".join(bot.log)
    assert not lines_with(bot, "Traceback"), "\n".join(bot.log)


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
    assert len(lines_with(bot, "does not answer")) == 1, "\n".join(bot.log)
    assert not lines_with(bot, READY)
    assert not lines_with(bot, "Traceback"), "\n".join(bot.log)


class Cable:
    """A TCP connection to a server on 127.0.0.1 that a test can cut and mend."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def mend(self) -> None:
        """Accept connections (again on the same port) and pass them on to the server."""
        self._server = await asyncio.start_server(
            self._connect, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Refuse new connections and break the open ones."""
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        for pipe in self._pipes:
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        await self._server.wait_closed()

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target)
        self._writers |= {writer, upstream_writer}
        for source, sink in ((reader, upstream_writer), (upstream_reader, writer)):
            pipe = asyncio.create_task(self._pipe(source, sink))
            self._pipes.add(pipe)
            pipe.add_done_callback(self._pipes.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except ConnectionError:
            pass
        finally:
            sink.transport.abort()
            self._writers.discard(sink)


async def test_a_homeserver_that_goes_away_and_comes_back_is_served_again(
    tmp_path: Path,
    synapse: Synapse,
    make_matrix_account: MakeAccount,
    make_matrix_member: MakeMember,
) -> None:
    account = await make_matrix_account("klimabot")
    anna = await make_matrix_member("anna")
    cable = Cable(synapse.port)  # between the bot and the homeserver; the member is not cut off
    await cable.mend()
    bot = BotProcess(
        tmp_path,
        f'matrix:\n  homeserver: {cable.url}\n  user_id: "{account.user_id}"\n'
        f"  data_dir: {tmp_path / 'matrix-data'}\n",
        {"KLIMABOT_MATRIX_PASSWORD": account.password},
    )
    await bot.start()
    try:
        room = await anna.create_dm(account.user_id)
        await anna.wait_joined(room, account.user_id, within=20)
        greeting = await anna.next_message(room, sender=account.user_id, within=20)
        assert greeting.body.startswith("Willkommen beim Klimabot")

        await cable.cut()
        await logged(bot, f"Matrix: {cable.url} does not answer")
        await anna.send_text(room, "!help")  # sent while the bot cannot see it
        await cable.mend()
        answer = await anna.next_message(room, sender=account.user_id, within=60)
        assert answer.body.startswith("Was ich kann")
        assert answer.encrypted
        await logged(bot, f"Matrix: {cable.url} answers again")
    finally:
        assert await bot.stop() == 0
        await cable.cut()
    assert len(lines_with(bot, "does not answer")) == 1, "\n".join(bot.log)
    assert not lines_with(bot, "Traceback"), "\n".join(bot.log)


async def test_sigterm_while_the_bot_api_is_away_ends_at_once(
    tmp_path: Path, telegram_peer: TelegramPeer
) -> None:
    peer = telegram_peer
    port = int(peer.url.rsplit(":", 1)[1])
    bot = BotProcess(tmp_path, telegram_section(port), {"KLIMABOT_TELEGRAM_TOKEN": TOKEN})
    await bot.start()
    await peer.stop()
    await logged(bot, f"Telegram: http://127.0.0.1:{port} does not answer")
    assert await bot.stop() == 0
    assert not lines_with(bot, "Traceback"), "\n".join(bot.log)


async def test_a_refused_token_ends_the_run_with_one_line(
    tmp_path: Path, telegram_peer: TelegramPeer
) -> None:
    port = int(telegram_peer.url.rsplit(":", 1)[1])
    bot = BotProcess(tmp_path, telegram_section(port), {"KLIMABOT_TELEGRAM_TOKEN": "999:WRONG"})
    with pytest.raises(AssertionError, match="did not start"):
        await bot.start()
    assert await bot.stop() == 1
    assert bot.log[-1] == (
        "klimabot: Telegram lehnt das Token des Bots ab (KLIMABOT_TELEGRAM_TOKEN)."
    ), "\n".join(bot.log)
    assert not lines_with(bot, "Traceback"), "\n".join(bot.log)
    assert not lines_with(bot, "999:WRONG"), "\n".join(bot.log)


async def test_a_refused_matrix_login_ends_the_run_with_one_line(
    tmp_path: Path, synapse: Synapse, make_matrix_account: MakeAccount
) -> None:
    account = await make_matrix_account("klimabot")
    bot = BotProcess(
        tmp_path,
        f'matrix:\n  homeserver: {synapse.url}\n  user_id: "{account.user_id}"\n'
        f"  data_dir: {tmp_path / 'matrix-data'}\n",
        {"KLIMABOT_MATRIX_PASSWORD": "not the password"},
    )
    with pytest.raises(AssertionError, match="did not start"):
        await bot.start()
    assert await bot.stop() == 1
    assert bot.log[-1].startswith(
        f"klimabot: Der Homeserver {synapse.url} lehnt die Anmeldung des Bots ab:"
    ), "\n".join(bot.log)
    assert not lines_with(bot, "Traceback"), "\n".join(bot.log)


async def test_sigterm_while_waiting_for_the_bot_api_at_start_ends_at_once(
    tmp_path: Path, starting: list[asyncio.Task[None]]
) -> None:
    port = free_port()
    bot = BotProcess(tmp_path, telegram_section(port), {"KLIMABOT_TELEGRAM_TOKEN": TOKEN})
    starting.append(asyncio.create_task(bot.start()))
    await logged(bot, f"Telegram: http://127.0.0.1:{port} does not answer")
    assert await bot.stop() == 0
    assert not lines_with(bot, "Traceback"), "\n".join(bot.log)
