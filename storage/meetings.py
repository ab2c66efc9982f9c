"""Network meetings and members' answers to them."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Answer, Meeting, Rsvp


@dataclass(frozen=True, slots=True)
class UpcomingPage:
    """One page of the meetings not over yet, and how many there are."""

    summaries: list[MeetingSummary]
    total: int


@dataclass(frozen=True, slots=True)
class MeetingSummary:
    """A meeting with the number of members who answered yes, no and maybe."""

    meeting: Meeting
    answers: Counter[Answer]
    # The answer of the member who asked, where the query was for one.
    mine: Answer | None = None


# A meeting without an end counts as running for this long.
OPEN_END = dt.timedelta(hours=3)


def _not_over(now: dt.datetime) -> ColumnElement[bool]:
    return or_(
        Meeting.ends_at > now,
        Meeting.ends_at.is_(None) & (Meeting.starts_at > now - OPEN_END),
    )


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
    total = await session.scalar(select(func.count()).where(*where)) or 0
    # The answer counts ride along with the page's rows: one round trip, five rows.
    answers = {
        answer: select(func.count())
        .where(Rsvp.meeting_id == Meeting.id, Rsvp.answer == answer)
        .scalar_subquery()
        for answer in Answer
    }
    mine = (
        select(Rsvp.answer)
        .where(Rsvp.meeting_id == Meeting.id, Rsvp.member_id == member_id)
        .scalar_subquery()
    )
    rows = await session.execute(
        select(Meeting, mine, *answers.values())
        .where(*where)
        .order_by(Meeting.starts_at, Meeting.id)
        .offset(offset)
        .limit(limit)
    )
    summaries = [
        MeetingSummary(
            meeting,
            Counter(dict(zip(answers, counts, strict=True))),
            None if own is None else Answer(own),
        )
        for meeting, own, *counts in rows
    ]
    return UpcomingPage(summaries, total)


async def answer_counts(
    session: AsyncSession, meeting_ids: list[int]
) -> dict[int, Counter[Answer]]:
    """Return how many members answered yes, no and maybe, for each meeting."""
    if not meeting_ids:
        return {}
    rows = await session.execute(
        select(Rsvp.meeting_id, Rsvp.answer, func.count())
        .where(Rsvp.meeting_id.in_(meeting_ids))
        .group_by(Rsvp.meeting_id, Rsvp.answer)
    )
    counts: dict[int, Counter[Answer]] = {}
    for meeting_id, answer, count in rows:
        counts.setdefault(meeting_id, Counter())[Answer(answer)] = count
    return counts


async def meeting_summary(session: AsyncSession, meeting_id: int) -> MeetingSummary | None:
    """Return one meeting with its answer counts, or None if there is no such meeting."""
    meeting = await session.get(Meeting, meeting_id)
    if meeting is None:
        return None
    counts = await answer_counts(session, [meeting_id])
    return MeetingSummary(meeting, counts.get(meeting_id, Counter()))


async def answer_of(session: AsyncSession, meeting_id: int, member_id: int) -> Answer | None:
    """Return a member's answer for a meeting, if they gave one."""
    rsvp = await session.get(Rsvp, (meeting_id, member_id))
    return None if rsvp is None else Answer(rsvp.answer)


async def set_answer(
    session: AsyncSession, meeting_id: int, member_id: int, answer: Answer
) -> Answer | None:
    """Record a member's answer for a meeting and return the answer it replaces."""
    rsvp = await session.get(Rsvp, (meeting_id, member_id))
    if rsvp is None:
        session.add(Rsvp(meeting_id=meeting_id, member_id=member_id, answer=answer))
        await session.flush()
        return None
    previous = Answer(rsvp.answer)
    rsvp.answer = answer
    await session.flush()
    return previous
