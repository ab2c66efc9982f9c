"""Reminder planning: due times (also across daylight saving), once each, catch-up, moves."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.members import member_for, subscribe
from storage.models import Answer, Delivery, DeliveryState, Meeting, Member, Rsvp, Topic
from storage.reminders import ReminderRules, drop_planned_reminders, plan_reminders, reminder_due

BERLIN = ZoneInfo("Europe/Berlin")
RULES = ReminderRules((7 * 1440, 1440, 120), dt.timedelta(hours=6), BERLIN)
HORIZON = dt.timedelta(minutes=1)
LONG_AGO = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def berlin(year: int, month: int, day: int, hour: int, minute: int) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=BERLIN).astimezone(dt.UTC)


@pytest.mark.parametrize(
    ("start", "minutes", "due"),
    [
        # A day before a meeting on the Sunday the clocks go forward: 14:00 the day before.
        (berlin(2027, 3, 28, 14, 0), 1440, berlin(2027, 3, 27, 14, 0)),
        # … and on the Sunday they go back.
        (berlin(2027, 10, 31, 14, 0), 1440, berlin(2027, 10, 30, 14, 0)),
        # A week before, across the change.
        (berlin(2027, 4, 1, 9, 30), 7 * 1440, berlin(2027, 3, 25, 9, 30)),
        # Two hours are two hours of elapsed time, also across the change at 02:00.
        (berlin(2027, 3, 28, 4, 0), 120, dt.datetime(2027, 3, 28, 0, 0, tzinfo=dt.UTC)),
        (berlin(2027, 10, 31, 3, 30), 120, dt.datetime(2027, 10, 31, 0, 30, tzinfo=dt.UTC)),
        # A day and a half hour: the day on the wall clock, then the minutes.
        (berlin(2027, 3, 28, 14, 0), 1470, berlin(2027, 3, 27, 13, 30)),
    ],
)
def test_due_times_keep_to_the_wall_clock_for_days(
    start: dt.datetime, minutes: int, due: dt.datetime
) -> None:
    assert reminder_due(start, minutes, BERLIN) == due


async def member(session: AsyncSession, user: str, *, offsets: str | None = None) -> Member:
    found, _, _ = await member_for(session, "telegram", user, private_chat=user, now=LONG_AGO)
    found.reminder_offsets = offsets
    await subscribe(session, found.id, [Topic.REMINDERS])
    await session.flush()
    return found


async def meeting(session: AsyncSession, starts: dt.datetime, title: str = "Treffen") -> Meeting:
    found = Meeting(title=title, starts_at=starts, location="IHK", created_at=LONG_AGO)
    session.add(found)
    await session.flush()
    return found


async def rows(session: AsyncSession) -> list[tuple[int, int, DeliveryState, dt.datetime]]:
    result = await session.execute(
        select(
            Delivery.member_id, Delivery.offset_minutes, Delivery.state, Delivery.due_at
        ).order_by(Delivery.member_id, Delivery.offset_minutes.desc())
    )
    return [tuple(row) for row in result]  # type: ignore[misc]


async def test_each_subscriber_gets_each_offset_once_unless_they_declined(
    session: AsyncSession,
) -> None:
    start = berlin(2027, 3, 15, 14, 0)  # no clock change in the week before
    anna, ben = await member(session, "1"), await member(session, "2")
    declined = await member(session, "3")
    own = await member(session, "4", offsets="30")
    off = await member(session, "5", offsets="")
    found = await meeting(session, start)
    session.add(Rsvp(meeting_id=found.id, member_id=declined.id, answer=Answer.NO))
    await session.flush()
    for now in (start - dt.timedelta(days=8), start - dt.timedelta(days=7)):
        await plan_reminders(session, now - dt.timedelta(seconds=30), HORIZON, RULES)
    assert await rows(session) == [
        (anna.id, 10080, DeliveryState.PENDING, start - dt.timedelta(days=7)),
        (ben.id, 10080, DeliveryState.PENDING, start - dt.timedelta(days=7)),
    ]
    # Planning again, however often, adds nothing.
    await plan_reminders(session, start - dt.timedelta(days=7), HORIZON, RULES)
    assert len(await rows(session)) == 2
    await plan_reminders(session, start - dt.timedelta(minutes=30, seconds=10), HORIZON, RULES)
    assert [r for r in await rows(session) if r[0] in (own.id, off.id)] == [
        (own.id, 30, DeliveryState.PENDING, start - dt.timedelta(minutes=30))
    ]


async def test_a_reminder_missed_while_down_is_sent_late_or_recorded_as_expired(
    session: AsyncSession,
) -> None:
    start = berlin(2027, 3, 29, 14, 0)
    anna = await member(session, "1")
    await meeting(session, start)
    # Back 40 minutes before the start: the 2h reminder is 80 minutes late (within 6 h),
    # the day before is 22 h 40 min late, the week before far too late.
    now = start - dt.timedelta(minutes=40)
    planned = await plan_reminders(session, now, HORIZON, RULES)
    assert (planned.queued, planned.expired) == (1, 2)
    assert await rows(session) == [
        (anna.id, 10080, DeliveryState.EXPIRED, now),
        (anna.id, 1440, DeliveryState.EXPIRED, now),
        (anna.id, 120, DeliveryState.PENDING, now),
    ]


async def test_reminders_that_could_never_have_gone_out_are_not_counted_as_missed(
    session: AsyncSession,
) -> None:
    start = berlin(2027, 3, 29, 14, 0)
    await member(session, "1")
    found = await meeting(session, start)
    found.created_at = start - dt.timedelta(hours=3)  # planned three hours ahead
    planned = await plan_reminders(session, start - dt.timedelta(hours=2), HORIZON, RULES)
    assert (planned.queued, planned.expired) == (1, 0)


async def test_moving_a_meeting_replans_but_never_repeats_a_sent_reminder_for_a_small_move(
    session: AsyncSession,
) -> None:
    start = berlin(2027, 3, 29, 14, 0)
    anna = await member(session, "1", offsets="1440")
    found = await meeting(session, start)
    await plan_reminders(session, start - dt.timedelta(days=1), HORIZON, RULES)
    sent = await session.scalar(select(Delivery))
    assert sent is not None
    sent.state = DeliveryState.DELIVERED
    # Two hours later: the day-before reminder went out already.
    found.starts_at = start + dt.timedelta(hours=2)
    await drop_planned_reminders(session, meeting_id=found.id)
    await plan_reminders(session, found.starts_at - dt.timedelta(days=1), HORIZON, RULES)
    assert len(await rows(session)) == 1
    # A week later: a new day-before reminder.
    found.starts_at = start + dt.timedelta(days=7)
    await plan_reminders(session, found.starts_at - dt.timedelta(days=1), HORIZON, RULES)
    assert [(r[0], r[2]) for r in await rows(session)] == [
        (anna.id, DeliveryState.DELIVERED),
        (anna.id, DeliveryState.PENDING),
    ]


async def test_a_moved_meeting_drops_the_reminders_planned_for_its_old_start(
    session: AsyncSession,
) -> None:
    start = berlin(2027, 3, 15, 14, 0)
    anna = await member(session, "1", offsets="120")
    found = await meeting(session, start)
    await plan_reminders(session, start - dt.timedelta(hours=2, seconds=30), HORIZON, RULES)
    # Moved by an import an hour later, before the reminder went out.
    found.starts_at = start + dt.timedelta(hours=1)
    await plan_reminders(session, start - dt.timedelta(hours=2), HORIZON, RULES)
    assert await rows(session) == []
    await plan_reminders(session, start - dt.timedelta(hours=1, seconds=30), HORIZON, RULES)
    assert await rows(session) == [
        (anna.id, 120, DeliveryState.PENDING, start - dt.timedelta(hours=1))
    ]


async def test_cancelled_meetings_and_unsubscribed_members_get_nothing(
    session: AsyncSession,
) -> None:
    start = berlin(2027, 3, 29, 14, 0)
    await member(session, "1")
    cancelled = await meeting(session, start)
    cancelled.cancelled_at = LONG_AGO
    found, _, _ = await member_for(session, "telegram", "2", private_chat="2", now=LONG_AGO)
    await meeting(session, start + dt.timedelta(hours=1), "Anderes")
    await plan_reminders(session, start - dt.timedelta(hours=1), HORIZON, RULES)
    pending = [r for r in await rows(session) if r[2] is DeliveryState.PENDING]
    # Only the meeting that takes place, only for the subscriber.
    assert [(r[0], r[1]) for r in pending] == [(1, 120)]
    assert found.id not in [r[0] for r in await rows(session)]
