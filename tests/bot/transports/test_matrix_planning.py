"""Planning on Matrix: a coordinator's dialog in a direct chat, and the notice members get."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.bot.transports.test_matrix import direct_chat, matrix_bot
from tests.bot_process import BotProcess
from tests.matrix_fixtures import MakeMember
from tests.matrix_member import MatrixMember
from tests.synapse import MatrixAccount, Synapse

TITLE = "Workshop Wärmepumpen"


@pytest.fixture
async def coordinator(make_matrix_member: MakeMember) -> MatrixMember:
    """The coordinator's client."""
    return await make_matrix_member("koordination")


@pytest.fixture
async def bot(
    tmp_path: Path, synapse: Synapse, account: MatrixAccount, coordinator: MatrixMember
) -> AsyncIterator[BotProcess]:
    process = matrix_bot(tmp_path, synapse, account, coordinators=[coordinator.user_id])
    await process.start()
    yield process
    code = await process.stop()
    print("\n".join(process.log))  # shown by pytest when the test failed
    assert code == 0


async def test_a_meeting_planned_in_a_dialog_and_cancelled_tells_who_said_yes(
    bot: BotProcess,
    account: MatrixAccount,
    coordinator: MatrixMember,
    make_matrix_member: MakeMember,
) -> None:
    own = await direct_chat(coordinator, account.user_id, encrypted=True)
    await coordinator.next_message(own, sender=account.user_id, within=20)  # the greeting

    async def say(text: str) -> str:
        await coordinator.send_text(own, text)
        return (await coordinator.next_message(own, sender=account.user_id, within=20)).body

    assert (await say("!neuestreffen")).startswith("Neues Treffen, Schritt 1 von 5")
    assert (await say(TITLE)).startswith("Schritt 2 von 5")
    assert (await say("31.02.2028 10:00")).startswith("Einen Tag 31.02.2028 gibt es")
    assert (await say("29.03.2028 10:00-12:00")).startswith("Schritt 4 von 5")
    assert (await say("IHK Düsseldorf")).startswith("Schritt 5 von 5")
    await coordinator.send_text(own, "-")
    preview = await coordinator.next_message(own, sender=account.user_id, within=20)
    assert preview.body.startswith(f"Vorschau: So sehen es die Mitglieder.\n\n{TITLE} #1\n")
    assert "Mi., 29. März 2028, 10:00–12:00 Uhr" in preview.body
    await coordinator.react(own, preview.event_id, "💾")
    saved = await coordinator.next_message(own, sender=account.user_id, within=20)
    assert saved.body.startswith("✅ Gespeichert als #1")

    rooms = {}
    for name, answer in (("zusage", "ja"), ("absage", "nein")):
        member = await make_matrix_member(name)
        room = await direct_chat(member, account.user_id, encrypted=name == "zusage")
        await member.next_message(room, sender=account.user_id, within=20)
        await member.send_text(room, f"!teilnehmen 1 {answer}")
        await member.next_message(room, sender=account.user_id, within=20)
        rooms[name] = (member, room)

    await coordinator.send_text(own, "!treffenabsagen 1")
    question = await coordinator.next_message(own, sender=account.user_id, within=20)
    assert question.body.startswith("Dieses Treffen absagen?")
    await coordinator.react(own, question.event_id, "❌")
    done = await coordinator.next_message(own, sender=account.user_id, within=20)
    assert done.body.startswith("❌ Abgesagt. 1 Mitglied, das zu- oder vielleicht zugesagt hat")

    member, room = rooms["zusage"]
    notice = await member.next_message(room, sender=account.user_id, within=30)
    assert notice.body.startswith(f"❌ Abgesagt: {TITLE} #1\nMi., 29. März 2028, 10:00–12:00 Uhr")
    assert notice.msgtype == "m.text"
    # The barrier: the member who declined is answered a later command, and the one row the
    # cancellation made is delivered; only then is their room known to hold no notice.
    declined, declined_room = rooms["absage"]
    await declined.send_text(declined_room, "!treffen")
    await declined.next_message(declined_room, sender=account.user_id, within=20)
    assert bot.rows("SELECT state FROM deliveries") == [("delivered",)]
    bodies = [m.body for m in await declined.history(declined_room, sender=account.user_id)]
    assert not [body for body in bodies if body.startswith("❌ Abgesagt")]
