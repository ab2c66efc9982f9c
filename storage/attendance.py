"""Who attends a meeting: places up to its capacity, the waiting list, who moves up."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import flag_modified

from storage.meetings import is_over
from storage.models import Answer, Meeting, Member, NoticeKind, Partner, Rsvp
from storage.notices import queue_notice


@dataclass(frozen=True, slots=True)
class Answered:
    """What an answer did: the one it replaced, and the place on the waiting list if any."""

    previous: Answer | None
    waiting_place: int | None
    # Members who had waited and have a place now (they are told through the outbox).
    moved_up: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Attendee:
    """A member's answer to a meeting, as a coordinator sees it."""

    member_id: int
    name: str
    partner: str | None
    answer: Answer
    answered_at: dt.datetime
    waiting_place: int | None


async def locked_meeting(session: AsyncSession, meeting_id: int) -> Meeting | None:
    """Return a meeting, locked against answers that race this unit of work.

    SQLite's writer units hold the database lock from their start; other databases lock
    the meeting's row here, so places are counted and given by one unit at a time.
    """
    query = select(Meeting).where(Meeting.id == meeting_id).with_for_update()
    return (await session.scalars(query)).first()


async def answer(
    session: AsyncSession, meeting: Meeting, member_id: int, given: Answer, now: dt.datetime
) -> Answered:
    """Record an answer; a "yes" beyond capacity waits, a place given up goes to the next."""
    rsvp = await session.get(Rsvp, (meeting.id, member_id))
    previous = None if rsvp is None else Answer(rsvp.answer)
    if rsvp is not None and previous is given:
        return Answered(previous, await waiting_place(session, meeting.id, member_id))
    # A new "yes" (one who had a place would have answered yes before) waits if it is full.
    full = meeting.capacity is not None and given is Answer.YES
    waits = full and await taken_places(session, meeting.id) >= (meeting.capacity or 0)
    waiting_since = await _end_of_list(session, meeting.id, now) if waits else None
    if rsvp is None:
        rsvp = Rsvp(meeting_id=meeting.id, member_id=member_id, answer=given)
        session.add(rsvp)
    rsvp.answer, rsvp.answered_at, rsvp.waiting_since = given, now, waiting_since
    # Written even when equal to the stored time, or the column's onupdate would stamp it.
    flag_modified(rsvp, "answered_at")
    await session.flush()
    moved_up = await fill_places(session, meeting, now)
    return Answered(previous, await waiting_place(session, meeting.id, member_id), moved_up)


async def _end_of_list(session: AsyncSession, meeting_id: int, now: dt.datetime) -> dt.datetime:
    """Return a moment after everyone waiting: a unit that waited for the lock comes last."""
    last = await session.scalar(
        select(func.max(Rsvp.waiting_since)).where(Rsvp.meeting_id == meeting_id)
    )
    return now if last is None or last < now else last + dt.timedelta(microseconds=1)


async def taken_places(session: AsyncSession, meeting_id: int) -> int:
    """Return how many members hold a place: they answered yes and are not waiting."""
    query = select(func.count()).where(
        Rsvp.meeting_id == meeting_id, Rsvp.answer == Answer.YES, Rsvp.waiting_since.is_(None)
    )
    return await session.scalar(query) or 0


async def waiting_list(session: AsyncSession, meeting_id: int) -> list[int]:
    """Return the members on a meeting's waiting list, first come first."""
    query = (
        select(Rsvp.member_id)
        .where(Rsvp.meeting_id == meeting_id, Rsvp.waiting_since.is_not(None))
        .order_by(Rsvp.waiting_since, Rsvp.member_id)
    )
    return list(await session.scalars(query))


async def waiting_place(session: AsyncSession, meeting_id: int, member_id: int) -> int | None:
    """Return a member's place on the waiting list (1 is next), or None if not waiting."""
    waiting = await waiting_list(session, meeting_id)
    return waiting.index(member_id) + 1 if member_id in waiting else None


async def fill_places(
    session: AsyncSession, meeting: Meeting, now: dt.datetime
) -> tuple[int, ...]:
    """Give free places to the first on the waiting list and queue the news for them."""
    if meeting.cancelled_at is not None or is_over(meeting, now):
        return ()
    waiting = await waiting_list(session, meeting.id)
    if not waiting:
        return ()
    if meeting.capacity is None:
        moved_up = tuple(waiting)  # no limit any more: everyone waiting has a place
    else:
        free = meeting.capacity - await taken_places(session, meeting.id)
        moved_up = tuple(waiting[: max(0, free)])
    if not moved_up:
        return ()
    await session.execute(
        update(Rsvp)
        .where(Rsvp.meeting_id == meeting.id, Rsvp.member_id.in_(moved_up))
        # Moving up is no new answer: the time they answered stays.
        .values(waiting_since=None, answered_at=Rsvp.answered_at)
        .execution_options(synchronize_session="fetch")
    )
    await queue_notice(session, meeting.id, NoticeKind.MOVED_UP, moved_up, now)
    return moved_up


async def fill_every_place(session: AsyncSession, now: dt.datetime) -> None:
    """Give the free places of every meeting with a waiting list (after an import)."""
    waited = await session.scalars(
        select(Rsvp.meeting_id).where(Rsvp.waiting_since.is_not(None)).distinct()
    )
    for meeting_id in list(waited):
        meeting = await locked_meeting(session, meeting_id)
        if meeting is not None:
            await fill_places(session, meeting, now)


async def set_capacity(
    session: AsyncSession, meeting: Meeting, capacity: int | None, now: dt.datetime
) -> tuple[int, ...]:
    """Set how many may attend (None: no limit); those who move up because of it are told.

    A lower capacity takes no place away: it fills up again as people withdraw.
    """
    meeting.capacity = capacity
    await session.flush()
    return await fill_places(session, meeting, now)


async def leave_meetings(session: AsyncSession, member_id: int, now: dt.datetime) -> None:
    """Withdraw a member's answers (they leave), passing the places they held on.

    Call it before a member is erased: deleting the member alone frees places nobody gets.
    """
    held = await session.scalars(
        select(Rsvp.meeting_id).where(
            Rsvp.member_id == member_id, Rsvp.answer == Answer.YES, Rsvp.waiting_since.is_(None)
        )
    )
    meeting_ids = list(held)
    await session.execute(delete(Rsvp).where(Rsvp.member_id == member_id))
    for meeting_id in meeting_ids:
        meeting = await locked_meeting(session, meeting_id)
        if meeting is not None:
            await fill_places(session, meeting, now)


async def attendees(session: AsyncSession, meeting_id: int) -> list[Attendee]:
    """Return who answered a meeting, by answer, then waiting place, then name."""
    rows = await session.execute(
        select(Rsvp, Member.display_name, Partner.name)
        .join(Member, Member.id == Rsvp.member_id)
        .outerjoin(Partner, Partner.id == Member.partner_id)
        .where(Rsvp.meeting_id == meeting_id)
    )
    waiting = await waiting_list(session, meeting_id)
    found = [
        Attendee(
            rsvp.member_id,
            name,
            partner,
            Answer(rsvp.answer),
            rsvp.answered_at,
            waiting.index(rsvp.member_id) + 1 if rsvp.member_id in waiting else None,
        )
        for rsvp, name, partner in rows
    ]
    order = {Answer.YES: 0, Answer.MAYBE: 1, Answer.NO: 2}
    return sorted(
        found,
        key=lambda a: (order[a.answer], a.waiting_place or 0, a.name.casefold(), a.member_id),
    )
