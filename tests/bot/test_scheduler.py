"""The reminder planner's rounds: each reminder queued once, also by later rounds and restarts."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import scheduler
from bot.scheduler import ReminderPlanner
from storage.dialogs import save_dialog
from storage.models import Delivery, DeliveryState, Dialog, Meeting, MeetingSeries
from storage.reminders import Planned
from tests.storage.test_reminders import RULES, berlin, meeting, member


class Clock:
    """A wall clock the test moves."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


async def reminders(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[int, str, str]]:
    async with sessions() as session:
        result = await session.execute(
            select(Delivery.member_id, Delivery.offset_minutes, Delivery.state).order_by(
                Delivery.member_id, Delivery.offset_minutes.desc()
            )
        )
        return [(member_id, str(offset), str(state)) for member_id, offset, state in result]


async def test_later_rounds_and_a_restart_queue_each_reminder_once(
    sessions: async_sessionmaker[AsyncSession], readers: async_sessionmaker[AsyncSession]
) -> None:
    start = berlin(2027, 3, 15, 14, 0)
    async with sessions() as session:
        anna = await member(session, "1")
        await meeting(session, start)
        await session.commit()
    # The planner started 3 h before the meeting: the week's and the day's reminders were
    # missed for good; the two hours' is not due yet.
    clock = Clock(start - dt.timedelta(hours=3))
    planner = ReminderPlanner(sessions, RULES, clock=clock, readers=readers)
    first = await planner.plan_once()
    assert (first.queued, first.expired) == (0, 2)
    clock.now = start - dt.timedelta(hours=2, seconds=30)  # the next one falls due now
    assert (await planner.plan_once()).queued == 1
    clock.now += dt.timedelta(seconds=10)
    assert (await planner.plan_once()).queued == 0
    # A new process looks at everything again and finds nothing missing.
    restarted = ReminderPlanner(sessions, RULES, clock=clock, readers=readers)
    assert (await restarted.plan_once()).queued == 0
    assert await reminders(sessions) == [
        (anna.id, "10080", DeliveryState.EXPIRED),
        (anna.id, "1440", DeliveryState.EXPIRED),
        (anna.id, "120", DeliveryState.PENDING),
    ]


async def test_a_member_who_subscribes_meanwhile_is_reminded_by_the_running_planner(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    start = berlin(2027, 3, 15, 14, 0)
    async with sessions() as session:
        await meeting(session, start)
        await session.commit()
    clock = Clock(start - dt.timedelta(hours=5))
    planner = ReminderPlanner(sessions, RULES, clock=clock)  # no readers: writes in one
    assert (await planner.plan_once()).queued == 0  # nobody subscribed yet
    async with sessions() as session:
        ben = await member(session, "2")
        await session.commit()
    clock.now = start - dt.timedelta(hours=2, seconds=30)
    assert (await planner.plan_once()).queued == 1
    async with sessions() as session:
        found = await session.scalar(select(Delivery.member_id))
    assert found == ben.id


async def test_a_backlog_of_missed_reminders_is_recorded_in_parts_after_the_sendable(
    sessions: async_sessionmaker[AsyncSession],
    readers: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(scheduler, "MISSED_PER_ROUND", 2)
    start = berlin(2027, 3, 15, 14, 0)
    async with sessions() as session:
        for user in ("1", "2", "3"):
            await member(session, user)
        await meeting(session, start)
        await session.commit()
    # Started 1 h 59 min before: the two hours' reminders may still go (a minute late); the
    # week's and the day's were missed while the bot was down.
    clock = Clock(start - dt.timedelta(hours=1, minutes=59))
    planner = ReminderPlanner(sessions, RULES, clock=clock, readers=readers)
    first = await planner.plan_once()
    assert (first.queued, first.expired, first.more) == (3, 3, True)
    second = await planner.plan_once()
    assert (second.queued, second.expired, second.more) == (0, 3, False)
    clock.now += dt.timedelta(seconds=10)
    assert await planner.plan_once() == Planned()
    states = [state for _member, _offset, state in await reminders(sessions)]
    assert sorted(states) == ["expired"] * 6 + ["pending"] * 3


async def test_a_round_makes_the_series_occurrences_and_drops_dialogs_that_ran_out(
    sessions: async_sessionmaker[AsyncSession], readers: async_sessionmaker[AsyncSession]
) -> None:
    now = berlin(2027, 1, 4, 9, 0)
    async with sessions() as session:
        anna, ben = await member(session, "1"), await member(session, "2")
        await save_dialog(session, anna.id, "newmeeting", "title", {}, expires_at=now, now=now)
        later = now + dt.timedelta(minutes=30)
        await save_dialog(session, ben.id, "newmeeting", "title", {}, expires_at=later, now=now)
        first = berlin(2027, 1, 13, 14, 0)
        session.add(
            MeetingSeries(
                title="Quartalstreffen",
                starts_at=first,
                rule="FREQ=MONTHLY;INTERVAL=3;BYDAY=+2WE",
                location="IHK Düsseldorf",
            )
        )
        await session.commit()

    await ReminderPlanner(sessions, RULES, clock=Clock(now), readers=readers).plan_once()

    async with sessions() as session:
        assert list(await session.scalars(select(Dialog.member_id))) == [ben.id]
        made = await session.scalars(select(Meeting.starts_at).order_by(Meeting.starts_at))
        assert [start.astimezone(RULES.timezone).date() for start in made][:4] == [
            dt.date(2027, 1, 13),
            dt.date(2027, 4, 14),
            dt.date(2027, 7, 14),
            dt.date(2027, 10, 13),
        ]
