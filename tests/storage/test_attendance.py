"""Places and the waiting list: who gets a place, who waits, who moves up and is told."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from sqlalchemy import select

from bot import i18n
from bot.app import build_dispatcher
from bot.config import Config
from bot.dispatch import Dispatcher
from bot.markup import to_plain
from handlers.notices import notice_message
from storage.attendance import leave_meetings, waiting_list
from storage.db import create_reader_engine, open_database, session_factory
from storage.exchange import import_data, parse_import
from storage.exchange.values import local_text
from storage.models import Answer, Delivery, Identity, MeetingNotice, NoticeKind, Rsvp
from tests.helpers import NOW, Chat, Sessions, add_meeting, stored


async def _meeting(sessions: Sessions, capacity: int | None) -> int:
    async with sessions() as session:
        meeting = await add_meeting(session, "Werkstattbesuch", NOW + dt.timedelta(days=5))
        meeting.capacity = capacity
        await session.commit()
        return meeting.id


async def _member_ids(sessions: Sessions) -> dict[str, int]:
    return dict(await stored(sessions, select(Identity.user_id, Identity.member_id)))


async def _moved_up(sessions: Sessions) -> list[tuple[int, int]]:
    """Return (notice, member) for every moved-up notice queued so far."""
    return await stored(
        sessions,
        select(MeetingNotice.id, Delivery.member_id)
        .join(Delivery, Delivery.notice_id == MeetingNotice.id)
        .where(MeetingNotice.kind == NoticeKind.MOVED_UP)
        .order_by(Delivery.member_id),
    )


async def test_a_yes_beyond_capacity_waits_and_the_first_moves_up_when_a_place_is_free(
    dispatcher: Dispatcher, sessions: Sessions
) -> None:
    meeting_id = await _meeting(sessions, 2)
    answers = {}
    for name in ("anna", "ben", "cem", "dora"):
        answers[name] = await Chat(dispatcher, name).send(f"/rsvp {meeting_id} ja")
    assert answers["ben"].startswith("Danke! Sie nehmen an Werkstattbesuch teil.")
    assert answers["cem"].startswith(
        "Werkstattbesuch ist ausgebucht: Sie stehen auf der Warteliste, Platz 1."
    )
    assert answers["dora"].startswith(
        "Werkstattbesuch ist ausgebucht: Sie stehen auf der Warteliste, Platz 2."
    )
    assert "👥 2/2 Plätze · vielleicht: 0 · Warteliste: 2" in answers["dora"]
    assert await _moved_up(sessions) == []

    # Anna withdraws: Cem, first on the list, has her place, and the news is queued for him.
    await Chat(dispatcher, "anna").send(f"/rsvp {meeting_id} nein")

    members = await _member_ids(sessions)
    [(notice_id, told)] = await _moved_up(sessions)
    assert told == members["cem"]
    # Moving up is no new answer: Cem still answered when he did.
    assert await stored(
        sessions, select(Rsvp.answered_at).where(Rsvp.member_id == members["cem"])
    ) == [(NOW,)]
    async with sessions() as session:
        assert await waiting_list(session, meeting_id) == [members["dora"]]
        with i18n.using(i18n.localizer("de", dispatcher.timezone)):
            reply = await notice_message(session, notice_id, members["cem"])
    assert to_plain(reply.text).startswith(
        f"✅ Ein Platz ist frei geworden: Sie nehmen an Werkstattbesuch #{meeting_id} teil.\n"
    )
    assert "Ihre Antwort: Warteliste, Platz 1" in await Chat(dispatcher, "dora").send(
        f"/meeting {meeting_id}"
    )
    assert "Ihre Antwort: zugesagt" in await Chat(dispatcher, "cem").send(f"/meeting {meeting_id}")


async def test_a_maybe_gives_the_place_up_too(dispatcher: Dispatcher, sessions: Sessions) -> None:
    meeting_id = await _meeting(sessions, 1)
    await Chat(dispatcher, "anna").send(f"/rsvp {meeting_id} ja")
    await Chat(dispatcher, "ben").send(f"/rsvp {meeting_id} ja")

    await Chat(dispatcher, "anna").send(f"/rsvp {meeting_id} vielleicht")

    members = await _member_ids(sessions)
    assert [member for _notice, member in await _moved_up(sessions)] == [members["ben"]]
    rows = await stored(sessions, select(Rsvp.member_id, Rsvp.answer, Rsvp.waiting_since))
    assert sorted(rows) == sorted(
        [(members["anna"], Answer.MAYBE, None), (members["ben"], Answer.YES, None)]
    )


async def test_saying_yes_again_keeps_the_place_on_the_list(
    dispatcher: Dispatcher, sessions: Sessions
) -> None:
    meeting_id = await _meeting(sessions, 1)
    await Chat(dispatcher, "anna").send(f"/rsvp {meeting_id} ja")
    await Chat(dispatcher, "ben").send(f"/rsvp {meeting_id} ja")
    await Chat(dispatcher, "cem").send(f"/rsvp {meeting_id} ja")

    again = await Chat(dispatcher, "cem").send(f"/rsvp {meeting_id} ja")

    assert "Warteliste, Platz 2." in again
    assert await _moved_up(sessions) == []


async def test_a_member_who_leaves_passes_the_place_on(
    dispatcher: Dispatcher, sessions: Sessions
) -> None:
    meeting_id = await _meeting(sessions, 1)
    await Chat(dispatcher, "anna").send(f"/rsvp {meeting_id} ja")
    await Chat(dispatcher, "ben").send(f"/rsvp {meeting_id} ja")
    members = await _member_ids(sessions)

    async with sessions() as session:
        await leave_meetings(session, members["anna"], NOW)
        await session.commit()

    assert [member for _notice, member in await _moved_up(sessions)] == [members["ben"]]
    rows = await stored(sessions, select(Rsvp.member_id, Rsvp.waiting_since))
    assert rows == [(members["ben"], None)]


async def test_a_place_in_a_meeting_that_is_over_is_given_to_nobody(
    dispatcher: Dispatcher, sessions: Sessions
) -> None:
    meeting_id = await _meeting(sessions, 1)
    await Chat(dispatcher, "anna").send(f"/rsvp {meeting_id} ja")
    await Chat(dispatcher, "ben").send(f"/rsvp {meeting_id} ja")
    members = await _member_ids(sessions)

    async with sessions() as session:
        await leave_meetings(session, members["anna"], NOW + dt.timedelta(days=30))
        await session.commit()

    assert await _moved_up(sessions) == []


async def test_a_capacity_raised_by_an_import_moves_people_up(
    dispatcher: Dispatcher, sessions: Sessions
) -> None:
    meeting_id = await _meeting(sessions, 1)
    for name in ("anna", "ben", "cem"):
        await Chat(dispatcher, name).send(f"/rsvp {meeting_id} ja")
    starts = local_text(NOW + dt.timedelta(days=5), dispatcher.timezone)
    text = (
        f"meetings:\n  - title: Werkstattbesuch\n    starts: {starts}\n"
        "    location: IHK Düsseldorf\n    capacity: 2\n"
    )

    async with sessions() as session:
        await import_data(session, parse_import(text, dispatcher.timezone), now=NOW)
        await session.commit()

    members = await _member_ids(sessions)
    assert [member for _notice, member in await _moved_up(sessions)] == [members["ben"]]
    async with sessions() as session:
        assert await waiting_list(session, meeting_id) == [members["cem"]]


async def test_answers_that_race_in_two_processes_never_overfill_the_meeting(
    tmp_path: Path, sessions: Sessions
) -> None:
    # Two bot processes on one database file: each its own engines and dispatcher.
    url = f"sqlite+aiosqlite:///{tmp_path / 'klimabot.db'}"
    engines = [await open_database(url) for _process in range(2)]
    readers = [create_reader_engine(engine) for engine in engines]
    try:
        dispatchers = []
        for engine, reader in zip(engines, readers, strict=True):
            assert reader is not None
            one = build_dispatcher(
                Config(), session_factory(engine), readers=session_factory(reader)
            )
            one.clock = lambda: NOW
            dispatchers.append(one)
        meeting_id = await _meeting(sessions, 5)
        chats = [Chat(dispatchers[i % 2], f"m{i}") for i in range(20)]

        replies = await asyncio.gather(*(chat.send(f"/rsvp {meeting_id} ja") for chat in chats))
        for one in dispatchers:
            await one.settled()

        rows = await stored(
            sessions, select(Rsvp.waiting_since).where(Rsvp.meeting_id == meeting_id)
        )
        assert len(rows) == 20
        assert sum(1 for (waiting,) in rows if waiting is None) == 5
        # Each was told the place they hold: the order they got the lock in.
        told = {
            chat.sender.user_id: int(reply.split("Platz ")[1].split(".")[0])
            for chat, reply in zip(chats, replies, strict=True)
            if "Warteliste" in reply
        }
        members = await _member_ids(sessions)
        async with sessions() as session:
            waiting = await waiting_list(session, meeting_id)
        assert sorted(told.values()) == list(range(1, 16))
        assert {name: waiting.index(members[name]) + 1 for name in told} == told
    finally:
        for reader in readers:
            if reader is not None:
                await reader.dispose()
        for engine in engines:
            await engine.dispose()
