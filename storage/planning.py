"""Planning meetings from chat: create, change and cancel, with notices in the same unit."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Meeting, NoticeKind
from storage.notices import Change, attending, changed_fields, queue_notice
from storage.reminders import drop_planned_reminders

# What a coordinator may change.
FIELDS = ("title", "starts_at", "ends_at", "location", "online_url", "agenda")

Value = str | dt.datetime | None


@dataclass(frozen=True, slots=True)
class MeetingDraft:
    """A meeting as a coordinator described it, not stored yet."""

    title: str
    starts_at: dt.datetime
    ends_at: dt.datetime | None = None
    location: str | None = None
    online_url: str | None = None
    agenda: str | None = None


class DuplicateMeeting(Exception):
    """Another meeting has the same title and start (the pair is unique)."""

    def __init__(self, meeting_id: int) -> None:
        super().__init__(f"meeting {meeting_id} has this title and start")
        self.meeting_id = meeting_id


async def same_meeting(
    session: AsyncSession, title: str, starts_at: dt.datetime, *, other_than: int | None = None
) -> int | None:
    """Return the meeting with this title and start, if there is one (besides ``other_than``)."""
    return await session.scalar(
        select(Meeting.id).where(
            Meeting.title == title,
            Meeting.starts_at == starts_at,
            Meeting.id != (other_than or 0),
        )
    )


async def create_meeting(session: AsyncSession, draft: MeetingDraft, now: dt.datetime) -> Meeting:
    """Store a new meeting; refuse one with the title and start of another."""
    duplicate = await same_meeting(session, draft.title, draft.starts_at)
    if duplicate is not None:
        raise DuplicateMeeting(duplicate)
    meeting = Meeting(
        title=draft.title,
        starts_at=draft.starts_at,
        ends_at=draft.ends_at,
        location=draft.location,
        online_url=draft.online_url,
        agenda=draft.agenda,
        created_at=now,
    )
    session.add(meeting)
    await session.flush()
    return meeting


async def apply_changes(
    session: AsyncSession, meeting: Meeting, changes: Mapping[str, Value], now: dt.datetime
) -> dict[str, Change]:
    """Change a meeting and tell those who answered yes or maybe; return what changed.

    The sequence rises where calendar apps must take the change over (storage/models.py);
    reminders not sent yet follow the new start when the planner next runs.
    """
    unknown = set(changes) - set(FIELDS)
    if unknown:
        raise ValueError(f"not a meeting field: {sorted(unknown)}")
    title = changes.get("title", meeting.title)
    starts_at = changes.get("starts_at", meeting.starts_at)
    assert isinstance(title, str)
    assert isinstance(starts_at, dt.datetime)
    duplicate = await same_meeting(session, title, starts_at, other_than=meeting.id)
    if duplicate is not None:
        raise DuplicateMeeting(duplicate)
    before = {field: getattr(meeting, field) for field in changes}
    for field, value in changes.items():
        setattr(meeting, field, value)
    changed = changed_fields(meeting, before)
    if not changed:
        return {}
    await session.flush()
    members = await attending(session, meeting.id)
    await queue_notice(session, meeting.id, NoticeKind.CHANGED, members, now, changes=changed)
    return changed


async def cancel_meeting(session: AsyncSession, meeting: Meeting, now: dt.datetime) -> int:
    """Cancel a meeting, drop its pending reminders, tell those who answered yes or maybe.

    Return how many members are told.
    """
    meeting.cancelled_at = now
    await session.flush()
    await drop_planned_reminders(session, meeting_id=meeting.id)
    members = await attending(session, meeting.id)
    await queue_notice(session, meeting.id, NoticeKind.CANCELLED, members, now)
    return len(members)
