"""Meeting reminders: derived from meetings, answers and preferences, queued in the outbox.

Nothing about a reminder lives outside the database: the planner looks at what is due soon,
at what the outbox already holds, and adds the rows missing, each at most once per member,
meeting, offset and start.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, delete, insert, select
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
    # Where a round stopped at its limit (due, meeting, offset): the next one goes on there.
    resume: tuple[dt.datetime, int, int] | None = None

    @property
    def more(self) -> bool:
        """Tell whether the round stopped at its limit, leaving more to do."""
        return self.resume is not None


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
    return _offsets(None if member is None else member.reminder_offsets, default)


async def plan_reminders(
    session: AsyncSession,
    now: dt.datetime,
    horizon: dt.timedelta,
    rules: ReminderRules,
    *,
    since: dt.datetime | None = None,
    missed: bool | None = None,
    limit: int | None = None,
    resume: tuple[dt.datetime, int, int] | None = None,
) -> Planned:
    """Queue the reminders due before ``now + horizon``; record those missed for good.

    With ``since``, only reminders due after it are looked at: a planner that looked at
    everything due until then in an earlier round needs no second look at those.
    ``missed`` False plans only what may still be sent, True only what is too late. With
    ``limit``, a round stops adding rows past about that many and says where (``resume``), in
    the order of the due times; given that, a round goes on from there.
    """
    longest = max([*rules.offsets, 60 * 24 * 60])
    meetings = (
        await session.execute(
            select(Meeting.id, Meeting.starts_at, Meeting.created_at).where(
                Meeting.cancelled_at.is_(None),
                Meeting.starts_at > now - rules.catch_up,
                Meeting.starts_at <= now + horizon + dt.timedelta(minutes=longest),
            )
        )
    ).all()
    if not meetings:
        return Planned()
    await _forget_moved(session, {meeting.id: meeting.starts_at for meeting in meetings})
    targets = {a.member_id: a for a in await addresses(session, Topic.REMINDERS) if a.reachable}
    if not targets:
        return Planned()
    # Most members keep the network's offsets; only those who chose their own are read.
    chosen = await session.execute(
        select(Member.id, Member.reminder_offsets).where(Member.reminder_offsets.is_not(None))
    )
    own: dict[int, str | None] = dict(chosen.all())
    by_offset: dict[int, list[int]] = {}
    for member_id in targets:
        for offset in _offsets(own.get(member_id), rules.offsets):
            by_offset.setdefault(offset, []).append(member_id)
    # Each (meeting, offset) is due at one moment for everyone: most are not due yet.
    pairs = [
        (meeting, offset, due)
        for meeting in meetings
        for offset in by_offset
        if (due := reminder_due(meeting.starts_at, offset, rules.timezone)) <= now + horizon
        and (since is None or due > since)
        and missed in (None, _too_late(due, meeting.starts_at, now, rules))
        # Only what could have been sent: the meeting existed.
        and due >= meeting.created_at
    ]
    if not pairs:
        return Planned()
    subscriptions = await session.execute(
        select(Subscription.member_id, Subscription.created_at).where(
            Subscription.topic == Topic.REMINDERS
        )
    )
    subscribed: dict[int, dt.datetime] = dict(subscriptions.all())
    ids = sorted({meeting.id for meeting, _offset, _due in pairs})
    answers = await session.execute(
        select(Rsvp.meeting_id, Rsvp.member_id).where(
            Rsvp.meeting_id.in_(ids), Rsvp.answer == Answer.NO
        )
    )
    declined = {(meeting_id, member_id) for meeting_id, member_id in answers}
    # Limited rounds read what is known one meeting and offset at a time, as they go.
    offsets = {offset for _meeting, offset, _due in pairs}
    known = {} if limit is not None else await _known(session, ids, offsets)

    new: list[dict[str, object]] = []
    expired = 0
    stopped = None
    if limit is not None:
        pairs.sort(key=lambda pair: (pair[2], pair[0].id, pair[1]))
    for meeting, offset, due in pairs:
        if limit is not None:
            if resume is not None and (due, meeting.id, offset) < resume:
                continue  # done by an earlier round
            if len(new) >= limit:
                stopped = (due, meeting.id, offset)
                break
            known = await _known(session, [meeting.id], {offset})
        late = _too_late(due, meeting.starts_at, now, rules)
        earlier = known.get((meeting.id, offset), {})
        added = len(new)
        for member_id in by_offset[offset]:
            if (meeting.id, member_id) in declined:
                continue
            # Only what could have been sent: the subscription existed.
            if due < subscribed.get(member_id, due):
                continue
            starts = earlier.get(member_id, ())
            if any(
                abs(start - meeting.starts_at) <= dt.timedelta(minutes=offset) for start in starts
            ):
                continue  # reminded (or planned) for this start already
            target = targets[member_id]
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
        if late and len(new) > added:
            expired += len(new) - added
            logger.info(
                "%d reminders %d min before meeting %d missed (due %s)",
                len(new) - added,
                offset,
                meeting.id,
                due.isoformat(),
            )
    if new:
        # Core, not the ORM: a first start may record a million missed reminders at once.
        await session.execute(insert(cast(Table, Delivery.__table__)), new)
    return Planned(len(new) - expired, expired, resume=stopped)


def _too_late(
    due: dt.datetime, start: dt.datetime, now: dt.datetime, rules: ReminderRules
) -> bool:
    """Tell whether a reminder can no longer be sent: beyond the catch-up, or the meeting began."""
    return due < now - rules.catch_up or start <= now


def _offsets(text: str | None, default: tuple[int, ...]) -> tuple[int, ...]:
    return default if text is None else tuple(int(part) for part in text.split())


async def _forget_moved(session: AsyncSession, starts: dict[int, dt.datetime]) -> None:
    """Remove reminders not sent yet for a start that has moved since: they are planned anew."""
    waiting = (
        Delivery.meeting_id.in_(starts),
        Delivery.state == DeliveryState.PENDING,
        Delivery.lease_owner.is_(None),
    )
    planned = await session.execute(
        select(Delivery.meeting_id, Delivery.planned_start).where(*waiting).distinct()
    )
    # Looked for first: a round that changes nothing writes nothing.
    for meeting_id, start in planned.all():
        if meeting_id is not None and start is not None and start != starts[meeting_id]:
            await session.execute(
                delete(Delivery).where(
                    *waiting,
                    Delivery.meeting_id == meeting_id,
                    Delivery.planned_start == start,
                )
            )


async def _known(
    session: AsyncSession, meeting_ids: list[int], offsets: set[int]
) -> dict[tuple[int, int], dict[int, list[dt.datetime]]]:
    """Return the starts each member was reminded (or is planned) for, per meeting and offset."""
    rows = await session.execute(
        select(
            Delivery.meeting_id,
            Delivery.offset_minutes,
            Delivery.member_id,
            Delivery.planned_start,
        ).where(Delivery.meeting_id.in_(meeting_ids), Delivery.offset_minutes.in_(offsets))
    )
    known: dict[tuple[int, int], dict[int, list[dt.datetime]]] = {}
    for meeting_id, offset, member_id, planned in rows:
        if meeting_id is not None and offset is not None and planned is not None:
            known.setdefault((meeting_id, offset), {}).setdefault(member_id, []).append(planned)
    return known


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
