"""Announcements on Matrix: the real `klimabot run` on a real Synapse, encrypted and plain."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mautrix.types import RoomID

from tests.bot.transports.test_matrix import direct_chat, matrix_bot
from tests.bot_process import BotProcess
from tests.matrix_fixtures import MakeMember
from tests.matrix_member import MatrixMember
from tests.synapse import MatrixAccount, Synapse

HEADING = "📣 Mitteilung der Koordination · Düsseldorfer Klimapakt"


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


MEMBERS = 30
LEAVERS = {3, 10, 17, 24}  # subscribed, then left their chat with the bot
SET_UP_AT_ONCE = 8


async def subscribed_member(
    make_matrix_member: MakeMember, bot_user: str, name: str, *, encrypted: bool
) -> tuple[MatrixMember, RoomID]:
    """A member with a direct chat with the bot (greeted), subscribed to announcements."""
    member = await make_matrix_member(name)
    room = await direct_chat(member, bot_user, encrypted=encrypted)
    await member.next_message(room, sender=bot_user, within=30)  # the greeting
    await member.send_text(room, "!subscribe")
    answer = await member.next_message(room, sender=bot_user, within=30)
    assert answer.encrypted is encrypted
    return member, room


async def test_thirty_members_in_encrypted_and_plain_rooms_get_one_notifying_copy(
    bot: BotProcess,
    account: MatrixAccount,
    coordinator: MatrixMember,
    make_matrix_member: MakeMember,
) -> None:
    limit = asyncio.Semaphore(SET_UP_AT_ONCE)

    async def one(number: int) -> tuple[MatrixMember, RoomID]:
        async with limit:
            return await subscribed_member(
                make_matrix_member, account.user_id, f"member{number}", encrypted=number % 2 == 0
            )

    members = await asyncio.gather(*(one(n) for n in range(MEMBERS)))
    for number in LEAVERS:
        member, room = members[number]
        await member.client.leave_room(room)

    # The coordinator writes after everyone left: the bot has seen the leaving by then.
    own = await direct_chat(coordinator, account.user_id)
    await coordinator.next_message(own, sender=account.user_id, within=20)
    await coordinator.send_text(own, "!announce Netzwerktreffen am <b>29. März</b>")
    preview = await coordinator.next_message(own, sender=account.user_id, within=20)
    assert preview.body.startswith("Vorschau: So sehen es die Mitglieder.")
    assert preview.content["org.klimabot.buttons"]["📣"] == "announce_send:1"
    await coordinator.react(own, preview.event_id, "📣")

    # The coordinator's progress message is replaced by the report, once all is done.
    edit = await coordinator.next_message(own, sender=account.user_id, within=60)
    while "Zustellbericht" not in edit.body:
        edit = await coordinator.next_message(own, sender=account.user_id, within=60)
    reachable = MEMBERS - len(LEAVERS)
    assert edit.content["m.new_content"]["body"] == (
        "Mitteilung gesendet: Zustellbericht\n"
        f"Matrix: zugestellt {reachable}, nicht erreichbar {len(LEAVERS)}"
    )

    expected = f"{HEADING}\n\nNetzwerktreffen am 29. März"
    for number, (member, room) in enumerate(members):
        if number in LEAVERS:
            continue
        pushed = await member.next_message(room, sender=account.user_id, within=30)
        assert pushed.body == expected
        assert pushed.formatted_body is not None
        assert "<b>29. März</b>" in pushed.formatted_body
        assert pushed.msgtype == "m.text"  # clients notify for it, unlike a reply's m.notice
        assert pushed.encrypted is (number % 2 == 0)
        # Exactly one copy, as the homeserver stores the room (/messages).
        history = await member.history(room, sender=account.user_id)
        assert [m.body for m in history].count(expected) == 1

    assert bot.rows("SELECT state, count(*) FROM deliveries GROUP BY state ORDER BY state") == [
        ("delivered", reachable),
        ("unreachable", len(LEAVERS)),
    ]
    # Whoever left is not written to again until they write to the bot.
    gone = bot.rows("SELECT count(*) FROM identities WHERE unreachable_since IS NOT NULL")
    assert gone == [(len(LEAVERS),)]
