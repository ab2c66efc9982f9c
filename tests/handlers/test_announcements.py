"""Announcements: preview, confirm once, recipients as delivery rows, stop, quiet hours."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from bot.core import Platform, QuietHours
from bot.dispatch import Dispatcher
from bot.markup import to_plain
from storage.models import Announcement, Delivery, DeliveryState, Identity
from tests.helpers import NOW, Chat, Sessions, assert_well_formed, buttons, stored


async def subscribers(dispatcher: Dispatcher, count: int) -> list[Chat]:
    chats = [Chat(dispatcher, f"{1000 + n}", platform=Platform.TELEGRAM) for n in range(count)]
    for chat in chats:
        await chat.send("/subscribe")
    return chats


async def rows(sessions: Sessions) -> list[tuple[str, str, DeliveryState]]:
    return sorted(
        await stored(sessions, select(Delivery.platform, Delivery.chat_id, Delivery.state))
    )


async def test_the_preview_shows_the_message_the_recipients_and_two_buttons(
    dispatcher: Dispatcher, coordinator: Chat, sessions: Sessions
) -> None:
    await subscribers(dispatcher, 3)
    reply = await coordinator.reply(
        "/announce Netzwerktreffen am <b>29. März</b>\nBitte anmelden!"
    )
    assert to_plain(reply.text) == (
        "Vorschau: So sehen es die Mitglieder.\n\n"
        "📣 Mitteilung der Koordination · Düsseldorfer Klimapakt\n\n"
        "Netzwerktreffen am 29. März\nBitte anmelden!\n\n"
        "Empfänger: 3"
    )
    assert "<b>29. März</b>" in reply.text
    assert buttons(reply) == ["announce_send:1", "announce_drop:1"]
    assert [button.label for row in reply.buttons for button in row] == [
        "📣 Senden",
        "✖ Abbrechen",
    ]
    # Nothing goes out before the coordinator confirms.
    assert await rows(sessions) == []


async def test_confirming_queues_one_row_per_subscriber_and_shows_progress(
    dispatcher: Dispatcher, coordinator: Chat, sessions: Sessions
) -> None:
    await subscribers(dispatcher, 2)
    Chat(dispatcher, "not-subscribed", platform=Platform.TELEGRAM)
    await coordinator.send("/announce Hallo")
    progress = await coordinator.press("Senden")
    assert progress.edit_origin
    assert to_plain(progress.text).startswith("Die Mitteilung wird gesendet: 0 von 2\n")
    assert buttons(progress) == ["announce_stop:1"]
    assert await rows(sessions) == [
        ("telegram", "chat-1000", DeliveryState.PENDING),
        ("telegram", "chat-1001", DeliveryState.PENDING),
    ]
    # Pressing Send again, or on the old preview, sends nothing twice.
    again = await coordinator.reply("/announce_send 1")
    assert again.is_error
    assert to_plain(again.text) == "Diese Mitteilung wird schon gesendet."
    assert len(await rows(sessions)) == 2


async def test_members_and_partners_cannot_announce_or_forge_the_confirmation(
    dispatcher: Dispatcher, coordinator: Chat, member: Chat, sessions: Sessions
) -> None:
    await subscribers(dispatcher, 1)
    await coordinator.send("/announce Hallo")
    assert await member.send("/announce Spam") == (
        "/announce ist der Koordination des Netzwerks vorbehalten."
    )
    forged = await member.reply("/announce_send 1")
    assert forged.is_error
    assert await rows(sessions) == []
    assert await stored(sessions, select(Announcement.confirmed_at)) == [(None,)]


async def test_empty_long_and_hostile_texts(coordinator: Chat, sessions: Sessions) -> None:
    empty = await coordinator.send("/announce   ")
    assert empty.startswith("Was soll die Mitteilung sagen?")
    long = await coordinator.send("/announce " + "x" * 20_000)
    assert long == "Eine Mitteilung darf höchstens 3.500 Zeichen haben; diese hat 20.000."
    hostile = await coordinator.reply(
        '/announce <b>fett <i>offen <script>alert(1)</script> <a href="javascript:x">a</a> & <3'
    )
    assert_well_formed(hostile.text)
    assert "script" not in hostile.text
    assert "javascript" not in hostile.text
    assert "&lt;3" in hostile.text
    assert len(await stored(sessions, select(Announcement.id))) == 1


async def test_a_member_on_two_platforms_gets_one_copy_where_they_last_wrote(
    dispatcher: Dispatcher, coordinator: Chat, sessions: Sessions
) -> None:
    telegram = Chat(dispatcher, "4242", platform=Platform.TELEGRAM)
    matrix = Chat(dispatcher, "@anna:example.org", platform=Platform.MATRIX)
    await telegram.send("/subscribe")
    code = (await telegram.send("/link")).split("Verbindungscode: ")[1].split("\n")[0]
    dispatcher.clock = lambda: NOW + dt.timedelta(minutes=5)
    await matrix.send(f"/link {code}")
    await coordinator.send("/announce Hallo")
    await coordinator.press("Senden")
    assert await rows(sessions) == [("matrix", "chat-@anna:example.org", DeliveryState.PENDING)]


async def test_a_member_who_blocked_the_bot_is_counted_unreachable_at_once(
    dispatcher: Dispatcher, coordinator: Chat, sessions: Sessions
) -> None:
    await subscribers(dispatcher, 2)
    async with sessions() as session:
        identity = await session.scalar(select(Identity).where(Identity.user_id == "1001"))
        assert identity is not None
        identity.unreachable_since = NOW
        await session.commit()
    await coordinator.send("/announce Hallo")
    progress = to_plain((await coordinator.press("Senden")).text)
    assert "Telegram: offen 1, nicht erreichbar 1" in progress
    assert await rows(sessions) == [
        ("telegram", "chat-1000", DeliveryState.PENDING),
        ("telegram", "chat-1001", DeliveryState.UNREACHABLE),
    ]


async def test_discarding_a_draft_and_stopping_a_broadcast(
    dispatcher: Dispatcher, coordinator: Chat, sessions: Sessions
) -> None:
    await subscribers(dispatcher, 2)
    await coordinator.send("/announce Erste")
    assert to_plain((await coordinator.press("Abbrechen")).text) == (
        "Verworfen: niemand hat sie erhalten."
    )
    assert (await coordinator.reply("/announce_send 1")).is_error
    await coordinator.send("/announce Zweite")
    await coordinator.press("Senden")
    report = await coordinator.press("anhalten")
    assert to_plain(report.text) == (
        "Mitteilung angehalten: Zustellbericht\nTelegram: angehalten 2"
    )
    assert {state for *_, state in await rows(sessions)} == {DeliveryState.CANCELLED}


async def test_in_quiet_hours_the_announcement_waits_for_their_end(
    dispatcher: Dispatcher, coordinator: Chat, sessions: Sessions
) -> None:
    zone = dispatcher.timezone
    dispatcher.quiet_hours = QuietHours(dt.time(21), dt.time(8), zone)
    late = dt.datetime(2026, 11, 25, 22, 30, tzinfo=zone)
    dispatcher.clock = lambda: late
    await subscribers(dispatcher, 1)
    preview = await coordinator.send("/announce Gute Nacht")
    assert "Jetzt ist Ruhezeit: Die Mitteilung geht am Do., 26. Nov. 2026 um 08:00 hinaus." in (
        preview
    )
    progress = await coordinator.press("Senden")
    assert "Wartet auf das Ende der Ruhezeit um 08:00." in to_plain(progress.text)
    due = await stored(sessions, select(Delivery.due_at))
    assert due == [(dt.datetime(2026, 11, 26, 7, 0, tzinfo=dt.UTC),)]


async def test_the_list_of_recent_announcements_has_their_reports(
    dispatcher: Dispatcher, coordinator: Chat
) -> None:
    await subscribers(dispatcher, 1)
    await coordinator.send("/announce Erste Zeile\nzweite Zeile")
    await coordinator.press("Senden")
    listed = await coordinator.send("/announcements")
    assert listed.startswith("Letzte Mitteilungen\n\nMi., 25. Nov. 2026 11:00: Erste Zeile\n")
    assert listed.endswith("Telegram: offen 1")


async def test_an_english_speaking_coordinator_sees_preview_progress_and_report_in_english(
    dispatcher: Dispatcher, coordinator: Chat, sessions: Sessions
) -> None:
    await subscribers(dispatcher, 1)
    await coordinator.send("/language en")
    preview = await coordinator.send("/announce Hello")
    assert preview.startswith("Preview: this is how members will see it.")
    assert preview.endswith("Recipients: 1")
    progress = to_plain((await coordinator.press("Send")).text)
    assert progress == ("Sending the announcement: 0 of 1\nTelegram: to go 1\nAbout 1 s to go.")
    report = to_plain((await coordinator.press("Stop sending")).text)
    assert report == "Announcement stopped: delivery report\nTelegram: stopped 1"
