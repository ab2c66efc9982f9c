"""Notices about a meeting for those who answered it: changed, cancelled, a place became free."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Answer, Meeting, MeetingNotice, NoticeKind, Rsvp
from storage.outbox import member_addresses, queue_deliveries

# A changed field's old and new value: text, or a moment in ISO 8601 with its offset.
Change = tuple[str | None, str | None]


@dataclass(frozen=True, slots=True)
class Notice:
    """A stored notice with the meeting it is about."""

    kind: NoticeKind
    meeting: Meeting
    changes: dict[str, Change]


def changed_fields(
    meeting: Meeting, before: Mapping[str, str | dt.datetime | None]
) -> dict[str, Change]:
    """Return the fields whose value before differs from the meeting's value now."""
    changes = {}
    for field, old in before.items():
        new = getattr(meeting, field)
        if old != new:
            changes[field] = (_stored(old), _stored(new))
    return changes


def _stored(value: str | dt.datetime | None) -> str | None:
    return value.isoformat() if isinstance(value, dt.datetime) else value


async def attending(session: AsyncSession, meeting_id: int) -> list[int]:
    """Return the members who answered a meeting with yes or maybe."""
    rows = await session.scalars(
        select(Rsvp.member_id).where(
            Rsvp.meeting_id == meeting_id, Rsvp.answer.in_([Answer.YES, Answer.MAYBE])
        )
    )
    return list(rows)


async def queue_notice(
    session: AsyncSession,
    meeting_id: int,
    kind: NoticeKind,
    member_ids: Iterable[int],
    now: dt.datetime,
    *,
    changes: Mapping[str, Change] | None = None,
) -> int:
    """Store a notice and one delivery row per member, due now; return the notice's id.

    Call it in the unit of work that makes the change, so that the change and the news of it
    are stored together or not at all.
    """
    notice = MeetingNotice(
        meeting_id=meeting_id, kind=kind, changes=json.dumps(dict(changes or {})), created_at=now
    )
    session.add(notice)
    await session.flush()
    targets = await member_addresses(session, member_ids)
    await queue_deliveries(session, targets, now, now, notice_id=notice.id)
    return notice.id


async def notice_of(session: AsyncSession, notice_id: int) -> Notice | None:
    """Return a notice with its meeting, or None if either is gone."""
    row = (
        await session.execute(
            select(MeetingNotice, Meeting)
            .join(Meeting, Meeting.id == MeetingNotice.meeting_id)
            .where(MeetingNotice.id == notice_id)
        )
    ).first()
    if row is None:
        return None
    notice, meeting = row
    changes = {field: (old, new) for field, (old, new) in json.loads(notice.changes).items()}
    return Notice(NoticeKind(notice.kind), meeting, changes)
