"""Reminders on Telegram: the real `klimabot run` reminds on time, once, across restarts."""

from __future__ import annotations

import datetime as dt
import signal
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.models import new_meeting_uid
from tests.bot.transports.test_telegram import COORDINATOR
from tests.bot_process import BotProcess, store_subscribers
from tests.telegram_fixtures import TOKEN
from tests.telegram_peer import TelegramPeer

MEMBER = 4711


@pytest.fixture
async def bot(tmp_path: Path, telegram_peer: TelegramPeer) -> AsyncIterator[BotProcess]:
    process = BotProcess(
        tmp_path,
        f"coordinators:\n  telegram: [{COORDINATOR}]\n"
        f"telegram:\n  base_url: {telegram_peer.base_url}\n"
        "reminders:\n  offsets: [1m]\n",
        {"KLIMABOT_TELEGRAM_TOKEN": TOKEN},
    )
    await process.load_demo()
    yield process
    assert await process.stop() == 0


def plan(bot: BotProcess, peer: TelegramPeer, due_in: list[float]) -> list[int]:
    """Store a subscribed member and meetings whose one-minute reminder is due so soon."""
    peer.started(peer.user(MEMBER, "Anna"))
    store_subscribers(bot.database, [MEMBER], "reminders")
    now = dt.datetime.now(dt.UTC)
    long_ago = (now - dt.timedelta(days=30)).isoformat(sep=" ")
    with sqlite3.connect(bot.database) as connection:
        return [
            connection.execute(
                "INSERT INTO meetings (title, starts_at, location, created_at, uid) "
                "VALUES (?, ?, 'IHK Düsseldorf', ?, ?) RETURNING id",
                (
                    f"Treffen {number}",
                    (now + dt.timedelta(seconds=60 + seconds)).isoformat(sep=" "),
                    long_ago,
                    new_meeting_uid(),
                ),
            ).fetchone()[0]
            for number, seconds in enumerate(due_in, start=1)
        ]


def reminders(peer: TelegramPeer) -> list[str]:
    return [m.text for m in peer.messages(MEMBER) if m.text.startswith("⏰ Erinnerung")]


async def test_reminders_arrive_on_time_once_whatever_the_restarts(
    bot: BotProcess, telegram_peer: TelegramPeer
) -> None:
    peer = telegram_peer
    first_id, second_id = plan(bot, peer, [10, 25])
    await bot.start()
    assert await bot.stop() == 0  # down before the first is due
    await bot.start()
    await peer.wait_until(lambda: len(reminders(peer)) >= 1, timeout=40)
    first = reminders(peer)[0]
    assert first.startswith("⏰ Erinnerung: „Treffen 1“ beginnt in 1 Minute")
    [message] = [m for m in peer.messages(MEMBER) if m.text == first]
    assert ("✅ Ja", f"rsvp:{first_id}:yes") in message.buttons[0]
    # Killed between the two, once the first is recorded as delivered (a kill while a send
    # is in flight may repeat that one message on Telegram, which has no idempotency key).
    await peer.wait_until(
        lambda: (
            bot.rows(f"SELECT state FROM deliveries WHERE meeting_id = {first_id}")
            == [("delivered",)]
        ),
        timeout=10,
    )
    assert bot.process is not None
    bot.process.send_signal(signal.SIGKILL)
    await bot.process.wait()
    await bot.start()
    await peer.wait_until(lambda: len(reminders(peer)) >= 2, timeout=40)
    assert [text.split("“")[0] for text in reminders(peer)] == [
        "⏰ Erinnerung: „Treffen 1",
        "⏰ Erinnerung: „Treffen 2",
    ]
    # One row per reminder, each recorded as delivered once it has arrived.
    await peer.wait_until(
        lambda: (
            bot.rows("SELECT meeting_id, state FROM deliveries ORDER BY meeting_id")
            == [(first_id, "delivered"), (second_id, "delivered")]
        ),
        timeout=10,
    )
    assert len(reminders(peer)) == 2
