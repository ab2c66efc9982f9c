"""Telegram end to end: the real `klimabot run` process against the strict Bot API peer."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.bot_process import BotProcess
from tests.telegram_fixtures import TOKEN
from tests.telegram_peer import BotMessage, PeerUser, TelegramPeer

COORDINATOR = 900_001
SECRET = "s3cr3t-webhook-token"
TZ = "Europe/Berlin"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def telegram_bot(folder: Path, peer: TelegramPeer, mode: str = "polling") -> BotProcess:
    """A bot process configured for the peer, in polling or webhook mode."""
    port = free_port()
    webhook = f"http://127.0.0.1:{port}/telegram/hook"
    extra = f"  webhook_url: {webhook}\n  listen: 127.0.0.1\n  port: {port}\n"
    environment = {"KLIMABOT_TELEGRAM_TOKEN": TOKEN}
    if mode == "webhook":
        environment["KLIMABOT_TELEGRAM_WEBHOOK_SECRET"] = SECRET
    bot = BotProcess(
        folder,
        f"coordinators:\n  telegram: [{COORDINATOR}]\n"
        f"telegram:\n  base_url: {peer.base_url}\n  mode: {mode}\n"
        + (extra if mode == "webhook" else ""),
        environment,
    )
    bot.webhook_url = webhook
    return bot


@pytest.fixture
def peer(telegram_peer: TelegramPeer) -> TelegramPeer:
    """The Bot API peer the bot process talks to."""
    return telegram_peer


async def running_bot(tmp_path: Path, peer: TelegramPeer, mode: str = "polling") -> BotProcess:
    bot = telegram_bot(tmp_path, peer, mode)
    await bot.load_demo()
    await bot.start()
    return bot


@pytest.fixture(params=["polling", "webhook"])
async def bot(
    request: pytest.FixtureRequest, tmp_path: Path, peer: TelegramPeer
) -> AsyncIterator[BotProcess]:
    process = await running_bot(tmp_path, peer, request.param)
    yield process
    assert await process.stop() == 0
    assert not any(TOKEN in line for line in process.log), "the token was logged"
    failed = [(c.method, c.description) for c in peer.calls if c.status >= 400]
    assert [f for f in failed if not expected_failure(*f)] == []


def expected_failure(method: str, description: str | None) -> bool:
    """Tell the failures Telegram gives a healthy bot, too, from those of a broken one."""
    # A coordinator who never wrote to the bot has no chat for a menu yet, nor has a group
    # member for a private error notice; stopping the updater ends a long poll with a last,
    # shorter one.
    return (method, description) in {
        ("setMyCommands", "Bad Request: chat not found"),
        ("sendMessage", "Bad Request: chat not found"),
        (
            "getUpdates",
            "Conflict: terminated by other getUpdates request; "
            "make sure that only one bot instance is running",
        ),
    }


async def settle(bot: BotProcess, peer: TelegramPeer) -> None:
    """Stop the bot once it has taken every update sent so far; it ends having handled them.

    The bot handles updates concurrently, so an answer to a later message proves nothing
    about an earlier one; a graceful stop does: it returns only after every update taken
    was handled, and an update still pending at the peer would show it was never taken.
    Every check that the bot sent nothing comes after this barrier.
    """
    await peer.wait_received()
    assert await bot.stop() == 0
    assert peer.pending_updates == []


async def ask(peer: TelegramPeer, user: PeerUser, text: str, **kwargs: object) -> BotMessage:
    """Send a line as the user and return the bot's next message in that chat."""
    sent = await user.send(text, **kwargs)  # type: ignore[arg-type]
    return await peer.wait_for(int(sent["chat"]["id"]), timeout=15)


async def test_every_command_in_a_private_chat(bot: BotProcess, peer: TelegramPeer) -> None:
    anna = peer.user(1001, "Anna", language_code="de")
    assert (await ask(peer, anna, "/start")).text.startswith(
        "Willkommen beim Klimabot des Netzwerks „Düsseldorfer Klimapakt“!"
    )
    help_text = (await ask(peer, anna, "/help")).text
    assert "/treffen [vergangen] – die nächsten Netzwerktreffen" in help_text
    assert "/einladen" not in help_text

    meetings = await ask(peer, anna, "/meetings")
    assert meetings.text.startswith("Nächste Treffen (1/1)")
    assert ("Details #3", "meeting:3") in meetings.buttons[0]
    assert meetings.spans("bold")[0] == "Nächste Treffen (1/1)"

    meeting = await ask(peer, anna, "/meeting 3")
    assert "Tagesordnung" in meeting.text
    await anna.press(meeting.raw, "✅ Ja")
    thanks = await peer.wait_for(anna.id)
    assert thanks.text.startswith("Danke! Sie nehmen an ")
    assert "Zusagen: 1" in thanks.text
    assert peer.answered_callbacks[-1].user_id == anna.id

    calendar = await ask(peer, anna, "/calendar")
    calendar_file = (await peer.wait_for(anna.id)).document
    assert calendar.text.startswith("Hier sind 4 Treffen")
    assert calendar_file is not None
    assert calendar_file.data.startswith(b"BEGIN:VCALENDAR")

    assert "Luft-Wasser-Wärmepumpe" in (await ask(peer, anna, "/tips Wärmepumpe")).text
    assert (await ask(peer, anna, "/tip 2")).text.startswith("Luft-Wasser-Wärmepumpe")
    assert "WEIQIAO Germany GmbH" in (await ask(peer, anna, "/partners")).text
    assert "Shandong Weiqiao" in (await ask(peer, anna, "/partner weiqiao")).text
    assert (await ask(peer, anna, "/subscribe")).text.startswith("Abonniert.")
    assert (await ask(peer, anna, "/unsubscribe tipps")).text.startswith("Abbestellt.")
    assert (await ask(peer, anna, "/language en")).text == "From now on I answer in English."
    assert (await ask(peer, anna, "/meetings")).text.startswith("Upcoming meetings")

    coordinator = peer.user(COORDINATOR, "Koordination")
    invite = await ask(peer, coordinator, "/invite WEIQIAO")
    [code] = [span for span in invite.spans("code") if "-" in span and "/" not in span]
    joined = await ask(peer, anna, f"/join {code}")
    assert joined.text == "Welcome! You now represent WEIQIAO Germany GmbH in the network."
    assert bot.rows(
        "SELECT language FROM members m JOIN identities i ON i.member_id = m.id "
        f"WHERE i.user_id = '{anna.id}'"
    ) == [("en",)]


async def test_paging_buttons_edit_the_message_in_place(
    bot: BotProcess, peer: TelegramPeer
) -> None:
    ben = peer.user(1002, "Ben")
    first = await ask(peer, ben, "/tips")
    assert first.text.startswith("Tipps aus dem Netzwerk (1/4)")
    await ben.press(first.raw, "Weiter ▶")
    second = await peer.wait_for(ben.id)
    assert second.edited
    assert second.message_id == first.message_id
    assert second.text.startswith("Tipps aus dem Netzwerk (2/4)")
    assert [text for text, _ in second.buttons[-1]] == ["◀ Zurück", "Weiter ▶"]
    await settle(bot, peer)
    assert len(peer.messages(ben.id)) == 1


async def test_groups_answer_group_commands_and_stay_quiet_otherwise(
    bot: BotProcess, peer: TelegramPeer
) -> None:
    carla, dirk = peer.user(1003, "Carla"), peer.user(1004, "Dirk")
    group = peer.group(-100_500, "Klimapartner Düsseldorf", [carla, dirk])
    listed = await ask(peer, carla, "/meetings@KlimaTestBot", chat=group)
    assert listed.text.startswith("Nächste Treffen")
    assert listed.raw["reply_to_message"]["from"]["id"] == carla.id
    plain = await ask(peer, dirk, "/tips", chat=group)
    assert plain.text.startswith("Tipps aus dem Netzwerk")

    # Personal commands, unknown commands and chatter get no answer in the group ...
    for line in ("/subscribe", "/frobnicate", "Guten Morgen!", "/meetings@OtherBot"):
        await dirk.send(line, chat=group)
    # ... while an error meant for one person goes to them privately, if they can be reached.
    help_text = await ask(peer, carla, "/help")
    await carla.send("/meeting abc", chat=group)
    private = await peer.wait_for(carla.id)
    assert private.text.startswith("Die Nummer des Treffens muss eine Zahl sein")
    # Someone who never started the bot gets nothing at all, and the bot goes on.
    await dirk.send("/tip zwei", chat=group)
    subscribed = await ask(peer, dirk, "/subscribe@KlimaTestBot", chat=group)
    assert subscribed.text.startswith("Abonniert.")
    await settle(bot, peer)
    assert peer.messages(group.id) == [listed, plain, subscribed]
    assert peer.messages(carla.id) == [help_text, private]
    assert peer.messages(dirk.id) == []


async def test_hostile_text_never_breaks_a_reply(bot: BotProcess, peer: TelegramPeer) -> None:
    eve = peer.user(1005, "<b>Eve</b> &amp; </a>", username="eve", language_code="fr")
    for words in ("<b>", "&amp;", "</a>", "😀🌍", '"NEAR( OR *', "x" * 5000):
        reply = await ask(peer, eve, f"/tips {words}")
        assert reply.text.startswith("Keine Tipps zu „") or reply.text.startswith("Tipps zu „")
    edited = await eve.send("/tip 1")
    await peer.wait_for(eve.id)
    await eve.edit(edited, "/tip 2")
    assert (await peer.wait_for(eve.id)).text.startswith("Luft-Wasser-Wärmepumpe")


async def test_a_long_reply_is_split_below_telegrams_limit(
    bot: BotProcess, peer: TelegramPeer
) -> None:
    fritz = peer.user(1006, "Fritz")
    [(tip_id,)] = bot.rows("SELECT id FROM tips WHERE title = 'Ein sehr langer Erfahrungsbericht'")
    first = await ask(peer, fritz, f"/tip {tip_id}")
    second = await peer.wait_for(fritz.id)
    assert first.text.startswith("Ein sehr langer Erfahrungsbericht")
    assert "Druckluft & <Leckagen> 😀" in second.text
    assert first.message_id != second.message_id


async def test_forged_button_data_gets_a_polite_notice(
    bot: BotProcess, peer: TelegramPeer
) -> None:
    gina = peer.user(1007, "Gina")
    meetings = await ask(peer, gina, "/meetings")
    for data in ("rsvp:99999:yes", "invite:WEIQIAO", "nonsense", "meeting:' OR 1=1 --"):
        await gina.press_raw(meetings.raw, data)
    await settle(bot, peer)
    # Presses are answered as each is done, and reads run side by side: in any order.
    notices = [answer.text for answer in peer.answered_callbacks]
    assert "Es gibt kein Treffen #99999. /meetings zeigt die Treffen." in notices
    assert "/invite ist der Koordination des Netzwerks vorbehalten." in notices
    assert (
        "Dieser Knopf funktioniert nicht mehr. Bitte senden Sie den Befehl noch einmal." in notices
    )
    assert len(notices) == 4
    assert all(answer.show_alert for answer in peer.answered_callbacks)
    assert peer.messages(gina.id) == [meetings]
    assert bot.rows("SELECT count(*) FROM invite_codes") == [(0,)]


async def test_the_first_language_is_telegrams(bot: BotProcess, peer: TelegramPeer) -> None:
    english = peer.user(1008, "Harry", language_code="en")
    assert (await ask(peer, english, "/help")).text.startswith("What I can do")


async def test_command_menus_per_language_and_scope(bot: BotProcess, peer: TelegramPeer) -> None:
    private_de = peer.commands({"type": "all_private_chats"}, "de")
    assert {"command": "treffen", "description": "die nächsten Netzwerktreffen"} in private_de
    private_en = peer.commands({"type": "all_private_chats"}, "en")
    assert {"command": "meetings", "description": "upcoming network meetings"} in private_en
    group = [entry["command"] for entry in peer.commands({"type": "all_group_chats"}, "de")]
    assert "tipps" in group
    assert "beitreten" not in group
    # A coordinator's own menu can be set once they have written to the bot.
    assert peer.commands({"type": "chat", "chat_id": COORDINATOR}, "de") == []
    await ask(peer, peer.user(COORDINATOR, "Koordination"), "/help")
    coordinator = peer.commands({"type": "chat", "chat_id": COORDINATOR}, "de")
    assert "einladen" in [entry["command"] for entry in coordinator]
    assert "einladen" not in [entry["command"] for entry in private_de]


@pytest.mark.parametrize("mode", ["polling"])
async def test_a_hundred_users_at_once_within_the_limits(
    mode: str, tmp_path: Path, peer: TelegramPeer
) -> None:
    bot = await running_bot(tmp_path, peer, mode)
    users = [peer.user(2000 + n, f"Nutzer {n}") for n in range(100)]
    await asyncio.gather(*(user.send("/meetings") for user in users))
    replies = await asyncio.gather(*(peer.wait_for(user.id, timeout=30) for user in users))
    assert all(reply.text.startswith("Nächste Treffen") for reply in replies)
    await settle(bot, peer)
    assert peer.max_rate(None, 1.0) <= 30
    assert max(peer.max_rate(user.id, 1.0) for user in users) <= 1
    assert all(len(peer.messages(user.id)) == 1 for user in users)
    assert peer.violations() == []
    assert [call for call in peer.calls if call.status == 429] == []


async def test_one_persons_flood_never_delays_anothers_answer(
    tmp_path: Path, peer: TelegramPeer
) -> None:
    bot = await running_bot(tmp_path, peer)
    alma, bert = peer.user(1013, "Alma"), peer.user(1014, "Bert")
    await ask(peer, alma, "/help")
    await ask(peer, bert, "/help")
    for number in range(35):
        await alma.send(f"/tip {number % 5 + 1}")
    # Alma's answers queue in her chat, one a second; Bert asks once the first is out.
    await peer.wait_for(alma.id, timeout=15)
    asked_at = time.monotonic()
    answer = await ask(peer, bert, "/meetings")
    assert answer.text.startswith("Nächste Treffen")
    await settle(bot, peer)

    sent = [c for c in peer.calls if c.method == "sendMessage" and c.status == 200]
    to_alma = [c.at for c in sent if c.chat_id == alma.id]
    [answered_at] = [c.at for c in sent if c.chat_id == bert.id][1:]
    # Bert's answer went out before the next but one of Alma's, with most of hers yet to go.
    assert len([at for at in to_alma if asked_at <= at < answered_at]) <= 1
    assert len([at for at in to_alma if at > answered_at]) >= 10
    assert peer.max_rate(alma.id, 1.0) <= 1
    assert peer.max_rate(None, 1.0) <= 30
    assert peer.violations() == []
    assert [call for call in peer.calls if call.status == 429] == []


async def test_a_429_delays_replies_and_nothing_is_sent_meanwhile(
    tmp_path: Path, peer: TelegramPeer
) -> None:
    bot = await running_bot(tmp_path, peer)
    ida = peer.user(1009, "Ida")
    peer.inject_flood(retry_after=2)
    started = asyncio.get_running_loop().time()
    reply = await ask(peer, ida, "/help")
    assert reply.text.startswith("Was ich kann")
    assert asyncio.get_running_loop().time() - started >= 2
    await settle(bot, peer)
    assert peer.violations() == []


async def test_a_user_who_blocked_the_bot_is_marked_unreachable(
    tmp_path: Path, peer: TelegramPeer
) -> None:
    bot = await running_bot(tmp_path, peer)
    jan, kim = peer.user(1010, "Jan"), peer.user(1011, "Kim")
    group = peer.group(-100_600, "Klimapartner", [jan, kim])
    await ask(peer, jan, "/help")
    peer.block(jan.id)
    # A mistake in the group is answered privately, which Telegram now refuses.
    await jan.send("/meeting abc", chat=group)
    assert (await ask(peer, kim, "/help")).text.startswith("Was ich kann")
    reachable = f"SELECT unreachable_since FROM identities WHERE user_id = '{jan.id}'"
    await bot.wait_for_rows(reachable, lambda rows: rows[0][0] is not None)
    peer.unblock(jan.id)
    await ask(peer, jan, "/help")
    assert bot.rows(reachable) == [(None,)]
    await settle(bot, peer)
    # Telegram's refusal was taken as final: the bot never tried that message again.
    assert len([c for c in peer.calls if c.chat_id == jan.id and c.status == 403]) == 1


async def test_meetings_imported_beside_the_running_bot_are_listed_at_once(
    tmp_path: Path, peer: TelegramPeer
) -> None:
    bot = await running_bot(tmp_path, peer)
    try:
        anna = peer.user(1001, "Anna")
        listed = await ask(peer, anna, "/meetings")
        assert "Sommerfest" not in listed.text
        assert (await ask(peer, anna, "/meetings")).text == listed.text  # from memory
        meetings = tmp_path / "meetings.yaml"
        meetings.write_text(
            "meetings:\n"
            "  - title: Sommerfest des Klimapakts\n"
            f"    starts: {dt.datetime.now(dt.UTC).year + 1}-07-01 17:00\n"
            "    location: Rheinterrasse Düsseldorf\n",
            encoding="utf-8",
        )
        importing = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "import",
            str(meetings),
            "--config",
            str(bot.config),
            stdout=asyncio.subprocess.DEVNULL,
        )
        assert await importing.wait() == 0
        # The bot looks for other processes' writes once a second: ask until it has seen it.
        deadline = asyncio.get_running_loop().time() + 10
        while "Sommerfest des Klimapakts" not in (await ask(peer, anna, "/meetings")).text:
            assert asyncio.get_running_loop().time() < deadline, "the import was not seen"
    finally:
        assert await bot.stop() == 0


@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_updates_sent_while_the_bot_is_down_are_answered_after_a_restart(
    mode: str, tmp_path: Path, peer: TelegramPeer
) -> None:
    bot = await running_bot(tmp_path, peer, mode)
    lena = peer.user(1012, "Lena")
    await ask(peer, lena, "/help")
    assert await bot.stop() == 0
    await lena.send("/partners")
    await lena.send("/tips")
    await bot.start()
    first = await peer.wait_for(lena.id, timeout=15)
    second = await peer.wait_for(lena.id, timeout=15)
    assert first.text.startswith("Partner im Düsseldorfer Klimapakt")
    assert second.text.startswith("Tipps aus dem Netzwerk")
    await settle(bot, peer)
    # Each command was answered once: nothing from before the restart again.
    assert len(peer.messages(lena.id)) == 3


async def test_a_webhook_request_without_the_secret_is_refused(
    tmp_path: Path, peer: TelegramPeer
) -> None:
    bot = await running_bot(tmp_path, peer, "webhook")
    forged = {
        "update_id": 1,
        "message": {
            "message_id": 1,
            "date": 0,
            "text": "/invite WEIQIAO",
            "chat": {"id": COORDINATOR, "type": "private", "first_name": "X"},
            "from": {"id": COORDINATOR, "is_bot": False, "first_name": "X"},
            "entities": [{"type": "bot_command", "offset": 0, "length": 7}],
        },
    }
    async with aiohttp.ClientSession() as session:
        for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
            assert bot.webhook_url is not None
            async with session.post(bot.webhook_url, json=forged, headers=headers) as answer:
                assert answer.status == 403
    await settle(bot, peer)
    assert peer.messages(COORDINATOR) == []
    assert bot.rows("SELECT count(*) FROM invite_codes") == [(0,)]
