"""Calendar files as calendar apps read them, and the address of each member's feed."""

from __future__ import annotations

import datetime as dt
import os
import re
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar, Event
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import build_dispatcher
from bot.config import Config
from bot.core import Platform, Reply
from bot.dispatch import Dispatcher
from bot.markup import to_plain
from storage.db import open_database, session_factory
from storage.models import Meeting, Member, NoticeKind
from storage.notices import queue_notice
from tests.helpers import NOW, Chat, Sessions, add_meeting, stored

BERLIN = "Europe/Berlin"
FEED = "https://bot.example.org/klima/calendar/"


def parsed(reply: Reply) -> Calendar:
    """Return the reply's calendar file as a calendar app reads it."""
    [attachment] = reply.attachments
    assert attachment.mime_type == "text/calendar"
    return Calendar.from_ical(attachment.data)


def events(reply: Reply) -> list[Event]:
    """Return the events of the reply's calendar file."""
    return parsed(reply).events


def one_event(reply: Reply) -> Event:
    [event] = events(reply)
    return event


def feed_link(text: str) -> str:
    [address] = re.findall(r"https://\S+\.ics", text)
    return str(address)


@pytest.fixture
async def meeting(session: AsyncSession) -> Meeting:
    found = await add_meeting(
        session, "2. Netzwerktreffen", NOW + dt.timedelta(days=7), agenda="Begrüßung"
    )
    await session.commit()
    return found


async def configured(
    sessions: Sessions, readers: Sessions, settings: dict[str, Any]
) -> Dispatcher:
    dispatcher = build_dispatcher(Config.model_validate(settings), sessions, readers=readers)
    dispatcher.clock = lambda: NOW
    return dispatcher


@pytest.fixture
async def with_feed(sessions: Sessions, readers: Sessions) -> AsyncIterator[Dispatcher]:
    """A dispatcher whose bot serves the private feeds."""
    dispatcher = await configured(
        sessions, readers, {"calendar": {"public_url": "https://bot.example.org/klima"}}
    )
    yield dispatcher
    await dispatcher.settled()


async def test_a_meeting_keeps_its_uid_and_status_across_exports(
    member: Chat, meeting: Meeting
) -> None:
    first = await member.reply("/calendar")
    second = await member.reply(f"/calendar {meeting.id}")
    assert parsed(first)["method"] == "PUBLISH"
    assert one_event(first)["uid"] == one_event(second)["uid"] == meeting.uid
    assert meeting.uid.endswith("@klimabot")
    event = one_event(first)
    assert event["sequence"] == 0
    assert event["status"] == "CONFIRMED"
    assert event.decoded("dtstamp") == NOW  # when the file was made
    assert event.decoded("last-modified") == meeting.created_at.replace(microsecond=0)


async def test_the_uid_differs_between_two_databases(
    member: Chat, meeting: Meeting, tmp_path: Path
) -> None:
    other = await open_database(f"sqlite+aiosqlite:///{tmp_path / 'other.db'}")
    try:
        async with session_factory(other)() as session:
            twin = await add_meeting(
                session, "2. Netzwerktreffen", NOW + dt.timedelta(days=7), agenda="Begrüßung"
            )
            await session.commit()
        dispatcher = build_dispatcher(Config(), session_factory(other))
        dispatcher.clock = lambda: NOW
        elsewhere = await Chat(dispatcher, "member").reply("/calendar")
        await dispatcher.settled()
    finally:
        await other.dispose()
    assert twin.id == meeting.id
    here = one_event(await member.reply("/calendar"))
    assert one_event(elsewhere)["uid"] == twin.uid != here["uid"]


async def test_a_change_raises_the_sequence_and_the_last_modified(
    member: Chat, meeting: Meeting, sessions: Sessions
) -> None:
    moved = NOW + dt.timedelta(days=8)
    changed_at = (meeting.created_at + dt.timedelta(minutes=5)).replace(microsecond=0)
    async with sessions() as session:
        stored_meeting = await session.get(Meeting, meeting.id)
        assert stored_meeting is not None
        stored_meeting.starts_at, stored_meeting.ends_at = moved, moved + dt.timedelta(hours=3)
        await queue_notice(session, meeting.id, NoticeKind.CHANGED, [], changed_at)
        await session.commit()
    event = one_event(await member.reply(f"/calendar {meeting.id}"))
    assert event["uid"] == meeting.uid
    assert event["sequence"] == 1
    assert event.decoded("dtstart") == moved
    assert event.decoded("last-modified") == changed_at


async def test_a_cancelled_meeting_is_exported_as_cancelled_without_alarm(
    member: Chat, meeting: Meeting, sessions: Sessions
) -> None:
    async with sessions() as session:
        stored_meeting = await session.get(Meeting, meeting.id)
        assert stored_meeting is not None
        stored_meeting.cancelled_at = NOW
        await session.commit()
    event = one_event(await member.reply(f"/calendar {meeting.id}"))
    assert event["status"] == "CANCELLED"
    assert event["sequence"] == 1
    assert event["summary"] == "Abgesagt: 2. Netzwerktreffen"
    assert str(event["description"]).startswith("Dieses Treffen ist abgesagt.")
    assert event.walk("VALARM") == []
    # The list of what is ahead no longer holds it.
    assert await member.send("/calendar") == "Zurzeit sind keine Treffen geplant."


async def test_the_alarm_is_at_the_members_first_offset_and_gone_when_off(
    member: Chat, meeting: Meeting
) -> None:
    [alarm] = one_event(await member.reply("/calendar")).walk("VALARM")
    assert alarm["action"] == "DISPLAY"
    assert alarm["description"] == "2. Netzwerktreffen"
    assert alarm.decoded("trigger") == -dt.timedelta(days=7)  # the network's 7d, 1d, 2h
    await member.send("/reminders 2h 1d")
    [alarm] = one_event(await member.reply("/calendar")).walk("VALARM")
    assert alarm.decoded("trigger") == -dt.timedelta(days=1)
    await member.send("/reminders off")
    assert one_event(await member.reply("/calendar")).walk("VALARM") == []


async def test_the_online_link_is_in_the_location_too(member: Chat, session: AsyncSession) -> None:
    url = "https://meet.example.org/klima?room=1&pin=2"
    await add_meeting(
        session, "Sprechstunde", NOW + dt.timedelta(days=2), location=None, online_url=url
    )
    await add_meeting(
        session, "Hybrid", NOW + dt.timedelta(days=3), location="IHK Düsseldorf", online_url=url
    )
    await add_meeting(session, "Vor Ort", NOW + dt.timedelta(days=4))
    await session.commit()
    online, hybrid, in_person = events(await member.reply("/calendar"))
    assert online["location"] == url
    assert online["url"] == url
    assert f"Online: {url}" in str(online["description"])
    assert hybrid["location"] == f"IHK Düsseldorf – {url}"
    assert in_person["location"] == "IHK Düsseldorf"
    assert "url" not in in_person


async def test_no_end_is_invented_without_a_default_duration(
    member: Chat, session: AsyncSession
) -> None:
    await add_meeting(session, "Offenes Ende", NOW + dt.timedelta(days=2), hours=None)
    await add_meeting(session, "Mit Ende", NOW + dt.timedelta(days=3), hours=2)
    await session.commit()
    open_end, fixed = events(await member.reply("/calendar"))
    assert "dtend" not in open_end
    assert "duration" not in open_end
    assert open_end["description"] == "Das Ende steht nicht fest."
    assert fixed.decoded("dtend") == NOW + dt.timedelta(days=3, hours=2)
    assert "description" not in fixed


async def test_the_configured_duration_fills_an_open_end_and_says_so(
    sessions: Sessions, readers: Sessions, session: AsyncSession
) -> None:
    await add_meeting(session, "Offenes Ende", NOW + dt.timedelta(days=2), hours=None)
    await session.commit()
    dispatcher = await configured(sessions, readers, {"meetings": {"default_duration": "1h30m"}})
    event = one_event(await Chat(dispatcher, "member").reply("/calendar"))
    await dispatcher.settled()
    assert event.decoded("dtend") - event.decoded("dtstart") == dt.timedelta(minutes=90)
    assert event["description"] == "Das Ende steht nicht fest."


@pytest.mark.parametrize(
    ("local", "offset"),
    [
        (
            dt.datetime(2027, 3, 28, 14, tzinfo=ZoneInfo(BERLIN)),
            dt.timedelta(hours=2),
        ),  # the last Sunday of March
        (
            dt.datetime(2027, 3, 27, 14, tzinfo=ZoneInfo(BERLIN)),
            dt.timedelta(hours=1),
        ),  # the day before
        (
            dt.datetime(2027, 10, 31, 14, tzinfo=ZoneInfo(BERLIN)),
            dt.timedelta(hours=1),
        ),  # the last one of October
    ],
)
async def test_times_carry_the_networks_zone_across_daylight_saving(
    member: Chat, session: AsyncSession, local: dt.datetime, offset: dt.timedelta
) -> None:
    starts = local.astimezone(dt.UTC)
    assert starts.hour == 14 - offset.seconds // 3600
    await add_meeting(session, "Netzwerktreffen", starts, hours=3)
    await session.commit()
    calendar = parsed(await member.reply("/calendar"))
    [event] = calendar.walk("VEVENT")
    assert event["dtstart"].params["TZID"] == BERLIN
    assert event["dtstart"].to_ical() == local.strftime("%Y%m%dT%H%M%S").encode()
    assert event.decoded("dtstart") == starts
    assert event.decoded("dtend") == starts + dt.timedelta(hours=3)
    # The file's own VTIMEZONE (not just the name) gives the right offset that day.
    [zone] = calendar.timezones
    assert zone["tzid"] == BERLIN
    assert local.replace(tzinfo=zone.to_tz()).utcoffset() == offset
    assert calendar["x-wr-timezone"] == BERLIN


async def test_the_library_escapes_commas_semicolons_newlines_and_unicode(
    member: Chat, session: AsyncSession
) -> None:
    title = "Wärme, Kälte; Strom\nzweite Zeile – 🌍🔥 Ünïcödé e\u0301 \u202eאבג\u202c " + "ß" * 60
    place = "Haus der Wirtschaft, Raum 1; Eingang B\\Hof"
    agenda = "1. Begrüßung, Kaffee\r\n2. Bericht; Diskussion\n\n3. 👍"
    await add_meeting(session, title, NOW + dt.timedelta(days=2), location=place, agenda=agenda)
    await session.commit()
    reply = await member.reply("/calendar")
    raw = reply.attachments[0].data
    assert b"Haus der Wirtschaft\\, Raum 1\\; Eingang B\\\\Hof" in raw.replace(b"\r\n ", b"")
    assert all(len(line) <= 75 for line in raw.split(b"\r\n"))  # folded by octets
    raw.decode("utf-8")  # and never inside a character
    event = one_event(reply)
    assert event["summary"] == title
    assert event["location"] == place
    assert str(event["description"]).startswith("1. Begrüßung, Kaffee")


async def test_no_temporary_file_or_folder_is_made(
    member: Chat, meeting: Meeting, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    before = sorted(os.listdir(tmp_path))
    assert events(await member.reply("/calendar"))
    assert events(await member.reply(f"/calendar {meeting.id}"))
    assert os.listdir(scratch) == []
    assert sorted(os.listdir(tmp_path)) == before


async def test_english_texts_in_the_file_for_an_english_member(
    member: Chat, session: AsyncSession
) -> None:
    await add_meeting(session, "Open end", NOW + dt.timedelta(days=2), hours=None)
    await session.commit()
    await member.send("/language en")
    reply = await member.reply("/calendar")
    assert to_plain(reply.text) == "Here is 1 meeting for your calendar."
    assert one_event(reply)["description"] == "The end time is not fixed."


async def test_without_a_feed_the_reply_offers_only_the_file(
    member: Chat, meeting: Meeting, sessions: Sessions
) -> None:
    assert await member.send("/calendar") == "Hier ist 1 Treffen für Ihren Kalender."
    assert await member.send("/calendar reset") == "Dieser Bot bietet keinen Kalender-Feed an."
    assert await stored(sessions, select(Member.calendar_token)) == [(None,)]


async def test_the_feed_address_is_made_once_and_reset_on_request(
    with_feed: Dispatcher, meeting: Meeting, sessions: Sessions
) -> None:
    anna = Chat(with_feed, "anna")
    reply = await anna.reply("/calendar")
    text = to_plain(reply.text)
    assert text.startswith(
        "Hier ist 1 Treffen für Ihren Kalender.\n\n📅 Ihr privater Kalender-Feed: Abonnieren Sie"
    )
    assert text.endswith(
        "Behalten Sie sie für sich; /kalender neu gibt Ihnen eine neue und schaltet diese ab."
    )
    assert events(reply)
    first = feed_link(text)
    [(token,)] = await stored(sessions, select(Member.calendar_token))
    assert first == f"{FEED}{token}.ics"
    assert len(token) >= 40
    assert feed_link(await anna.send("/kalender")) == first  # made once

    answer = await anna.send("/kalender neu")
    assert answer.startswith(
        "Ihr Kalender-Feed hat eine neue Adresse; die alte funktioniert nicht mehr:\n"
    )
    second = feed_link(answer)
    assert second != first
    assert feed_link(await anna.send("/calendar")) == second
    assert feed_link(await anna.send("/calendar reset")) not in (first, second)


async def test_members_get_addresses_of_their_own(with_feed: Dispatcher, meeting: Meeting) -> None:
    anna = feed_link(await Chat(with_feed, "anna").send("/calendar"))
    ben = feed_link(await Chat(with_feed, "ben").send("/calendar"))
    assert anna != ben


async def test_the_feed_address_never_goes_into_a_group(
    with_feed: Dispatcher, meeting: Meeting, sessions: Sessions
) -> None:
    group = Chat(with_feed, "anna", is_group=True)
    assert await group.send("/calendar") == "Hier ist 1 Treffen für Ihren Kalender."
    assert await group.send("/calendar reset") == (
        "Bitte senden Sie das in einem privaten Chat mit mir: "
        "Die Adresse des Feeds ist persönlich."
    )
    assert await stored(sessions, select(Member.calendar_token)) == [(None,)]


async def test_no_meetings_still_gives_the_feed(with_feed: Dispatcher) -> None:
    text = await Chat(with_feed, "anna").send("/calendar")
    assert text.startswith("Zurzeit sind keine Treffen geplant.\n\n📅 Ihr privater Kalender-Feed")
    assert feed_link(text).startswith(FEED)


async def test_a_wrong_meeting_number_is_answered(member: Chat, meeting: Meeting) -> None:
    assert await member.send("/calendar 99") == (
        "Es gibt kein Treffen #99. /meetings zeigt die Treffen."
    )
    assert (await member.send("/calendar morgen")).endswith("So geht’s: /kalender [NR|neu]")


async def test_linking_accounts_keeps_a_feed_address(
    with_feed: Dispatcher, meeting: Meeting, sessions: Sessions
) -> None:
    telegram = Chat(with_feed, "4242", platform=Platform.TELEGRAM)
    matrix = Chat(with_feed, "@anna:example.org", platform=Platform.MATRIX)
    await telegram.send("/start")
    address = feed_link(await matrix.send("/calendar"))
    code = (await telegram.send("/link")).split("Verbindungscode: ")[1].split("\n")[0]
    assert (await matrix.send(f"/link {code}")).startswith("Verbunden:")
    assert feed_link(await telegram.send("/calendar")) == address
    assert feed_link(await matrix.send("/calendar")) == address
    assert len(await stored(sessions, select(Member.calendar_token))) == 1
