"""Meetings that repeat: a rule, its occurrences made into meetings up to a horizon."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from dateutil.rrule import rrule, rrulestr
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Meeting, MeetingSeries, Rsvp

# Occurrences exist as meetings this far ahead, so reminders and calendars see them.
HORIZON = dt.timedelta(days=366)
# Made a week beyond the horizon at a time, so that the check every round rarely writes.
SLACK = dt.timedelta(days=7)
# At most this many occurrences of one series are made in one unit of work.
MAX_PER_ROUND = 500
# Meetings repeat at most daily; a finer rule is a typing error.
FREQUENCIES = ("YEARLY", "MONTHLY", "WEEKLY", "DAILY")
# The fields an occurrence takes from its series, and which an exception may change.
FIELDS = ("title", "starts_at", "ends_at", "location", "online_url", "agenda", "capacity")

_FREQ = re.compile(r"(?:^|;)FREQ=([A-Z]+)(?:;|$)")
_UTC_UNTIL = re.compile(r"(?<=UNTIL=)(\d{8}T\d{6})Z")


class RuleError(ValueError):
    """A recurrence rule that cannot be used; the message says why."""


def clean_rule(text: str) -> str:
    """Return an RRULE value as stored: trimmed, upper case, without an ``RRULE:`` prefix."""
    return text.strip().upper().removeprefix("RRULE:").strip()


def recurrence(rule: str, first: dt.datetime, timezone: dt.tzinfo) -> rrule:
    """Return the rule's occurrences as wall-clock times in the time zone; raise RuleError.

    Evaluated in local time, a meeting at 14:00 stays at 14:00 when the clocks change.
    """
    rule = clean_rule(rule)
    if not rule or "\n" in rule or ":" in rule:
        raise RuleError("one RRULE value such as FREQ=MONTHLY;BYDAY=+2WE is expected")
    found = _FREQ.search(rule)
    if found is None or found.group(1) not in FREQUENCIES:
        raise RuleError(f"FREQ must be one of {', '.join(FREQUENCIES)}")

    def local_until(match: re.Match[str]) -> str:
        moment = dt.datetime.strptime(match.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=dt.UTC)
        return moment.astimezone(timezone).strftime("%Y%m%dT%H%M%S")

    start = first.astimezone(timezone).replace(tzinfo=None)
    try:
        parsed = rrulestr(_UTC_UNTIL.sub(local_until, rule), dtstart=start)
    except (ValueError, TypeError) as error:
        raise RuleError(str(error)) from None
    assert isinstance(parsed, rrule)
    return parsed


def _utc(wall_clock: dt.datetime, timezone: dt.tzinfo) -> dt.datetime:
    return wall_clock.replace(tzinfo=timezone).astimezone(dt.UTC)


def _local(moment: dt.datetime, timezone: dt.tzinfo) -> dt.datetime:
    return moment.astimezone(timezone).replace(tzinfo=None)


def occurrence_starts(
    series: MeetingSeries,
    timezone: dt.tzinfo,
    after: dt.datetime | None,
    until: dt.datetime,
    limit: int = MAX_PER_ROUND,
) -> list[dt.datetime]:
    """Return the starts (UTC) the rule gives after ``after`` (or from the first) to ``until``."""
    rule = recurrence(series.rule, series.starts_at, timezone)
    starts: list[dt.datetime] = []
    begin = None if after is None else _local(after, timezone)
    for wall_clock in rule.xafter(begin or _local(series.starts_at, timezone), inc=begin is None):
        if wall_clock > _local(until, timezone) or len(starts) >= limit:
            break
        starts.append(_utc(wall_clock, timezone))
    return starts


def occurs(rule: str, first: dt.datetime, moment: dt.datetime, timezone: dt.tzinfo) -> bool:
    """Tell whether a rule starting at ``first`` gives an occurrence at this moment."""
    wall_clock = _local(moment, timezone)
    found = recurrence(rule, first, timezone).after(wall_clock, inc=True)
    return found == wall_clock and _utc(wall_clock, timezone) == moment


def defaults(series: MeetingSeries, recurrence_id: dt.datetime) -> dict[str, Any]:
    """Return what an occurrence is when nobody changed it."""
    duration = None if series.ends_at is None else series.ends_at - series.starts_at
    return {
        "title": series.title,
        "starts_at": recurrence_id,
        "ends_at": None if duration is None else recurrence_id + duration,
        "location": series.location,
        "online_url": series.online_url,
        "agenda": series.agenda,
        "capacity": series.capacity,
    }


async def occurrences(session: AsyncSession, series_id: int) -> list[Meeting]:
    """Return the meetings made of a series so far, by their original start."""
    query = select(Meeting).where(Meeting.series_id == series_id).order_by(Meeting.recurrence_id)
    return list(await session.scalars(query))


async def materialise(
    session: AsyncSession, series: MeetingSeries, until: dt.datetime, timezone: dt.tzinfo
) -> int:
    """Make the occurrences up to ``until`` that are not meetings yet; return how many.

    Occurrences made before, moved or cancelled ones included, are left as they are.
    """
    after = series.materialised_until
    starts = occurrence_starts(series, timezone, after, until)
    if not starts:
        series.materialised_until = max(until, after or until)
        return 0
    made = set(
        await session.scalars(
            select(Meeting.recurrence_id).where(
                Meeting.series_id == series.id, Meeting.recurrence_id.in_(starts)
            )
        )
    )
    # A single meeting of the same title at the same time is that occurrence already.
    taken = set(
        await session.scalars(
            select(Meeting.starts_at).where(
                Meeting.title == series.title, Meeting.starts_at.in_(starts)
            )
        )
    )
    added = 0
    for start in starts:
        if start in made or start in taken:
            continue
        session.add(Meeting(series_id=series.id, recurrence_id=start, **defaults(series, start)))
        added += 1
    # A round cut short by the limit goes on from its last occurrence next time.
    series.materialised_until = until if len(starts) < MAX_PER_ROUND else starts[-1]
    await session.flush()
    return added


async def extend_series(
    session: AsyncSession, now: dt.datetime, timezone: dt.tzinfo, horizon: dt.timedelta = HORIZON
) -> int:
    """Make the occurrences that came within the horizon as time passed; return how many.

    Cheap when there is nothing to do: one query, no write (so a reader unit can ask).
    """
    due = await session.scalars(
        select(MeetingSeries).where(
            or_(
                MeetingSeries.materialised_until.is_(None),
                MeetingSeries.materialised_until < now + horizon,
            )
        )
    )
    added = 0
    for series in due:
        added += await materialise(session, series, now + horizon + SLACK, timezone)
    return added


async def _answered(session: AsyncSession, meeting_id: int) -> bool:
    found = await session.scalar(select(Rsvp.member_id).where(Rsvp.meeting_id == meeting_id))
    return found is not None


async def _drop_off_rule(
    session: AsyncSession, series: MeetingSeries, now: dt.datetime, timezone: dt.tzinfo
) -> None:
    """Remove occurrences a changed rule no longer gives; cancel those already answered."""
    for meeting in await occurrences(session, series.id):
        assert meeting.recurrence_id is not None
        if meeting.starts_at <= now or occurs(
            series.rule, series.starts_at, meeting.recurrence_id, timezone
        ):
            continue
        if await _answered(session, meeting.id):
            if meeting.cancelled_at is None:
                meeting.cancelled_at = now
        else:
            await session.delete(meeting)
    await session.flush()


async def sync_series(
    session: AsyncSession,
    series: MeetingSeries,
    exceptions: Mapping[dt.datetime, Mapping[str, Any]],
    now: dt.datetime,
    timezone: dt.tzinfo,
) -> int:
    """Make a series' occurrences what its rule and exceptions say; return how many changed.

    ``exceptions`` maps an occurrence's original start to the fields that differ (``ends_at``
    by default follows a moved start) and ``cancelled``. Occurrences no exception names get
    the series' values back.
    """
    await _drop_off_rule(session, series, now, timezone)
    series.materialised_until = None
    await materialise(session, series, now + HORIZON + SLACK, timezone)
    made = {m.recurrence_id: m for m in await occurrences(session, series.id) if m.recurrence_id}
    for start in exceptions.keys() - made.keys():
        meeting = Meeting(series_id=series.id, recurrence_id=start, **defaults(series, start))
        session.add(meeting)
        made[start] = meeting
    changed = 0
    for start, meeting in made.items():
        if meeting.cancelled_at is not None and not occurs(
            series.rule, series.starts_at, start, timezone
        ):
            continue  # dropped from the rule above, kept for those who answered
        wanted = _wanted(series, start, exceptions.get(start, {}))
        cancelled = bool(exceptions.get(start, {}).get("cancelled"))
        differs = [name for name in FIELDS if getattr(meeting, name) != wanted[name]]
        for name in differs:
            setattr(meeting, name, wanted[name])
        if cancelled != (meeting.cancelled_at is not None):
            meeting.cancelled_at = now if cancelled else None
            differs.append("cancelled_at")
        if differs and meeting.id is not None:
            changed += 1
    await session.flush()
    return changed


def _wanted(
    series: MeetingSeries, start: dt.datetime, exception: Mapping[str, Any]
) -> dict[str, Any]:
    wanted = defaults(series, start)
    moved = exception.get("starts_at")
    if moved is not None and wanted["ends_at"] is not None:
        wanted["ends_at"] = moved + (wanted["ends_at"] - start)
    wanted.update({name: value for name, value in exception.items() if name in FIELDS})
    return wanted


def exception_of(series: MeetingSeries, occurrence: Meeting) -> dict[str, Any] | None:
    """Return how an occurrence differs from its series (as sync_series takes it), or None."""
    assert occurrence.recurrence_id is not None
    usual = _wanted(series, occurrence.recurrence_id, {"starts_at": occurrence.starts_at})
    found = {
        name: getattr(occurrence, name)
        for name in FIELDS
        if getattr(occurrence, name) != usual[name]
        or (name == "starts_at" and occurrence.starts_at != occurrence.recurrence_id)
    }
    if occurrence.cancelled_at is not None:
        found["cancelled"] = True
    return found or None
