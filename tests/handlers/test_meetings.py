"""Meetings as a member sees them: the list, one meeting, answers, calendar files."""

import csv
import datetime as dt
import io

import pytest
from icalendar import Calendar
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import Button, parse_action
from bot.dispatch import Dispatcher
from bot.markup import to_plain
from storage.models import (
    Answer,
    Delivery,
    Identity,
    Meeting,
    MeetingNotice,
    Member,
    NoticeKind,
    Rsvp,
)
from tests.helpers import NOW, Chat, Sessions, add_meeting, add_partner, buttons, stored


@pytest.fixture
async def meetings(session: AsyncSession) -> dict[str, Meeting]:
    found = {
        "past": await add_meeting(
            session, "1. Netzwerktreffen", dt.datetime(2022, 12, 6, 13, tzinfo=dt.UTC)
        ),
        "soon": await add_meeting(
            session,
            "Klimafrühstück <Mobilität> & mehr",
            NOW + dt.timedelta(days=7),
            agenda="Pendeln\nDienstreisen",
        ),
        "online": await add_meeting(
            session,
            "Online-Sprechstunde",
            NOW + dt.timedelta(days=14),
            location=None,
            online_url="https://example.org/call?x=1&y=2",
        ),
    }
    await session.commit()
    return found


async def test_meetings_lists_what_is_ahead_in_local_time(
    member: Chat, meetings: dict[str, Meeting]
) -> None:
    text = await member.send("/meetings")
    assert text.startswith("Nächste Treffen (1/1)")
    assert "1. Netzwerktreffen" not in text
    # 10:00 UTC is 11:00 in Düsseldorf in winter.
    assert "Klimafrühstück <Mobilität> & mehr #2\n🗓 Mi., 2. Dez. 2026, 11:00–14:00 Uhr" in text
    assert "📍 IHK Düsseldorf" in text
    assert "💻 online (https://example.org/call?x=1&y=2)" in text
    assert buttons(member.last) == ["meeting:2", "rsvp:2:yes", "meeting:3", "rsvp:3:yes"]


async def test_user_text_is_escaped_in_the_reply_markup(
    member: Chat, meetings: dict[str, Meeting]
) -> None:
    reply = await member.reply("/meetings")
    assert "<b>Klimafrühstück &lt;Mobilität&gt; &amp; mehr</b>" in reply.text
    assert 'href="https://example.org/call?x=1&amp;y=2"' in reply.text


async def test_meetings_pages_with_buttons(member: Chat, session: AsyncSession) -> None:
    for day in range(1, 13):
        await add_meeting(session, f"Treffen {day}", NOW + dt.timedelta(days=day))
    await session.commit()
    first = await member.send("/meetings")
    assert first.startswith("Nächste Treffen (1/3)")
    assert buttons(member.last)[-1] == "meetings:#2"
    second = await member.press("Weiter")
    assert "Treffen 6 #6" in to_plain(second.text)
    assert "Treffen 5 " not in to_plain(second.text)
    assert buttons(second)[-2:] == ["meetings:#1", "meetings:#3"]


async def test_no_meetings(member: Chat) -> None:
    assert await member.send("/meetings") == "Zurzeit sind keine Treffen geplant."


async def test_one_meeting_in_full_with_actions(
    member: Chat, meetings: dict[str, Meeting]
) -> None:
    text = await member.send("/meeting 2")
    assert "Tagesordnung\nPendeln\nDienstreisen" in text
    assert "Sie haben noch nicht geantwortet." in text
    assert buttons(member.last) == ["rsvp:2:yes", "rsvp:2:maybe", "rsvp:2:no", "calendar:2"]


async def test_a_past_meeting_offers_no_answer(member: Chat, meetings: dict[str, Meeting]) -> None:
    text = await member.send("/meeting 1")
    assert (
        "1. Netzwerktreffen #1\nDieses Treffen ist vorbei.\n🗓 Di., 6. Dez. 2022, 14:00–17:00 Uhr"
    ) in text
    assert "Ihre Antwort" not in text
    assert "noch nicht geantwortet" not in text
    assert buttons(member.last) == []
    assert await member.send("/rsvp 1 ja") == "Dieses Treffen ist vorbei oder abgesagt."


async def test_one_tap_rsvp_is_stored_and_counted(
    member: Chat, meetings: dict[str, Meeting], sessions: Sessions
) -> None:
    await member.send("/meeting 2")
    reply = await member.press("Ja")
    assert "Danke! Sie nehmen an Klimafrühstück <Mobilität> & mehr teil." in to_plain(reply.text)
    assert "Zusagen: 1 · vielleicht: 0" in reply.text
    # Changing one's mind replaces the answer instead of adding one.
    assert "Notiert: Sie nehmen vielleicht" in await member.send("/rsvp 2 vielleicht")
    rows = await stored(sessions, select(Rsvp.meeting_id, Rsvp.answer))
    assert rows == [(2, Answer.MAYBE)]
    assert "Ihre Antwort: vielleicht" in await member.send("/meeting 2")


@pytest.mark.parametrize(
    ("line", "answer"),
    [
        (
            "/meeting abc",
            "Die Nummer des Treffens muss eine Zahl sein, wie /meetings sie zeigt.\n"
            "So geht’s: /termin NR",
        ),
        ("/meeting 99999", "Es gibt kein Treffen #99999. /meetings zeigt die Treffen."),
        (
            "/meeting 99999999999999999999",
            "Die Nummer des Treffens muss eine Zahl sein, "
            "wie /meetings sie zeigt.\nSo geht’s: /termin NR",
        ),
        (
            "/rsvp 2",
            "Bitte geben Sie die Nummer des Treffens und Ihre Antwort an.\n"
            "So geht’s: /teilnehmen NR ja|nein|vielleicht",
        ),
        (
            "/rsvp 2 klar",
            "Bitte antworten Sie mit ja, nein oder vielleicht.\n"
            "So geht’s: /teilnehmen NR ja|nein|vielleicht",
        ),
        (
            "/rsvp x yes",
            "Die Nummer des Treffens muss eine Zahl sein, wie /meetings sie zeigt.\n"
            "So geht’s: /teilnehmen NR ja|nein|vielleicht",
        ),
    ],
)
async def test_bad_arguments_get_a_usage_answer_and_change_nothing(
    member: Chat, meetings: dict[str, Meeting], sessions: Sessions, line: str, answer: str
) -> None:
    assert await member.send(line) == answer
    assert await stored(sessions, select(Rsvp.member_id)) == []


async def test_calendar_file_holds_the_upcoming_meetings(
    member: Chat, meetings: dict[str, Meeting]
) -> None:
    reply = await member.reply("/calendar")
    assert "Hier sind 2 Treffen für Ihren Kalender." in reply.text
    [attachment] = reply.attachments
    assert (attachment.filename, attachment.mime_type) == ("meetings.ics", "text/calendar")
    events = Calendar.from_ical(attachment.data).walk("VEVENT")
    assert [str(event["summary"]) for event in events] == [
        "Klimafrühstück <Mobilität> & mehr",
        "Online-Sprechstunde",
    ]
    assert events[0].decoded("dtstart") == NOW + dt.timedelta(days=7)
    assert str(events[1]["url"]) == "https://example.org/call?x=1&y=2"


async def test_english_after_switching_language(
    member: Chat, meetings: dict[str, Meeting]
) -> None:
    await member.send("/language en")
    text = await member.send("/meetings")
    assert text.startswith("Upcoming meetings (1/1)")
    assert (
        "🗓 Wed, Dec 2, 2026, 11:00\u202fAM – 2:00\u202fPM" in text or "🗓 Wed, Dec 2, 2026" in text
    )


async def test_a_page_past_the_end_shows_the_last_page(
    member: Chat, meetings: dict[str, Meeting]
) -> None:
    text = await member.send("/meetings #2")
    assert text.startswith("Nächste Treffen (1/1)")
    assert "Online-Sprechstunde #3" in text
    assert await member.send("/meetings #9999") == text


async def test_meeting_without_a_number_asks_which(
    member: Chat, meetings: dict[str, Meeting]
) -> None:
    text = await member.send("/meeting")
    assert text.startswith(
        "Welches Treffen? Senden Sie /termin NR oder tippen Sie auf einen Knopf.\n"
        "• Klimafrühstück <Mobilität> & mehr #2 – Mi., 2. Dez. 2026, 11:00 Uhr\n"
        "• Online-Sprechstunde #3 – "
    )
    assert buttons(member.last) == ["meeting:2", "meeting:3"]
    assert "Tagesordnung\nPendeln" in to_plain((await member.press("#2")).text)


async def test_meeting_without_a_number_and_nothing_planned(member: Chat) -> None:
    assert await member.send("/meeting") == "Zurzeit sind keine Treffen geplant."


async def test_the_list_shows_each_members_own_answer(
    member: Chat, meetings: dict[str, Meeting]
) -> None:
    await member.send("/rsvp 2 ja")
    text = await member.send("/meetings")
    assert "👥 Zusagen: 1 · vielleicht: 0\nIhre Antwort: zugesagt" in text
    assert "Online-Sprechstunde #3" in text
    assert text.endswith("Sie haben noch nicht geantwortet.")
    # Someone else asking right after sees their own answers, not the first member's.
    other = Chat(member.dispatcher, "other")
    theirs = await other.send("/meetings")
    assert "Ihre Antwort" not in theirs
    assert theirs.count("Sie haben noch nicht geantwortet.") == 2
    await other.send("/rsvp 3 nein")
    assert "Ihre Antwort: abgesagt" in await other.send("/meetings")


@pytest.mark.parametrize(
    ("language", "label", "thanks"),
    [
        ("de", "Ja", "Danke! Sie nehmen an Klimafrühstück <Mobilität> & mehr teil."),
        ("en", "Yes", "Thank you! You attend Klimafrühstück <Mobilität> & mehr."),
    ],
)
async def test_a_pressed_button_is_answered_in_the_members_language(
    member: Chat, meetings: dict[str, Meeting], language: str, label: str, thanks: str
) -> None:
    await member.send(f"/language {language}")
    await member.send("/meeting 2")
    reply = await member.press(label)
    assert to_plain(reply.text).startswith(thanks)


@pytest.mark.parametrize(
    ("command", "answer", "stored_answer"),
    [
        ("zusage", "ja", Answer.YES),
        ("teilnehmen", "vielleicht", Answer.MAYBE),
        ("rsvp", "nein", Answer.NO),
        ("teilnehmen", "yes", Answer.YES),
    ],
)
@pytest.mark.usefixtures("meetings")
async def test_german_commands_and_answers_round_trip_through_a_button(
    member: Chat,
    sessions: Sessions,
    command: str,
    answer: str,
    stored_answer: Answer,
) -> None:
    action = Button("✅", command, f"2 {answer}").action
    assert action == f"{command}:2:{answer}"
    name, args = parse_action(action)
    reply = await member.send(f"/{name} {args}")
    assert reply.startswith(("Danke!", "Notiert:"))
    assert await stored(sessions, select(Rsvp.meeting_id, Rsvp.answer)) == [(2, stored_answer)]


@pytest.mark.parametrize("line", ["/treffen", "/termine", "/meetings"])
async def test_the_list_answers_to_its_german_names(
    member: Chat, meetings: dict[str, Meeting], line: str
) -> None:
    assert (await member.send(line)).startswith("Nächste Treffen (1/1)")


async def test_one_meeting_answers_to_its_german_name(
    member: Chat, meetings: dict[str, Meeting]
) -> None:
    assert await member.send("/termin 2") == await member.send("/meeting 2")
    calendar = await member.reply("/kalender 2")
    assert calendar.attachments[0].filename == "meeting-2.ics"


async def _past(session: AsyncSession, count: int) -> None:
    for month in range(1, count + 1):
        starts = dt.datetime(2026, month, 10, 13, tzinfo=dt.UTC)
        await add_meeting(session, f"Rückblick {month}", starts)
    await session.commit()


@pytest.mark.parametrize("line", ["/meetings past", "/treffen vergangen", "/termine Vergangen"])
async def test_past_meetings_newest_first(member: Chat, session: AsyncSession, line: str) -> None:
    await _past(session, 3)
    await add_meeting(session, "Demnächst", NOW + dt.timedelta(days=3))
    await session.commit()

    text = await member.send(line)

    assert text.startswith(
        "Vergangene Treffen (1/1)\n\nRückblick 3 #3\nDieses Treffen ist vorbei."
    )
    assert text.index("Rückblick 3") < text.index("Rückblick 2") < text.index("Rückblick 1")
    assert "Demnächst" not in text
    assert "Ihre Antwort" not in text
    assert buttons(member.last) == ["meeting:3", "meeting:2", "meeting:1"]


async def test_past_meetings_are_paged(member: Chat, session: AsyncSession) -> None:
    await _past(session, 7)

    first = await member.send("/treffen vergangen")
    second = to_plain((await member.press("Weiter")).text)

    assert first.startswith("Vergangene Treffen (1/2)")
    assert "Rückblick 7 #7" in first
    assert "Rückblick 2 #2" not in first
    assert second.startswith("Vergangene Treffen (2/2)")
    assert "Rückblick 2 #2" in second
    assert "Rückblick 1 #1" in second
    assert buttons(member.last)[-1] == "meetings:past:#1"


async def test_no_past_meetings_and_a_wrong_word(member: Chat) -> None:
    assert await member.send("/meetings past") == "Es ist noch kein Treffen vorbei."
    assert await member.send("/meetings gestern") == (
        "Senden Sie /treffen für das, was ansteht, oder /treffen vergangen für das, "
        "was vorbei ist.\nSo geht’s: /treffen [vergangen]"
    )


async def _answered(dispatcher: Dispatcher, session: AsyncSession, capacity: int | None) -> int:
    """A meeting answered by five members, one of them a partner's representative."""
    meeting = await add_meeting(session, "Werkstattbesuch", NOW + dt.timedelta(days=5))
    meeting.capacity = capacity
    partner = await add_partner(session)
    await session.commit()
    for name, answer in (
        ("Anna", "ja"),
        ("Ben", "ja"),
        ("Cem", "ja"),
        ("Dora", "vielleicht"),
        ("Emil", "nein"),
    ):
        await Chat(dispatcher, name).send(f"/rsvp {meeting.id} {answer}")
    await session.execute(
        update(Member)
        .where(Member.id.in_(select(Identity.member_id).where(Identity.user_id == "Ben")))
        .values(partner_id=partner.id)
    )
    await session.commit()
    return meeting.id


async def test_a_coordinator_sees_who_answered_what(
    coordinator: Chat, dispatcher: Dispatcher, session: AsyncSession
) -> None:
    meeting_id = await _answered(dispatcher, session, 2)

    text = await coordinator.send(f"/meeting {meeting_id}")

    assert "👥 2/2 Plätze · vielleicht: 1 · Warteliste: 1" in text
    assert text.endswith(
        "Zusagen (2)\n• Anna\n• Ben (WEIQIAO Germany GmbH)\n"
        "Vielleicht (1)\n• Dora\n"
        "Absagen (1)\n• Emil\n"
        "Warteliste (1)\n• 1. Cem"
    )
    assert buttons(coordinator.last)[-1] == f"attendees:{meeting_id}"


async def test_a_member_sees_counts_and_no_names(
    member: Chat, dispatcher: Dispatcher, session: AsyncSession
) -> None:
    meeting_id = await _answered(dispatcher, session, 2)

    text = await member.send(f"/meeting {meeting_id}")

    assert "👥 2/2 Plätze · vielleicht: 1 · Warteliste: 1" in text
    for name in ("Anna", "Ben", "Cem", "Dora", "Emil", "WEIQIAO"):
        assert name not in text
    assert f"attendees:{meeting_id}" not in buttons(member.last)
    refusal = await member.reply(f"/attendees {meeting_id}")
    assert "Koordination" in to_plain(refusal.text)
    assert refusal.attachments == ()


async def test_a_coordinator_in_a_group_shows_no_names(
    dispatcher: Dispatcher, session: AsyncSession
) -> None:
    meeting_id = await _answered(dispatcher, session, 2)
    in_group = Chat(dispatcher, "coordinator", is_group=True)

    text = await in_group.send(f"/meeting {meeting_id}")

    assert "👥 2/2 Plätze · vielleicht: 1 · Warteliste: 1" in text
    assert "Anna" not in text
    assert f"attendees:{meeting_id}" not in buttons(in_group.last)


async def test_the_attendee_list_is_a_csv_file(
    coordinator: Chat, dispatcher: Dispatcher, session: AsyncSession
) -> None:
    meeting_id = await _answered(dispatcher, session, 2)
    await coordinator.send(f"/meeting {meeting_id}")

    reply = await coordinator.press("Teilnehmendenliste")

    assert to_plain(reply.text) == "5 Antworten auf Werkstattbesuch."
    [attachment] = reply.attachments
    assert (attachment.filename, attachment.mime_type) == (
        f"teilnehmende-{meeting_id}.csv",
        "text/csv",
    )
    rows = list(csv.reader(io.StringIO(attachment.data.decode("utf-8-sig"))))
    # Answered at NOW, 10:00 UTC: 11:00 in Düsseldorf.
    assert rows == [
        ["Name", "Partner", "Antwort", "geantwortet am", "Wartelistenplatz"],
        ["Anna", "", "ja", "2026-11-25 11:00", ""],
        ["Ben", "WEIQIAO Germany GmbH", "ja", "2026-11-25 11:00", ""],
        ["Cem", "", "ja", "2026-11-25 11:00", "1"],
        ["Dora", "", "vielleicht", "2026-11-25 11:00", ""],
        ["Emil", "", "nein", "2026-11-25 11:00", ""],
    ]


async def test_capacity_from_chat_moves_people_up(
    coordinator: Chat, dispatcher: Dispatcher, session: AsyncSession, sessions: Sessions
) -> None:
    meeting_id = await _answered(dispatcher, session, 1)
    assert "1/1 Plätze · vielleicht: 1 · Warteliste: 2" in await coordinator.send(
        f"/meeting {meeting_id}"
    )

    text = await coordinator.send(f"/plaetze {meeting_id} 2")

    assert text.startswith(
        "Werkstattbesuch hat jetzt 2 Plätze.\n"
        "1 Mitglied ist von der Warteliste nachgerückt und wird benachrichtigt."
    )
    assert "👥 2/2 Plätze · vielleicht: 1 · Warteliste: 1" in text
    told = await stored(
        sessions,
        select(Identity.user_id)
        .join(Delivery, Delivery.member_id == Identity.member_id)
        .join(MeetingNotice, MeetingNotice.id == Delivery.notice_id)
        .where(MeetingNotice.kind == NoticeKind.MOVED_UP),
    )
    assert told == [("Ben",)]

    text = await coordinator.send(f"/capacity {meeting_id} aus")

    assert text.startswith("Werkstattbesuch hat jetzt keine Platzbegrenzung mehr.\n")
    assert "👥 Zusagen: 3 · vielleicht: 1" in text
    assert await stored(sessions, select(Meeting.capacity)) == [(None,)]


@pytest.mark.parametrize(
    "line",
    ["/plaetze 1", "/plaetze 1 0", "/plaetze 1 viele", "/plaetze 1 -3", "/plaetze 1 100001"],
)
async def test_bad_capacities_are_refused_and_change_nothing(
    coordinator: Chat, meetings: dict[str, Meeting], sessions: Sessions, line: str
) -> None:
    text = await coordinator.send(line)

    assert text.endswith("So geht’s: /plaetze NR ANZAHL|aus")
    assert await stored(sessions, select(Meeting.capacity).distinct()) == [(None,)]


async def test_capacity_is_for_coordinators(member: Chat, meetings: dict[str, Meeting]) -> None:
    assert "Koordin" in await member.send("/plaetze 2 10")


async def test_the_list_shows_a_members_place_on_the_waiting_list(
    dispatcher: Dispatcher, session: AsyncSession
) -> None:
    meeting_id = await _answered(dispatcher, session, 1)
    cem = Chat(dispatcher, "Cem")

    assert f"Werkstattbesuch #{meeting_id}" in (text := await cem.send("/meetings"))
    assert (
        "👥 1/1 Plätze · vielleicht: 1 · Warteliste: 2\nIhre Antwort: Warteliste, Platz 2" in text
    )

    await cem.send("/language en")
    english = await cem.send(f"/rsvp {meeting_id} yes")
    assert english.startswith("Werkstattbesuch is full: you are on the waiting list, place 2.")
    assert "👥 1/1 places · maybe: 1 · waiting list: 2" in english
