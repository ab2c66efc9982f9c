"""Network meetings and members' answers to them."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, ScalarSelect, func, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, aliased

from storage.models import Answer, Meeting, Rsvp


@dataclass(frozen=True, slots=True)
class UpcomingPage:
    """One page of meetings (not over yet, or over), and how many there are."""

    summaries: list[MeetingSummary]
    total: int


@dataclass(frozen=True, slots=True)
class MeetingSummary:
    """A meeting with the number of members who answered yes, no and maybe.

    ``answers[Answer.YES]`` counts those with a place; ``waiting`` those on the waiting list.
    """

    meeting: Meeting
    answers: Counter[Answer]
    # The answer of the member who asked, where the query was for one.
    mine: Answer | None = None
    waiting: int = 0
    # That member's place on the waiting list, if they wait.
    my_place: int | None = None


# A meeting without an end counts as running for this long.
OPEN_END = dt.timedelta(hours=3)


def _not_over(now: dt.datetime) -> ColumnElement[bool]:
    return or_(
        Meeting.ends_at > now,
        Meeting.ends_at.is_(None) & (Meeting.starts_at > now - OPEN_END),
    )


def is_over(meeting: Meeting, now: dt.datetime) -> bool:
    """Tell whether a meeting has ended (one without an end counts as open for a while)."""
    if meeting.ends_at is not None:
        return meeting.ends_at <= now
    return meeting.starts_at <= now - OPEN_END


def _count(answer: Answer, *, waiting: bool = False) -> ScalarSelect[int]:
    """Count a meeting's answers of one kind; a yes counts as a place or as waiting."""
    query = select(func.count()).where(Rsvp.meeting_id == Meeting.id, Rsvp.answer == answer)
    if answer is Answer.YES:
        query = query.where(
            Rsvp.waiting_since.is_not(None) if waiting else Rsvp.waiting_since.is_(None)
        )
    return query.scalar_subquery()


def _place(member_id: int | None) -> ScalarSelect[int]:
    """Count those waiting up to and including the member: their place, or 0."""
    other, own = aliased(Rsvp), aliased(Rsvp)
    ahead = or_(
        other.waiting_since < own.waiting_since,
        (other.waiting_since == own.waiting_since) & (other.member_id <= own.member_id),
    )
    return (
        select(func.count())
        .select_from(other)
        .join(own, (own.meeting_id == other.meeting_id) & (own.member_id == member_id))
        .where(other.meeting_id == Meeting.id, own.waiting_since.is_not(None), ahead)
        .scalar_subquery()
    )


async def _summaries(
    session: AsyncSession,
    where: tuple[ColumnElement[bool], ...],
    order: tuple[ColumnElement[Any] | InstrumentedAttribute[Any], ...],
    *,
    offset: int = 0,
    limit: int = 5,
    member_id: int | None = None,
) -> UpcomingPage:
    total = await session.scalar(select(func.count()).select_from(Meeting).where(*where)) or 0
    # The answer counts ride along with the page's rows: one round trip, five rows.
    counts = [_count(answer) for answer in Answer]
    mine = (
        select(Rsvp.answer)
        .where(Rsvp.meeting_id == Meeting.id, Rsvp.member_id == member_id)
        .scalar_subquery()
    )
    rows = await session.execute(
        select(Meeting, mine, _place(member_id), _count(Answer.YES, waiting=True), *counts)
        .where(*where)
        .order_by(*order)
        .offset(offset)
        .limit(limit)
    )
    summaries = [
        MeetingSummary(
            meeting,
            Counter(dict(zip(Answer, answers, strict=True))),
            None if own is None else Answer(own),
            waiting,
            place or None,
        )
        for meeting, own, place, waiting, *answers in rows
    ]
    return UpcomingPage(summaries, total)


async def upcoming_meetings(
    session: AsyncSession,
    now: dt.datetime,
    *,
    offset: int = 0,
    limit: int = 5,
    member_id: int | None = None,
) -> UpcomingPage:
    """Return one page of meetings not over yet, soonest first, and how many there are.

    Given a member, each meeting comes with that member's own answer.
    """
    where = (_not_over(now), Meeting.cancelled_at.is_(None))
    order = (Meeting.starts_at, Meeting.id)
    return await _summaries(session, where, order, offset=offset, limit=limit, member_id=member_id)


async def past_meetings(
    session: AsyncSession,
    now: dt.datetime,
    *,
    offset: int = 0,
    limit: int = 5,
    member_id: int | None = None,
) -> UpcomingPage:
    """Return one page of meetings that are over (cancelled ones too), newest first."""
    where = (not_(_not_over(now)),)
    order = (Meeting.starts_at.desc(), Meeting.id.desc())
    return await _summaries(session, where, order, offset=offset, limit=limit, member_id=member_id)


async def meeting_summary(
    session: AsyncSession, meeting_id: int, member_id: int | None = None
) -> MeetingSummary | None:
    """Return one meeting with its answer counts, or None if there is no such meeting.

    Given a member, it comes with that member's own answer and waiting place.
    """
    where = (Meeting.id == meeting_id,)
    found = await _summaries(session, where, (Meeting.id,), limit=1, member_id=member_id)
    return found.summaries[0] if found.summaries else None


async def answer_of(session: AsyncSession, meeting_id: int, member_id: int) -> Answer | None:
    """Return a member's answer for a meeting, if they gave one."""
    rsvp = await session.get(Rsvp, (meeting_id, member_id))
    return None if rsvp is None else Answer(rsvp.answer)
