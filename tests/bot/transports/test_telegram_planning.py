"""Planning on Telegram: the real `klimabot run` tells a cancellation to those who attend."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.bot.transports.test_telegram import COORDINATOR, running_bot
from tests.bot_process import BotProcess
from tests.telegram_peer import PeerUser, TelegramPeer

ATTENDING = 4_711
DECLINED = 4_712


@pytest.fixture
async def bot(tmp_path: Path, telegram_peer: TelegramPeer) -> AsyncIterator[BotProcess]:
    process = await running_bot(tmp_path, telegram_peer)
    yield process
    assert await process.stop() == 0


async def command(peer: TelegramPeer, user: PeerUser, line: str, expect: str) -> str:
    """Send a command as a user and return the bot's answer, which must contain ``expect``."""
    await user.send(line)
    answer = await peer.wait_for(user.id, lambda m: expect in m.text, timeout=15)
    return answer.text


async def test_a_cancellation_reaches_the_yes_member_and_not_the_no_member(
    bot: BotProcess, telegram_peer: TelegramPeer
) -> None:
    peer = telegram_peer
    coordinator = peer.user(COORDINATOR, "Koordination")
    day = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).strftime("%d.%m.%Y")
    await coordinator.send(f"/neuestreffen Sondertreffen | {day} 14:00-16:00 | Rathaus")
    preview = await peer.wait_for(COORDINATOR, timeout=15)
    assert preview.text.startswith("Vorschau: So sehen es die Mitglieder.\n\nSondertreffen #")
    await coordinator.press(preview.raw, "💾 Speichern")
    saved = await peer.wait_for(COORDINATOR, lambda m: "Gespeichert als" in m.text, timeout=15)
    found = re.search(r"Gespeichert als #(\d+)", saved.text)
    assert found is not None
    meeting_id = int(found.group(1))

    attending = peer.user(ATTENDING, "Anna")
    declined = peer.user(DECLINED, "Bernd")
    await command(peer, attending, f"/rsvp {meeting_id} yes", "Danke! Sie nehmen")
    await command(peer, declined, f"/rsvp {meeting_id} no", "Notiert")

    await coordinator.send(f"/treffenabsagen {meeting_id}")
    question = await peer.wait_for(
        COORDINATOR, lambda m: m.text.startswith("Dieses Treffen absagen?"), timeout=15
    )
    assert question.text.endswith("1 Mitglied, das zu- oder vielleicht zugesagt hat, erfährt es.")
    await coordinator.press(question.raw, "❌ Treffen absagen")
    await peer.wait_for(COORDINATOR, lambda m: m.text.startswith("❌ Abgesagt. 1 Mitglied"), 15)

    notice = await peer.wait_for(
        ATTENDING, lambda m: m.text.startswith("❌ Abgesagt: Sondertreffen"), timeout=15
    )
    assert f"Sondertreffen #{meeting_id}" in notice.text
    # The barrier: the declined member's later command is answered, the notice's only row
    # was delivered, and the peer has nothing else for them.
    await command(peer, declined, "/meetings", "Treffen")
    assert bot.rows("SELECT member_id IS NOT NULL, state FROM deliveries") == [(1, "delivered")]
    texts = [message.text for message in peer.messages(DECLINED)]
    assert len(texts) == 2
    assert not any("Abgesagt" in text for text in texts)
    assert peer.violations() == []
