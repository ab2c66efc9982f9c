"""Matrix end to end: the real `klimabot run` process on a real Synapse, encrypted rooms."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mautrix.errors import MLimitExceeded
from mautrix.types import EncryptionKeyAlgorithm, KeyID, Membership, RoomID, UserID

from tests.bot_process import BotProcess
from tests.matrix_fixtures import MakeMember
from tests.matrix_member import MatrixMember
from tests.synapse import MatrixAccount, Synapse
from tests.telegram_fixtures import TOKEN
from tests.telegram_peer import TelegramPeer


async def send_patiently(member: MatrixMember, room: RoomID, text: str) -> None:
    """Send as a member whose client waits out the homeserver's rate limit, as Element does."""
    for _ in range(60):
        try:
            await member.send_text(room, text)
        except MLimitExceeded:
            await asyncio.sleep(1)
        else:
            return
    raise AssertionError("the homeserver kept refusing the member's message")


async def settle(bot: BotProcess) -> None:
    """Stop the bot, which first finishes every event it has in hand.

    The bot handles events concurrently, so the answer to a later message proves only that
    the earlier ones reached it (a sync hands a room's events over in timeline order), not
    that it is done with them; a graceful stop ends only after every handler has. A check
    that the bot sent nothing waits for an answer to a later message and then for this.
    """
    assert await bot.stop() == 0


def matrix_bot(
    folder: Path,
    synapse: Synapse,
    account: MatrixAccount,
    *,
    coordinators: list[str],
    telegram: TelegramPeer | None = None,
) -> BotProcess:
    """A bot process logging in to Synapse with the account's password."""
    listed = ", ".join(f'"{user}"' for user in coordinators)
    sections = (
        f"coordinators:\n  matrix: [{listed}]\n"
        f'matrix:\n  homeserver: {synapse.url}\n  user_id: "{account.user_id}"\n'
        f"  data_dir: {folder / 'matrix-data'}\n"
    )
    environment = {"KLIMABOT_MATRIX_PASSWORD": account.password}
    if telegram is not None:
        sections += f"telegram:\n  base_url: {telegram.base_url}\n"
        environment["KLIMABOT_TELEGRAM_TOKEN"] = TOKEN
    return BotProcess(folder, sections, environment)


@pytest.fixture
async def bot(
    tmp_path: Path, synapse: Synapse, account: MatrixAccount
) -> AsyncIterator[BotProcess]:
    process = matrix_bot(tmp_path, synapse, account, coordinators=[])
    await process.load_demo()
    await process.start()
    yield process
    code = await process.stop()
    print("\n".join(process.log))  # shown by pytest when the test failed
    assert code == 0
    assert not any(account.password in line for line in process.log)


async def bot_devices(member: MatrixMember, user_id: str) -> dict[str, str]:
    """Return the bot's devices with their identity keys, as a member's client sees them."""
    keys = await member.client.query_keys([UserID(user_id)])
    return {
        str(device_id): str(device.keys.get(KeyID(EncryptionKeyAlgorithm.CURVE25519, device_id)))
        for device_id, device in keys.device_keys[UserID(user_id)].items()
    }


async def direct_chat(member: MatrixMember, bot_user: str, *, encrypted: bool = True) -> RoomID:
    room = await member.create_dm(bot_user, encrypted=encrypted)
    await member.wait_joined(room, bot_user, within=20)
    return room


@pytest.mark.parametrize("encrypted", [True, False], ids=["encrypted", "plain"])
async def test_a_member_talks_to_the_bot_in_a_direct_chat(
    bot: BotProcess, account: MatrixAccount, make_matrix_member: MakeMember, encrypted: bool
) -> None:
    anna = await make_matrix_member("anna")
    room = await direct_chat(anna, account.user_id, encrypted=encrypted)
    greeting = await anna.next_message(room, sender=account.user_id, within=20)
    assert greeting.body.startswith("Willkommen beim Klimabot des Netzwerks")
    assert greeting.msgtype == "m.notice"
    assert greeting.encrypted is encrypted

    await anna.send_text(room, "!meetings")
    meetings = await anna.next_message(room, sender=account.user_id, within=20)
    assert meetings.body.startswith("Nächste Treffen (1/1)")
    assert meetings.formatted_body is not None
    assert meetings.formatted_body.startswith("<b>Nächste Treffen (1/1)</b><br/>")
    assert "<code>!meeting 3</code>" in meetings.formatted_body
    assert meetings.encrypted is encrypted

    await anna.send_text(room, "/tips Wärmepumpe")
    tips = await anna.next_message(room, sender=account.user_id, within=20)
    assert "Luft-Wasser-Wärmepumpe ersetzt Gaskessel" in tips.body

    await anna.send_text(room, "!meeting 3")
    meeting = await anna.next_message(room, sender=account.user_id, within=20)
    assert meeting.content["org.klimabot.buttons"]["✅"] == "rsvp:3:yes"
    await anna.react(room, meeting.event_id, "✅")
    thanks = await anna.next_message(room, sender=account.user_id, within=20)
    assert thanks.body.startswith("Danke! Sie nehmen an ")
    assert bot.rows("SELECT answer FROM rsvps") == [("yes",)]

    await anna.send_text(room, "!calendar 3")
    text = await anna.next_message(room, sender=account.user_id, within=20)
    calendar = await anna.next_message(room, sender=account.user_id, within=20)
    assert text.body == "Hier ist 1 Treffen für Ihren Kalender."
    assert calendar.msgtype == "m.file"
    assert calendar.body == "meeting-3.ics"
    assert ("file" in calendar.content) is encrypted


async def test_the_bot_keeps_its_device_and_answers_nothing_twice_after_a_restart(
    bot: BotProcess, account: MatrixAccount, make_matrix_member: MakeMember
) -> None:
    ben = await make_matrix_member("ben")
    room = await direct_chat(ben, account.user_id)
    await ben.next_message(room, sender=account.user_id, within=20)
    await ben.send_text(room, "!help")
    await ben.next_message(room, sender=account.user_id, within=20)
    before = await ben.count_messages(room, sender=account.user_id)
    devices = await bot_devices(ben, account.user_id)
    assert await bot.stop() == 0

    await ben.send_text(room, "!partners")
    await bot.start()
    late = await ben.next_message(room, sender=account.user_id, within=30)
    assert late.body.startswith("Partner im Düsseldorfer Klimapakt")
    assert late.encrypted
    await ben.send_text(room, "!tips")
    assert (await ben.next_message(room, sender=account.user_id, within=20)).body.startswith(
        "Tipps aus dem Netzwerk"
    )
    # The same single device, so the member sees no new unverified device.
    assert await bot_devices(ben, account.user_id) == devices
    await settle(bot)
    # Only the two new commands were answered: nothing from before the restart again.
    assert await ben.count_messages(room, sender=account.user_id) == before + 2
    assert len(devices) == 1
    session = (bot.folder / "matrix-data" / "session.json").read_text(encoding="utf-8")
    assert account.password not in session


async def test_in_a_group_room_only_commands_are_answered(
    tmp_path: Path,
    synapse: Synapse,
    account: MatrixAccount,
    make_matrix_member: MakeMember,
) -> None:
    coordinator, member = await make_matrix_member("koordination"), await make_matrix_member("c")
    bot = matrix_bot(tmp_path, synapse, account, coordinators=[str(coordinator.user_id)])
    await bot.load_demo()
    await bot.start()
    try:
        room = await coordinator.create_room(
            [account.user_id, str(member.user_id)], encrypted=False, name="Klimapartner"
        )
        await member.join(room)
        await coordinator.wait_joined(room, account.user_id, within=20)
        await member.send_text(room, "Guten Morgen zusammen")
        await member.send_text(room, "!frobnicate")
        await member.send_text(room, "!tips Mobilität")
        answer = await member.next_message(room, sender=account.user_id, within=20)
        assert answer.body.startswith("Tipps: Mobilität")

        # Group invitations from anybody but a coordinator are declined.
        other = await member.create_room([account.user_id], encrypted=False, name="Fremd")
        await member.wait_membership(other, account.user_id, Membership.LEAVE, within=20)
    finally:
        await settle(bot)
    # The chatter and the unknown command before the answered one got nothing.
    assert await member.count_messages(room, sender=account.user_id) == 1


async def test_replies_arrive_despite_synapses_default_message_rate_limit(
    tmp_path: Path, synapse_default_limits: Synapse
) -> None:
    account_parts = await synapse_default_limits.register("klimabot-limited", "pw-limited-1")
    account = MatrixAccount(
        account_parts[0], "klimabot-limited", "pw-limited-1", account_parts[1], account_parts[2]
    )
    dora = await MatrixMember.login(synapse_default_limits, "dora-limited")
    bot = matrix_bot(tmp_path, synapse_default_limits, account, coordinators=[])
    await bot.load_demo()
    await bot.start()
    try:
        room = await direct_chat(dora, account.user_id, encrypted=False)
        await dora.next_message(room, sender=account.user_id, within=30)
        for number in range(12):
            await send_patiently(dora, room, f"!tip {number % 5 + 1}")
        for _ in range(12):
            await dora.next_message(room, sender=account.user_id, within=90)
        await settle(bot)
        # Greeting plus twelve answers, each exactly once.
        assert await dora.count_messages(room, sender=account.user_id) == 13
        assert any("rate limited" in line for line in bot.log)
    finally:
        assert await bot.stop() == 0
        await dora.close()


async def test_one_member_on_telegram_and_matrix_after_linking(
    tmp_path: Path,
    synapse: Synapse,
    account: MatrixAccount,
    make_matrix_member: MakeMember,
    telegram_peer: TelegramPeer,
) -> None:
    bot = matrix_bot(tmp_path, synapse, account, coordinators=[], telegram=telegram_peer)
    await bot.load_demo()
    await bot.start()
    try:
        eva_matrix = await make_matrix_member("eva")
        eva_telegram = telegram_peer.user(5005, "Eva")
        room = await direct_chat(eva_matrix, account.user_id)
        await eva_matrix.next_message(room, sender=account.user_id, within=20)

        await eva_telegram.send("/link")
        shown = await telegram_peer.wait_for(eva_telegram.id, timeout=20)
        [code] = [span for span in shown.spans("code") if "/" not in span]
        await eva_matrix.send_text(room, f"!link {code}")
        linked = await eva_matrix.next_message(room, sender=account.user_id, within=20)
        assert linked.body.startswith("Verbunden:")

        await eva_telegram.send("/language en")
        await telegram_peer.wait_for(eva_telegram.id, timeout=20)
        await eva_telegram.send("/subscribe")
        await telegram_peer.wait_for(eva_telegram.id, timeout=20)
        await eva_matrix.send_text(room, "!subscribe")
        after = await eva_matrix.next_message(room, sender=account.user_id, within=20)
        assert after.body.startswith("Subscribed.")
        assert bot.rows("SELECT count(*) FROM members") == [(1,)]
        assert bot.rows("SELECT count(*) FROM subscriptions") == [(2,)]
    finally:
        assert await bot.stop() == 0
