"""Reminders: a member's own offsets, and the reminder as it reaches them."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from bot import i18n
from bot.core import Obsolete
from bot.dispatch import Dispatcher
from bot.markup import to_plain
from handlers.reminders import reminder_message
from storage.models import Answer, Delivery, Identity, Member, Rsvp
from tests.helpers import NOW, Chat, Sessions, add_meeting, buttons, stored


async def test_reminders_show_set_and_turn_off(member: Chat, sessions: Sessions) -> None:
    assert await member.send("/reminders") == (
        "Erinnerungen: 7d, 1d, 2h vor jedem Treffen, das Sie nicht abgesagt haben.\n"
        "Sie bekommen sie noch nicht: /subscribe reminders schaltet sie ein.\n"
        "Ändern mit /reminders 1d 2h, abschalten mit /reminders off."
    )
    await member.send("/subscribe")
    assert (await member.send("/reminders 2h 1d 1h30m")).startswith(
        "Erinnerungen: 1d, 2h, 1h30m vor jedem Treffen, das Sie nicht abgesagt haben.\nÄndern mit"
    )
    assert await stored(sessions, select(Member.reminder_offsets)) == [("1440 120 90",)]
    assert (await member.send("/reminders aus")).startswith("Erinnerungen: aus.")
    assert await stored(sessions, select(Member.reminder_offsets)) == [("",)]


async def test_a_wrong_duration_is_named_and_changes_nothing(
    member: Chat, sessions: Sessions
) -> None:
    await member.send("/reminders 1d")
    assert await member.send("/reminders 2h <b>morgen</b>") == (
        "„<b>morgen</b>“ ist keine Dauer wie 1d, 2h oder 30m (höchstens fünf, bis 60 Tage).\n"
        "So geht’s: /erinnerungen [1d 2h | aus]"
    )
    assert (await member.send("/reminders 90d")).startswith("„90d“ ist keine Dauer")
    assert await stored(sessions, select(Member.reminder_offsets)) == [("1440",)]


async def test_a_reminder_says_how_long_until_the_start_and_offers_answers(
    member: Chat, sessions: Sessions
) -> None:
    await member.send("/start")
    async with sessions() as session:
        meeting = await add_meeting(session, "2. Netzwerktreffen", NOW + dt.timedelta(minutes=40))
        await session.commit()
        member_id = await session.scalar(select(Member.id))
        assert member_id is not None
        with i18n.using(i18n.localizer("de", member.dispatcher.timezone)):
            reply = await reminder_message(session, meeting.id, member_id, NOW)
    assert to_plain(reply.text) == (
        "⏰ Erinnerung: „2. Netzwerktreffen“ beginnt in 40 Minuten\n"
        "Mi., 25. Nov. 2026, 11:40–14:40 Uhr\nIHK Düsseldorf"
    )
    assert buttons(reply) == [
        f"rsvp:{meeting.id}:yes",
        f"rsvp:{meeting.id}:maybe",
        f"rsvp:{meeting.id}:no",
        f"meeting:{meeting.id}",
    ]


async def test_no_reminder_for_a_declined_cancelled_or_begun_meeting(
    member: Chat, sessions: Sessions
) -> None:
    await member.send("/start")
    async with sessions() as session:
        declined = await add_meeting(session, "Abgesagt", NOW + dt.timedelta(hours=2))
        cancelled = await add_meeting(session, "Fällt aus", NOW + dt.timedelta(hours=3))
        cancelled.cancelled_at = NOW
        begun = await add_meeting(session, "Läuft", NOW - dt.timedelta(minutes=1))
        member_id = await session.scalar(select(Member.id))
        assert member_id is not None
        session.add(Rsvp(meeting_id=declined.id, member_id=member_id, answer=Answer.NO))
        await session.commit()
        for meeting in (declined, cancelled, begun):
            with pytest.raises(Obsolete):
                await reminder_message(session, meeting.id, member_id, NOW)
    assert await stored(sessions, select(Delivery.id)) == []


async def test_a_member_on_the_waiting_list_is_reminded_that_they_wait(
    dispatcher: Dispatcher, sessions: Sessions
) -> None:
    async with sessions() as session:
        meeting = await add_meeting(session, "Werkstattbesuch", NOW + dt.timedelta(hours=2))
        meeting.capacity = 1
        await session.commit()
    for name in ("erste", "zweite"):
        await Chat(dispatcher, name).send(f"/rsvp {meeting.id} yes")
    members = dict(await stored(sessions, select(Identity.user_id, Identity.member_id)))
    texts = {}
    async with sessions() as session:
        with i18n.using(i18n.localizer("de", dispatcher.timezone)):
            for name, member_id in members.items():
                reply = await reminder_message(session, meeting.id, member_id, NOW)
                texts[name] = to_plain(reply.text)
    assert texts["erste"].endswith("IHK Düsseldorf")
    assert texts["zweite"].endswith("IHK Düsseldorf\nSie stehen auf der Warteliste, Platz 1.")
