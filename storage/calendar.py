"""Private calendar feeds: each member's secret token, and the meetings a feed holds."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Meeting, MeetingNotice, Member

# Random bytes in a token: 43 URL-safe characters.
TOKEN_BYTES = 32
# The first characters of a token find the member; the rest is compared in constant time, so
# how long a lookup takes never tells how much of a guessed token was right.
SELECTOR = 12
# A feed holds the meetings of this long ago too, so that a cancelled one is removed from
# the calendar apps that still show it, and last month stays in view.
FEED_PAST = dt.timedelta(days=30)
FEED_LIMIT = 500


async def feed_token(session: AsyncSession, member: Member) -> str:
    """Return the member's feed token, making one on first use."""
    if member.calendar_token is None:
        return await new_feed_token(session, member)
    return member.calendar_token


async def new_feed_token(session: AsyncSession, member: Member) -> str:
    """Give the member a new feed token; the old one stops working at once."""
    member.calendar_token = secrets.token_urlsafe(TOKEN_BYTES)
    await session.flush()
    return member.calendar_token


async def member_by_feed_token(session: AsyncSession, token: str) -> Member | None:
    """Return the member whose feed token this is, or None."""
    if len(token) <= SELECTOR:
        return None
    candidates = await session.scalars(
        select(Member).where(func.substr(Member.calendar_token, 1, SELECTOR) == token[:SELECTOR])
    )
    for member in candidates:
        stored = member.calendar_token or ""
        if secrets.compare_digest(stored.encode(), token.encode()):
            return member
    return None


async def feed_meetings(session: AsyncSession, now: dt.datetime) -> list[Meeting]:
    """Return the meetings a feed holds: from a month ago on, cancelled ones included."""
    rows = await session.scalars(
        select(Meeting)
        .where(Meeting.starts_at >= now - FEED_PAST)
        .order_by(Meeting.starts_at, Meeting.id)
        .limit(FEED_LIMIT)
    )
    return list(rows)


async def revised_at(session: AsyncSession, meetings: Iterable[Meeting]) -> dict[int, dt.datetime]:
    """Return when each meeting last changed: created, cancelled or told of a change."""
    revised = {
        meeting.id: max(filter(None, (meeting.created_at, meeting.cancelled_at)))
        for meeting in meetings
    }
    if not revised:
        return revised
    rows = await session.execute(
        select(MeetingNotice.meeting_id, func.max(MeetingNotice.created_at))
        .where(MeetingNotice.meeting_id.in_(revised))
        .group_by(MeetingNotice.meeting_id)
    )
    for meeting_id, noticed in rows:
        if noticed is not None:
            # An aggregate comes back without the column's type: SQLite gives text.
            moment = noticed if isinstance(noticed, dt.datetime) else _parse(noticed)
            revised[meeting_id] = max(revised[meeting_id], moment)
    return revised


def _parse(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text)
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment
