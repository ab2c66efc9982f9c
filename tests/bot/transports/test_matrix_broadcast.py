"""Announcements on Matrix: the real `klimabot run` on a real Synapse, encrypted and plain."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.bot.transports.test_matrix import direct_chat, matrix_bot
from tests.bot_process import BotProcess
from tests.matrix_fixtures import MakeAccount, MakeMember
from tests.matrix_member import MatrixMember
from tests.synapse import MatrixAccount, Synapse

HEADING = "📣 Mitteilung der Koordination · Düsseldorfer Klimapakt"


@pytest.fixture
async def account(make_matrix_account: MakeAccount) -> MatrixAccount:
    """The bot's account on the homeserver."""
    return await make_matrix_account("klimabot")


@pytest.fixture
async def coordinator(make_matrix_member: MakeMember) -> MatrixMember:
    """The coordinator's client."""
    return await make_matrix_member("koordination")


@pytest.fixture
async def bot(
    tmp_path: Path, synapse: Synapse, account: MatrixAccount, coordinator: MatrixMember
) -> AsyncIterator[BotProcess]:
    process = matrix_bot(tmp_path, synapse, account, coordinators=[coordinator.user_id])
    await process.load_demo()
    await process.start()
    yield process
    code = await process.stop()
    print("\n".join(process.log))  # shown by pytest when the test failed
    assert code == 0


async def test_members_in_encrypted_and_plain_rooms_get_one_notifying_copy(
    bot: BotProcess,
    account: MatrixAccount,
    coordinator: MatrixMember,
    make_matrix_member: MakeMember,
) -> None:
    rooms = {}
    members = [(f"member{n}", n % 2 == 0) for n in range(6)]  # encrypted and plain rooms
    for name, encrypted in members:
        member = await make_matrix_member(name)
        room = await direct_chat(member, account.user_id, encrypted=encrypted)
        await member.next_message(room, sender=account.user_id, within=20)  # the greeting
        await member.send_text(room, "!subscribe")
        await member.next_message(room, sender=account.user_id, within=20)
        rooms[name] = (member, room, encrypted)

    own = await direct_chat(coordinator, account.user_id)
    await coordinator.next_message(own, sender=account.user_id, within=20)
    await coordinator.send_text(own, "!announce Netzwerktreffen am <b>29. März</b>")
    preview = await coordinator.next_message(own, sender=account.user_id, within=20)
    assert preview.body.startswith("Vorschau: So sehen es die Mitglieder.")
    assert preview.content["org.klimabot.buttons"]["📣"] == "announce_send:1"
    await coordinator.react(own, preview.event_id, "📣")

    for member, room, encrypted in rooms.values():
        pushed = await member.next_message(room, sender=account.user_id, within=30)
        assert pushed.body == f"{HEADING}\n\nNetzwerktreffen am 29. März"
        assert pushed.formatted_body is not None
        assert "<b>29. März</b>" in pushed.formatted_body
        assert pushed.msgtype == "m.text"  # clients notify for it, unlike a reply's m.notice
        assert pushed.encrypted is encrypted
        history = await member.history(room, sender=account.user_id)
        assert [m.body for m in history].count(pushed.body) == 1

    def reported() -> bool:
        rows = bot.rows("SELECT finished_at FROM announcements WHERE id = 1")
        return rows[0][0] is not None

    # The coordinator's progress message is replaced by the report.
    edit = await coordinator.next_message(own, sender=account.user_id, within=30)
    while "Zustellbericht" not in edit.body:
        edit = await coordinator.next_message(own, sender=account.user_id, within=30)
    assert edit.content["m.new_content"]["body"] == (
        "Mitteilung gesendet: Zustellbericht\nMatrix: zugestellt 6"
    )
    assert reported()
    assert bot.rows("SELECT state, count(*) FROM deliveries GROUP BY state") == [("delivered", 6)]
