"""Dispatch answers repeated requests from memory, and never with data that has changed."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core import Platform
from bot.dispatch import Dispatcher
from bot.markup import to_plain
from storage.meetings import OPEN_END
from storage.members import mark_unreachable
from storage.models import Identity, Member
from tests.helpers import NOW, Chat, Sessions, add_meeting, add_partner, add_tip, stored


@pytest.fixture
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """Every SQL statement the engine runs while the test does."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine.sync_engine, "before_cursor_execute", record)


@pytest.fixture
async def meetings(sessions: Sessions) -> None:
    async with sessions() as session:
        await add_meeting(session, "Klimapakt-Treffen", NOW + dt.timedelta(days=7), hours=3)
        await add_meeting(session, "Energie-Stammtisch", NOW + dt.timedelta(days=14), hours=2)
        await session.commit()


@pytest.fixture
async def tips(sessions: Sessions) -> None:
    async with sessions() as session:
        partner = await add_partner(session)
        await add_tip(session, partner, "LED-Hallenbeleuchtung", endorsements=3)
        await session.commit()


def people(dispatcher: Dispatcher, count: int) -> list[Chat]:
    return [Chat(dispatcher, f"person-{number}") for number in range(count)]


@pytest.mark.usefixtures("tips")
async def test_the_same_list_for_a_known_person_needs_no_database(
    dispatcher: Dispatcher, statements: list[str]
) -> None:
    first, second = people(dispatcher, 2)
    answer = await first.send("/tips")
    await second.send("/help")  # the bot knows the second person from now on
    statements.clear()
    assert await second.send("/tips") == answer
    assert statements == []


@pytest.mark.usefixtures("meetings")
async def test_the_meeting_list_with_one_s_own_answers_is_remembered_for_each_member(
    dispatcher: Dispatcher, statements: list[str]
) -> None:
    first, second = people(dispatcher, 2)
    await first.send("/rsvp 1 ja")
    answer = await first.send("/meetings")
    theirs = await second.send("/meetings")
    assert "Ihre Antwort: zugesagt" in answer
    assert "Ihre Antwort" not in theirs
    statements.clear()
    assert await first.send("/meetings") == answer
    assert await second.send("/meetings") == theirs
    assert statements == []


@pytest.mark.usefixtures("tips")
async def test_a_newcomer_gets_the_remembered_list_after_the_member_lookup(
    dispatcher: Dispatcher, statements: list[str], sessions: Sessions
) -> None:
    first, newcomer = people(dispatcher, 2)
    answer = await first.send("/tips")
    statements.clear()
    assert await newcomer.send("/tips") == answer
    assert not [statement for statement in statements if "tips" in statement]
    assert await stored(sessions, select(Member.display_name).order_by(Member.id)) == [
        ("person-0",),
        ("person-1",),
    ]


@pytest.mark.usefixtures("meetings")
async def test_people_writing_for_the_first_time_leave_the_others_remembered(
    dispatcher: Dispatcher, statements: list[str]
) -> None:
    first, *newcomers = people(dispatcher, 4)
    answer = await first.send("/meetings")
    for newcomer in newcomers:
        await newcomer.send("/meetings")
    statements.clear()
    assert await first.send("/meetings") == answer
    assert statements == []


@pytest.mark.usefixtures("meetings")
async def test_an_answer_given_is_counted_in_everyone_s_list(dispatcher: Dispatcher) -> None:
    first, second = people(dispatcher, 2)
    assert "Zusagen: 0" in await second.send("/meetings")
    await first.send("/rsvp 1 ja")
    assert "Zusagen: 1" in await second.send("/meetings")


@pytest.mark.usefixtures("meetings", "watched")
async def test_a_meeting_imported_by_another_process_is_listed_within_a_second(
    dispatcher: Dispatcher, other_process: Sessions
) -> None:
    (person,) = people(dispatcher, 1)
    assert "Neues Format" not in await person.send("/meetings")
    async with other_process() as session:
        await add_meeting(session, "Neues Format", NOW + dt.timedelta(days=1))
        await session.commit()
    for _ in range(50):
        if "Neues Format" in await person.send("/meetings"):
            break
        await asyncio.sleep(0.02)
    assert "Neues Format" in await person.send("/meetings")


@pytest.mark.usefixtures("meetings")
@pytest.mark.parametrize("hours", [1, None], ids=["with an end", "open-ended"])
async def test_a_meeting_leaves_the_list_the_moment_it_is_over(
    dispatcher: Dispatcher, sessions: Sessions, hours: int | None
) -> None:
    async with sessions() as session:
        meeting = await add_meeting(
            session, "Frühstück", NOW - dt.timedelta(minutes=59), hours=hours
        )
        await session.commit()
    over = (meeting.ends_at or meeting.starts_at + OPEN_END) + dt.timedelta(seconds=1)
    (person,) = people(dispatcher, 1)
    assert "Frühstück" in await person.send("/meetings")
    dispatcher.clock = lambda: over - dt.timedelta(seconds=2)
    assert "Frühstück" in await person.send("/meetings")
    dispatcher.clock = lambda: over
    listed = await person.send("/meetings")
    assert "Frühstück" not in listed
    assert "Klimapakt-Treffen" in listed


@pytest.mark.usefixtures("meetings")
async def test_each_language_gets_its_own_list(dispatcher: Dispatcher) -> None:
    german, english = people(dispatcher, 2)
    await english.send("/language en")
    assert "Upcoming meetings" in await english.send("/meetings")
    assert "Nächste Treffen" in await german.send("/meetings")
    await english.send("/language de")
    assert "Nächste Treffen" in await english.send("/meetings")


@pytest.mark.usefixtures("meetings")
async def test_a_new_name_is_stored_even_when_the_list_is_remembered(
    dispatcher: Dispatcher, sessions: Sessions
) -> None:
    (person,) = people(dispatcher, 1)
    await person.send("/meetings")
    person.sender = person.sender.__class__(person.sender.user_id, "Anna Beispiel", None)
    await person.send("/meetings")
    names = await stored(sessions, select(Member.display_name))
    assert names == [("Anna Beispiel",)]


@pytest.mark.usefixtures("meetings")
async def test_writing_again_makes_an_unreachable_person_reachable(
    dispatcher: Dispatcher, sessions: Sessions
) -> None:
    (person,) = people(dispatcher, 1)
    await person.send("/meetings")
    async with sessions() as session:
        await mark_unreachable(session, Platform.CONSOLE, "person-0", NOW)
        await session.commit()
    await person.send("/meetings")
    assert await stored(sessions, select(Identity.unreachable_since)) == [(None,)]


async def test_a_partner_s_new_tip_is_in_the_next_list(
    dispatcher: Dispatcher, sessions: Sessions
) -> None:
    (person,) = people(dispatcher, 1)
    async with sessions() as session:
        partner = await add_partner(session)
        await add_tip(session, partner, "LED-Hallenbeleuchtung", endorsements=3)
        await session.commit()
    assert "LED-Hallenbeleuchtung" in await person.send("/tips")
    async with sessions() as session:
        await add_tip(session, partner, "Abwärme nutzen", endorsements=9)
        await session.commit()
    assert "Abwärme nutzen" in await person.send("/tips")


@pytest.mark.usefixtures("meetings")
async def test_a_paging_button_edits_even_after_the_same_page_was_typed(
    dispatcher: Dispatcher, sessions: Sessions
) -> None:
    async with sessions() as session:
        for day in range(2, 12):
            await add_meeting(session, f"Treffen {day}", NOW + dt.timedelta(days=day, hours=1))
        await session.commit()
    (person,) = people(dispatcher, 1)
    typed = await person.reply("/meetings #2")
    assert not typed.edit_origin
    await person.reply("/meetings")
    pressed = await person.press("▶")
    assert pressed.edit_origin
    assert to_plain(pressed.text) == to_plain(typed.text)
