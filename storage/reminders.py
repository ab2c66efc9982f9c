"""Meeting reminders: derived from meetings, answers and preferences, queued in the outbox.

Nothing about a reminder lives outside the database: the planner looks at what is due soon,
at what the outbox already holds, and adds the rows missing, each at most once per member,
meeting, offset and start.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    Answer,
    Delivery,
    DeliveryState,
    Meeting,
    Member,
    Rsvp,
    Subscription,
    Topic,
)
from storage.outbox import addresses

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReminderRules:
    """The network's reminder settings."""

    offsets: tuple[int, ...]  # minutes before the start, the network's default
    catch_up: dt.timedelta  # how late a missed reminder may still go out
    timezone: ZoneInfo


@dataclass(frozen=True, slots=True)
class Planned:
    """What one planning round did."""

    queued: int = 0
    expired: int = 0


def reminder_due(start: dt.datetime, minutes: int, timezone: ZoneInfo) -> dt.datetime:
    """Return when a reminder ``minutes`` before ``start`` is due.

    Whole days count on the wall clock of the network's time zone (a day before a meeting at
    14:00 is 14:00, also across a daylight-saving change); hours and minutes are elapsed time.
    """
    days, rest = divmod(minutes, 1440)
    local = start.astimezone(timezone)
    # Aware arithmetic in one zone keeps the wall-clock time; astimezone finds the offset.
    wall = (local.replace(tzinfo=None) - dt.timedelta(days=days)).replace(tzinfo=timezone)
    return wall.astimezone(dt.UTC) - dt.timedelta(minutes=rest)


def offsets_of(member: Member | None, default: tuple[int, ...]) -> tuple[int, ...]:
    """Return a member's reminder offsets in minutes (the network's unless they chose)."""
    if member is None or member.reminder_offsets is None:
        return default
    return tuple(int(part) for part in member.reminder_offsets.split())


async def plan_reminders(
    session: AsyncSession, now: dt.datetime, horizon: dt.timedelta, rules: ReminderRules
) -> Planned:
    """Queue the reminders due before ``now + horizon``; record those missed for good."""
    longest = max([*rules.offsets, 60 * 24 * 60])
    meetings = list(
        await session.scalars(
            select(Meeting).where(
                Meeting.cancelled_at.is_(None),
                Meeting.starts_at > now - rules.catch_up,
                Meeting.starts_at <= now + horizon + dt.timedelta(minutes=longest),
            )
        )
    )
    if not meetings:
        return Planned()
    ids = [meeting.id for meeting in meetings]
    targets = {a.member_id: a for a in await addresses(session, Topic.REMINDERS) if a.reachable}
    if not targets:
        return Planned()
    members = {
        member.id: member
        for member in await session.scalars(select(Member).where(Member.id.in_(targets)))
    }
    subscriptions = await session.execute(
        select(Subscription.member_id, Subscription.created_at).where(
            Subscription.topic == Topic.REMINDERS
        )
    )
    subscribed: dict[int, dt.datetime] = dict(subscriptions.all())
    answers = await session.execute(
        select(Rsvp.meeting_id, Rsvp.member_id).where(
            Rsvp.meeting_id.in_(ids), Rsvp.answer == Answer.NO
        )
    )
    declined = {(meeting_id, member_id) for meeting_id, member_id in answers}
    # Reminders not sent yet for a start that has moved since are planned anew.
    starts = {meeting.id: meeting.starts_at for meeting in meetings}
    for moved_id, start in starts.items():
        moved = (
            Delivery.meeting_id == moved_id,
            Delivery.planned_start != start,
            Delivery.state == DeliveryState.PENDING,
            Delivery.lease_owner.is_(None),
        )
        # Looked for first: a round that changes nothing writes nothing.
        if await session.scalar(select(Delivery.id).where(*moved).limit(1)) is not None:
            await session.execute(delete(Delivery).where(*moved))
    known: dict[tuple[int, int, int], list[tuple[dt.datetime, DeliveryState]]] = {}
    rows = await session.execute(
        select(
            Delivery.meeting_id,
            Delivery.member_id,
            Delivery.offset_minutes,
            Delivery.planned_start,
            Delivery.state,
        ).where(Delivery.meeting_id.in_(ids))
    )
    for meeting_id, member_id, offset, planned, state in rows:
        if meeting_id is not None and offset is not None and planned is not None:
            known.setdefault((meeting_id, member_id, offset), []).append((planned, state))

    new: list[dict[str, object]] = []
    expired = 0
    for meeting in meetings:
        for member_id, target in targets.items():
            if (meeting.id, member_id) in declined:
                continue
            for offset in offsets_of(members.get(member_id), rules.offsets):
                due = reminder_due(meeting.starts_at, offset, rules.timezone)
                if due > now + horizon:
                    continue
                # Only what could have been sent: the meeting and the subscription existed.
                if due < meeting.created_at or due < subscribed.get(member_id, due):
                    continue
                earlier = known.get((meeting.id, member_id, offset), [])
                moved_less = [
                    planned
                    for planned, _state in earlier
                    if abs(planned - meeting.starts_at) <= dt.timedelta(minutes=offset)
                ]
                if moved_less:
                    continue  # reminded (or planned) for this start already
                late = due < now - rules.catch_up or meeting.starts_at <= now
                if late:
                    expired += 1
                    logger.info(
                        "reminder %d min before meeting %d for member %d missed (due %s)",
                        offset,
                        meeting.id,
                        member_id,
                        due.isoformat(),
                    )
                new.append(
                    {
                        "meeting_id": meeting.id,
                        "member_id": member_id,
                        "offset_minutes": offset,
                        "planned_start": meeting.starts_at,
                        "platform": target.platform,
                        "chat_id": target.chat_id,
                        "state": DeliveryState.EXPIRED if late else DeliveryState.PENDING,
                        "due_at": max(due, now),
                        "finished_at": now if late else None,
                        "created_at": now,
                        "attempts": 0,
                    }
                )
    if new:
        await session.execute(insert(Delivery), new)
    return Planned(len(new) - expired, expired)


async def drop_planned_reminders(
    session: AsyncSession, *, meeting_id: int | None = None, member_id: int | None = None
) -> None:
    """Remove reminders not sent yet, so the planner plans them anew (a move, new offsets)."""
    statement = delete(Delivery).where(
        Delivery.meeting_id.is_not(None),
        Delivery.state == DeliveryState.PENDING,
        Delivery.lease_owner.is_(None),
    )
    if meeting_id is not None:
        statement = statement.where(Delivery.meeting_id == meeting_id)
    if member_id is not None:
        statement = statement.where(Delivery.member_id == member_id)
    await session.execute(statement)
