"""Announcements: a coordinator's message, confirmed into one delivery row per subscriber."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Announcement, Delivery, DeliveryState, Topic
from storage.outbox import addresses, queue_deliveries


async def draft_announcement(
    session: AsyncSession, text: str, member_id: int, now: dt.datetime
) -> Announcement:
    """Store an announcement that nobody has received yet."""
    announcement = Announcement(text=text, created_by=member_id, created_at=now)
    session.add(announcement)
    await session.flush()
    return announcement


async def recipient_count(session: AsyncSession) -> int:
    """Return how many members an announcement sent now would go to."""
    return len(await addresses(session, Topic.ANNOUNCEMENTS))


async def confirm_announcement(
    session: AsyncSession, announcement: Announcement, now: dt.datetime, send_from: dt.datetime
) -> int:
    """Queue the announcement for every subscriber, in this unit of work; return how many."""
    targets = await addresses(session, Topic.ANNOUNCEMENTS)
    announcement.confirmed_at = now
    await queue_deliveries(session, targets, send_from, now, announcement_id=announcement.id)
    if not targets:
        announcement.finished_at = now
    await session.flush()
    return len(targets)


async def recent_announcements(session: AsyncSession, limit: int = 5) -> list[Announcement]:
    """Return the latest confirmed announcements, newest first."""
    rows = await session.scalars(
        select(Announcement)
        .where(Announcement.confirmed_at.is_not(None))
        .order_by(Announcement.confirmed_at.desc(), Announcement.id.desc())
        .limit(limit)
    )
    return list(rows)


async def pending_deliveries(session: AsyncSession, announcement_id: int) -> int:
    """Return how many of an announcement's messages are not sent yet."""
    count = await session.scalar(
        select(func.count()).where(
            Delivery.announcement_id == announcement_id,
            Delivery.state == DeliveryState.PENDING,
        )
    )
    return count or 0


async def unfinished_announcements(session: AsyncSession) -> list[int]:
    """Return the confirmed announcements whose report has not been shown yet."""
    rows = await session.scalars(
        select(Announcement.id).where(
            Announcement.confirmed_at.is_not(None),
            Announcement.cancelled_at.is_(None),
            Announcement.finished_at.is_(None),
        )
    )
    return list(rows)
