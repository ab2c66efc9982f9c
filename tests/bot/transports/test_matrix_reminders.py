"""Reminders on Matrix: the real `klimabot run` reminds a member on Synapse; a reaction answers."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.models import new_meeting_uid
from tests.bot.transports.test_matrix import direct_chat
from tests.bot_process import BotProcess
from tests.matrix_fixtures import MakeMember
from tests.synapse import MatrixAccount, Synapse

DUE_IN = 12  # seconds from the meeting's creation to its one-minute reminder


@pytest.fixture
async def bot(
    tmp_path: Path, synapse: Synapse, account: MatrixAccount
) -> AsyncIterator[BotProcess]:
    process = BotProcess(
        tmp_path,
        f'matrix:\n  homeserver: {synapse.url}\n  user_id: "{account.user_id}"\n'
        f"  data_dir: {tmp_path / 'matrix-data'}\n"
        "reminders:\n  offsets: [1m]\n",
        {"KLIMABOT_MATRIX_PASSWORD": account.password},
    )
    await process.load_demo()
    await process.start()
    yield process
    code = await process.stop()
    print("\n".join(process.log))  # shown by pytest when the test failed
    assert code == 0


def meeting_due_soon(bot: BotProcess) -> int:
    """Store a meeting whose one-minute reminder falls due in DUE_IN seconds."""
    now = dt.datetime.now(dt.UTC)
    with sqlite3.connect(bot.database) as connection:
        meeting_id: int = connection.execute(
            "INSERT INTO meetings (title, starts_at, location, created_at, uid) "
            "VALUES ('Netzwerktreffen Wärme', ?, 'IHK Düsseldorf', ?, ?) RETURNING id",
            (
                (now + dt.timedelta(seconds=60 + DUE_IN)).isoformat(sep=" "),
                (now - dt.timedelta(days=1)).isoformat(sep=" "),
                new_meeting_uid(),
            ),
        ).fetchone()[0]
    return meeting_id


@pytest.mark.parametrize("encrypted", [True, False], ids=["encrypted", "plain"])
async def test_a_reminder_arrives_as_text_and_its_reaction_answers(
    bot: BotProcess, account: MatrixAccount, make_matrix_member: MakeMember, encrypted: bool
) -> None:
    anna = await make_matrix_member("anna")
    room = await direct_chat(anna, account.user_id, encrypted=encrypted)
    await anna.next_message(room, sender=account.user_id, within=20)  # the greeting
    await anna.send_text(room, "!subscribe reminders")
    subscribed = await anna.next_message(room, sender=account.user_id, within=20)
    assert subscribed.body.startswith("Abonniert")
    meeting_id = meeting_due_soon(bot)

    reminder = await anna.next_message(room, sender=account.user_id, within=DUE_IN + 30)
    assert reminder.body.startswith("⏰ Erinnerung: „Netzwerktreffen Wärme“ beginnt in 1 Minute")
    assert "IHK Düsseldorf" in reminder.body
    assert reminder.msgtype == "m.text"  # clients notify for it, unlike a reply's m.notice
    assert reminder.encrypted is encrypted
    buttons = reminder.content["org.klimabot.buttons"]
    assert buttons["✅"] == f"rsvp:{meeting_id}:yes"
    assert buttons["❌"] == f"rsvp:{meeting_id}:no"

    await anna.react(room, reminder.event_id, "✅")
    thanks = await anna.next_message(room, sender=account.user_id, within=20)
    assert thanks.body.startswith("Danke! Sie nehmen an ")
    assert bot.rows(f"SELECT answer FROM rsvps WHERE meeting_id = {meeting_id}") == [("yes",)]
    # Once: the room holds one reminder (the thanks came after it), recorded as delivered.
    history = await anna.history(room, sender=account.user_id)
    assert sum(m.body.startswith("⏰ Erinnerung") for m in history) == 1
    assert bot.rows(f"SELECT state FROM deliveries WHERE meeting_id = {meeting_id}") == [
        ("delivered",)
    ]
