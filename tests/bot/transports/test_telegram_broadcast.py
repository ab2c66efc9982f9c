"""Announcements on Telegram: the real `klimabot run` against the strict Bot API peer."""

from __future__ import annotations

import random
import signal
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.bot.transports.test_telegram import COORDINATOR, running_bot
from tests.bot_process import BotProcess, store_subscribers
from tests.telegram_peer import BotMessage, TelegramPeer

HEADING = "📣 Mitteilung der Koordination · Düsseldorfer Klimapakt"
FIRST = 10_000


def subscribers(bot: BotProcess, peer: TelegramPeer, count: int) -> list[int]:
    """Store members who started the bot earlier and subscribed to announcements."""
    ids = list(range(FIRST, FIRST + count))
    for user_id in ids:
        peer.started(peer.user(user_id, f"Mitglied {user_id}"))
    store_subscribers(bot.database, ids, "announcements")
    return ids


def received(peer: TelegramPeer, ids: list[int]) -> Counter[int]:
    """Count the announcements each member got."""
    return Counter(
        user_id
        for user_id in ids
        for message in peer.messages(user_id)
        if message.text.startswith(HEADING)
    )


async def announce(peer: TelegramPeer, text: str) -> BotMessage:
    """Write the announcement as the coordinator, press Send; return the progress message."""
    coordinator = peer.user(COORDINATOR, "Koordination")
    await coordinator.send(f"/announce {text}")
    preview = await peer.wait_for(COORDINATOR, timeout=15)
    assert preview.text.startswith("Vorschau: So sehen es die Mitglieder.")
    await coordinator.press(preview.raw, "📣 Senden")
    return await peer.wait_for(COORDINATOR, lambda m: "wird gesendet" in m.text, timeout=15)


def report(peer: TelegramPeer, progress: BotMessage) -> str:
    """Return the progress message as the coordinator sees it now."""
    [message] = [m for m in peer.messages(COORDINATOR) if m.message_id == progress.message_id]
    return message.text


@pytest.fixture
async def bot(tmp_path: Path, telegram_peer: TelegramPeer) -> AsyncIterator[BotProcess]:
    process = await running_bot(tmp_path, telegram_peer)
    yield process
    assert await process.stop() == 0


async def test_a_broadcast_reaches_everyone_once_within_the_limits(
    bot: BotProcess, telegram_peer: TelegramPeer
) -> None:
    peer = telegram_peer
    ids = subscribers(bot, peer, 500)
    blocked = ids[::50]
    for user_id in blocked:
        peer.block(user_id)
    progress = await announce(peer, "Netzwerktreffen am <b>29. März</b>: bitte anmelden!")
    await peer.wait_until(lambda: "Zustellbericht" in report(peer, progress), timeout=60)

    reached = [user_id for user_id in ids if user_id not in blocked]
    assert received(peer, ids) == Counter(dict.fromkeys(reached, 1))
    assert report(peer, progress) == (
        "Mitteilung gesendet: Zustellbericht\nTelegram: zugestellt 490, nicht erreichbar 10"
    )
    assert peer.max_rate(None, 1.0) <= 30
    assert max(peer.max_rate(user_id, 1.0) for user_id in reached) == 1
    assert peer.violations() == []
    states = bot.rows("SELECT state, count(*) FROM deliveries GROUP BY state ORDER BY state")
    assert states == [("delivered", 490), ("unreachable", 10)]
    unreachable = bot.rows("SELECT user_id FROM identities WHERE unreachable_since IS NOT NULL")
    assert sorted(int(str(user_id)) for (user_id,) in unreachable) == blocked


async def test_a_429_pauses_the_broadcast_also_across_a_restart(
    bot: BotProcess, telegram_peer: TelegramPeer
) -> None:
    peer = telegram_peer
    ids = subscribers(bot, peer, 150)
    await announce(peer, "Bitte um Einsparberichte")
    await peer.wait_until(lambda: sum(received(peer, ids).values()) >= 5, timeout=30)
    peer.inject_flood(retry_after=4)
    await peer.wait_until(lambda: peer.flood_active, timeout=30)
    # The pause is stored before the bot stops, and the restarted bot keeps to it.
    await peer.wait_until(lambda: bool(bot.rows("SELECT until FROM platform_pauses")), 10)
    assert await bot.stop() == 0
    await bot.start()
    await peer.wait_until(lambda: sum(received(peer, ids).values()) == 150, timeout=60)
    assert peer.violations() == []
    assert received(peer, ids) == Counter(dict.fromkeys(ids, 1))


async def test_killed_at_random_moments_everyone_still_gets_it_and_few_twice(
    bot: BotProcess, telegram_peer: TelegramPeer
) -> None:
    peer = telegram_peer
    ids = subscribers(bot, peer, 200)
    await announce(peer, "Neue Partnerin im Netzwerk")
    kills = 0
    for _round in range(3):
        sent = sum(received(peer, ids).values())
        target = sent + random.randint(10, 40)

        def reached(target: int = target) -> bool:
            return sum(received(peer, ids).values()) >= target

        await peer.wait_until(reached, 60)
        assert bot.process is not None
        bot.process.send_signal(signal.SIGKILL)
        await bot.process.wait()
        kills += 1
        await bot.start()
    await peer.wait_until(
        lambda: all(received(peer, ids)[user_id] >= 1 for user_id in ids), timeout=90
    )
    counts = received(peer, ids)
    twice = sum(count - 1 for count in counts.values())
    # Telegram has no idempotency key: at most the sends in flight at each kill repeat.
    assert twice <= 16 * kills
    # Every row ends delivered: none lost, none left in flight.
    await peer.wait_until(
        lambda: bot.rows("SELECT count(*) FROM deliveries WHERE state != 'delivered'")[0][0] == 0,
        timeout=30,
    )
    assert peer.max_rate(None, 1.0) <= 30


async def test_sigterm_mid_broadcast_loses_and_repeats_nothing(
    bot: BotProcess, telegram_peer: TelegramPeer
) -> None:
    peer = telegram_peer
    ids = subscribers(bot, peer, 120)
    await announce(peer, "Sommerfest")
    await peer.wait_until(lambda: sum(received(peer, ids).values()) >= 30, timeout=30)
    assert await bot.stop() == 0
    await bot.start()
    await peer.wait_until(lambda: sum(received(peer, ids).values()) >= 120, timeout=60)
    assert received(peer, ids) == Counter(dict.fromkeys(ids, 1))


async def test_a_members_command_is_answered_while_a_broadcast_runs(
    bot: BotProcess, telegram_peer: TelegramPeer
) -> None:
    peer = telegram_peer
    ids = subscribers(bot, peer, 300)
    await announce(peer, "Programm des Netzwerktreffens")
    await peer.wait_until(lambda: sum(received(peer, ids).values()) >= 20, timeout=30)
    anna = peer.user(4711, "Anna")
    await anna.send("/meetings")
    answer = await peer.wait_for(anna.id, timeout=15)
    assert answer.text.startswith("Nächste Treffen")
    # The reply did not wait for the broadcast: most of it was still to come.
    assert sum(received(peer, ids).values()) < 200
