"""Meetings as a member sees them: the list, one meeting, answers, calendar files."""

import datetime as dt

import pytest
from icalendar import Calendar
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.markup import to_plain
from storage.models import Answer, Meeting, Rsvp
from tests.helpers import NOW, Chat, Sessions, add_meeting, buttons, stored


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
    assert "1. Netzwerktreffen #1\n🗓 Di., 6. Dez. 2022, 14:00–17:00 Uhr" in text
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
            "/meeting",
            "Die Nummer des Treffens muss eine Zahl sein, wie /meetings sie zeigt.\n"
            "So geht’s: /meeting NR",
        ),
        (
            "/meeting abc",
            "Die Nummer des Treffens muss eine Zahl sein, wie /meetings sie zeigt.\n"
            "So geht’s: /meeting NR",
        ),
        ("/meeting 99999", "Es gibt kein Treffen #99999. /meetings zeigt die Treffen."),
        (
            "/meeting 99999999999999999999",
            "Die Nummer des Treffens muss eine Zahl sein, "
            "wie /meetings sie zeigt.\nSo geht’s: /meeting NR",
        ),
        (
            "/rsvp 2",
            "Bitte geben Sie die Nummer des Treffens und Ihre Antwort an.\n"
            "So geht’s: /rsvp NR ja|nein|vielleicht",
        ),
        (
            "/rsvp 2 klar",
            "Bitte antworten Sie mit ja, nein oder vielleicht.\n"
            "So geht’s: /rsvp NR ja|nein|vielleicht",
        ),
        (
            "/rsvp x yes",
            "Die Nummer des Treffens muss eine Zahl sein, wie /meetings sie zeigt.\n"
            "So geht’s: /rsvp NR ja|nein|vielleicht",
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
