"""Dates and times as coordinators type them, read in the network's time zone.

German (``29.03.2027 14:00``, ``29.03.27 14:00``, ``29.3. 14 Uhr``) and ISO 8601
(``2027-03-29 14:00``, ``2027-03-29T14:00``, with an offset such as ``+02:00``), with an
optional end (``14:00-17:00``, ``14–17 Uhr``, ``… bis 30.03.2027 12:00``). The calendar is
Python's: ``datetime`` refuses days and times that do not exist, ``zoneinfo`` knows the
daylight-saving changes.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from bot.core import UserError
from bot.i18n import _, format_date, format_when

DATE_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
DATE_GERMAN = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4}|\d{2})?(?!\d)")
TIME = re.compile(r"(\d{1,2})(?:[:.](\d{2})(?::(\d{2}))?)?(?![\d.:])")
OFFSET = re.compile(r"Z|[+-](\d{2}):?(\d{2})", re.IGNORECASE)
# Between a date and its time: white space, a comma or ISO's T.
JOIN = re.compile(r"\s*(?:,\s*|T|\s)\s*", re.IGNORECASE)
RANGE = re.compile(r"\s*(?:-|–|—|\bbis\b|\bto\b|\buntil\b)\s*", re.IGNORECASE)
# Words people add that say nothing the numbers do not.
FILLERS = re.compile(r"\b(?:uhr|um|at|o'clock)\b\.?", re.IGNORECASE)
# Real offsets lie between UTC-12 and UTC+14; "T14:00-17:00" is a range, not an offset.
LARGEST_WEST = dt.timedelta(hours=12)


@dataclass(frozen=True, slots=True)
class Span:
    """When a meeting happens, in UTC, with notes on how the typed text was read."""

    starts: dt.datetime
    ends: dt.datetime | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Moment:
    """A date and time as typed: the calendar day, the clock and an offset if one was given."""

    day: dt.date | None
    clock: dt.time
    offset: dt.timezone | None
    typed_day: str


def parse_span(text: str, now: dt.datetime, zone: ZoneInfo) -> Span:
    """Return the start (and end) a person typed; refuse what cannot be a future meeting."""
    cleaned = _clean(text)
    start, rest = _moment(text, cleaned, now, zone)
    if start.day is None:
        raise UserError(_unreadable(text), show_usage=False)
    notes: list[str] = []
    starts = _resolve(start.day, start.clock, start.offset, zone, notes)
    if starts <= now:
        raise UserError(
            _("{when} is in the past. Please give a date and time still to come.").format(
                when=format_when(starts)
            ),
            show_usage=False,
        )
    ends = None
    if rest:
        separator = RANGE.match(rest)
        if separator is None:
            raise UserError(_unreadable(text), show_usage=False)
        ends = _end(text, rest[separator.end() :], starts, now=now, zone=zone, notes=notes)
    return Span(starts, ends, tuple(notes))


def parse_end(text: str, starts: dt.datetime, now: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """Return the end a person typed: a time on the start's day, or a date and time."""
    notes: list[str] = []
    return _end(text, _clean(text), starts, now=now, zone=zone, notes=notes)


def _clean(text: str) -> str:
    return " ".join(FILLERS.sub(" ", text).split())


def _unreadable(text: str) -> str:
    return _(
        "I cannot read “{text}” as a date and time. "
        "Write it like 29.03.2027 14:00 or 2027-03-29 14:00, with an end like 14:00-17:00."
    ).format(text=text.strip())


def _end(
    typed: str,
    text: str,
    starts: dt.datetime,
    *,
    now: dt.datetime,
    zone: ZoneInfo,
    notes: list[str],
) -> dt.datetime:
    end, rest = _moment(typed, text, now, zone)
    if rest:
        raise UserError(_unreadable(typed), show_usage=False)
    day = end.day or starts.astimezone(end.offset or zone).date()
    ends = _resolve(day, end.clock, end.offset, zone, notes)
    if ends <= starts:
        raise UserError(
            _("The end ({end}) must be after the start ({start}).").format(
                end=format_when(ends), start=format_when(starts)
            ),
            show_usage=False,
        )
    return ends


def _moment(typed: str, text: str, now: dt.datetime, zone: ZoneInfo) -> tuple[_Moment, str]:
    """Read an optional date and a time from the front of text; return them and the rest.

    A ``-hh:mm`` right after the time is an offset only in ISO's T form
    (``2027-03-29T14:00-05:00``); everywhere else it is the end of a range.
    """
    day: dt.date | None = None
    typed_day = ""
    western = False
    iso = DATE_ISO.match(text)
    german = None if iso else DATE_GERMAN.match(text)
    found = iso or german
    if found is not None:
        typed_day = found.group(0)
        joint = JOIN.match(text, found.end())
        if joint is None or joint.end() == len(text):
            raise UserError(
                _("Please give a time too, for example {example}.").format(
                    example=f"{typed_day} 14:00"
                ),
                show_usage=False,
            )
        western = iso is not None and "t" in joint.group(0).lower()
        text = text[joint.end() :]
    clock_found = TIME.match(text)
    if clock_found is None:
        raise UserError(_unreadable(typed), show_usage=False)
    hour, minute, second = (int(part or 0) for part in clock_found.groups())
    try:
        clock = dt.time(hour, minute, second)
    except ValueError:
        raise UserError(
            _("{time} is not a time of day: hours go from 0 to 23, minutes from 0 to 59.").format(
                time=clock_found.group(0)
            ),
            show_usage=False,
        ) from None
    text = text[clock_found.end() :]
    offset = None
    offset_found = OFFSET.match(text)
    if offset_found is not None and (western or not text.startswith("-")):
        offset = _offset(offset_found)
        if offset is not None:
            text = text[offset_found.end() :]
    if iso is not None:
        day = _day(typed_day, int(iso.group(1)), int(iso.group(2)), int(iso.group(3)))
    elif german is not None:
        year = german.group(3)
        day_number, month = int(german.group(1)), int(german.group(2))
        if year is None:
            day = _next(typed_day, day_number, month, clock, now=now, zone=zone)
        else:
            full_year = int(year) + (2000 if len(year) == 2 else 0)
            day = _day(typed_day, full_year, month, day_number)
    return _Moment(day, clock, offset, typed_day), text.strip()


def _offset(found: re.Match[str]) -> dt.timezone | None:
    if found.group(0).upper() == "Z":
        return dt.UTC
    hours, minutes = int(found.group(1)), int(found.group(2))
    size = dt.timedelta(hours=hours, minutes=minutes)
    if found.group(0).startswith("-"):
        if size > LARGEST_WEST:
            return None  # "14:00-17:00": the end of a range
        size = -size
    if size >= dt.timedelta(hours=24) or size <= -dt.timedelta(hours=24):
        return None
    return dt.timezone(size)


def _day(typed: str, year: int, month: int, day: int) -> dt.date:
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise UserError(
            _("There is no day {date} in the calendar.").format(date=typed), show_usage=False
        ) from None


def _next(
    typed: str, day: int, month: int, clock: dt.time, *, now: dt.datetime, zone: ZoneInfo
) -> dt.date:
    """Return the next such day: this year's if it is still to come, else next year's."""
    today = now.astimezone(zone)
    for year in (today.year, today.year + 1):
        try:
            candidate = dt.date(year, month, day)
        except ValueError:
            continue  # 29.2. only in leap years
        if dt.datetime.combine(candidate, clock) > today.replace(tzinfo=None):
            return candidate
    return _day(typed, today.year, month, day)


def _resolve(
    day: dt.date,
    clock: dt.time,
    offset: dt.timezone | None,
    zone: ZoneInfo,
    notes: list[str],
) -> dt.datetime:
    """Return a local date and time as UTC; refuse one the clocks skip, note one they repeat."""
    if offset is not None:
        return dt.datetime.combine(day, clock, tzinfo=offset).astimezone(dt.UTC)
    first = dt.datetime.combine(day, clock, tzinfo=zone)
    second = first.replace(fold=1)
    if first.utcoffset() == second.utcoffset():
        return first.astimezone(dt.UTC)
    shown = f"{clock:%H:%M}"
    if first.astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None) != first.replace(
        tzinfo=None
    ):
        raise UserError(
            _(
                "{time} on {date} does not exist in {zone}: the clocks are put forward "
                "that night. Please choose another time."
            ).format(time=shown, date=format_date(day), zone=zone.key),
            show_usage=False,
        )
    later = second.utcoffset() or dt.timedelta()
    hours, minutes = divmod(int(later.total_seconds()) // 60, 60)
    example = f"{day.isoformat()}T{shown}{'+' if later >= dt.timedelta() else '-'}"
    example += f"{abs(hours):02d}:{minutes:02d}"
    notes.append(
        _(
            "{time} on {date} happens twice, because the clocks are put back that night: "
            "I took the first one ({first}). For the second, write {example}."
        ).format(
            time=shown,
            date=format_date(day),
            first=f"{shown} {first.tzname()}",
            example=example,
        )
    )
    return first.astimezone(dt.UTC)
