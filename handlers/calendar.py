"""Calendar files of the meetings, and each member's private calendar feed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from icalendar import Alarm, Calendar, Event, vDuration
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession

from bot import i18n
from bot.core import Attachment, Reply, Request, UserError
from bot.i18n import N_, _, ngettext
from bot.markup import blocks, code, lines
from bot.routing import Context, Router
from handlers.meeting_cards import stored_meeting
from storage.calendar import feed_meetings, feed_token, new_feed_token, revised_at
from storage.meetings import upcoming_meetings
from storage.models import Meeting, Member
from storage.reminders import offsets_of

router = Router("calendar")
PRODID = "-//Klimabot//klimabot//DE"
# How many upcoming meetings one file holds.
FILE_LIMIT = 100
RESET_WORDS = {"reset", "neu", "zurücksetzen"}
# How often a subscribed calendar app should look again (RFC 7986, and Outlook's own key).
REFRESH = dt.timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class CalendarView:
    """What shapes a member's calendar: their time zone, alarm and meetings' default length."""

    zone: ZoneInfo
    alarm: int | None  # minutes before the start; None: no alarm
    length: dt.timedelta | None  # shown for a meeting without an end; None: no end


@router.command(
    "calendar",
    help=N_("calendar file of the upcoming meetings"),
    usage=N_("/calendar [ID|reset]"),
    names={"de": "kalender"},
)
async def send_calendar(request: Request, ctx: Context) -> Reply:
    """Send an .ics file with one meeting or all upcoming ones, and the member's feed."""
    arg = request.args.strip()
    if arg.lower() in RESET_WORDS:
        return await _reset_feed(request, ctx)
    if arg:
        meetings = [await stored_meeting(ctx, arg)]
    else:
        upcoming = await upcoming_meetings(ctx.session, ctx.now, limit=FILE_LIMIT)
        meetings = [summary.meeting for summary in upcoming.summaries]
    # The feed's address is personal: never in a group, and only with the whole list.
    feed = None if arg or request.is_group else await _feed_note(ctx)
    if not meetings:
        return Reply(blocks([Markup.escape(_("No meetings are planned at the moment.")), feed]))
    name = f"meeting-{meetings[0].id}.ics" if len(meetings) == 1 else "meetings.ics"
    text = Markup.escape(
        ngettext(
            "Here is {count} meeting for your calendar.",
            "Here are {count} meetings for your calendar.",
            len(meetings),
        )
    ).format(count=len(meetings))
    revised = await revised_at(ctx.session, meetings)
    data = calendar_file(meetings, revised, member_view(ctx), ctx.network, stamp=ctx.now)
    return Reply(blocks([text, feed]), attachments=(Attachment(name, "text/calendar", data),))


async def _reset_feed(request: Request, ctx: Context) -> Reply:
    """Give the member a new feed address; the old one stops working."""
    if ctx.feed_url is None:
        raise UserError(_("This bot offers no calendar feed."), show_usage=False)
    if request.is_group:
        raise UserError(
            _("Please send this in a private chat with me: the feed's address is personal."),
            show_usage=False,
        )
    token = await new_feed_token(ctx.session, ctx.member)
    return Reply(
        lines(
            [
                Markup.escape(
                    _("Your calendar feed has a new address; the old one no longer works:")
                ),
                code(feed_address(ctx.feed_url, token)),
                Markup.escape(_("Subscribe to the new address in your calendar app.")),
            ]
        )
    )


async def _feed_note(ctx: Context) -> Markup | None:
    if ctx.feed_url is None:
        return None
    token = await feed_token(ctx.session, ctx.member)
    return lines(
        [
            Markup.escape(
                _(
                    "📅 Your private calendar feed: subscribe to this address in your calendar "
                    "app and it follows every change."
                )
            ),
            code(feed_address(ctx.feed_url, token)),
            Markup.escape(
                _("Keep it to yourself; {reset} gives you a new one and turns this one off.")
            ).format(reset=code(_("/calendar reset"))),
        ]
    )


def feed_address(feed_url: str, token: str) -> str:
    """Return the address of the feed with this token."""
    return f"{feed_url}{token}.ics"


def member_view(ctx: Context) -> CalendarView:
    """Return how the member who asked sees their calendar."""
    return calendar_view(ctx.member, ctx.reminder_offsets, ctx.meeting_length)


def calendar_view(
    member: Member, default_offsets: tuple[int, ...], length: dt.timedelta | None
) -> CalendarView:
    """Return how a member sees their calendar: alarm at their first reminder offset."""
    offsets = offsets_of(member, default_offsets)
    return CalendarView(i18n.current().timezone, offsets[0] if offsets else None, length)


async def member_feed(
    session: AsyncSession, view: CalendarView, network: str, now: dt.datetime
) -> bytes:
    """Return a member's feed: the meetings from a month ago on, cancelled ones included."""
    meetings = await feed_meetings(session, now)
    return calendar_file(meetings, await revised_at(session, meetings), view, network)


def calendar_file(
    meetings: Sequence[Meeting],
    revised: Mapping[int, dt.datetime],
    view: CalendarView,
    network: str,
    *,
    stamp: dt.datetime | None = None,
) -> bytes:
    """Return an iCalendar file of the meetings: a download when stamped, else a feed.

    A download says METHOD:PUBLISH, the iTIP method for calendar data sent for its own sake:
    Outlook and Apple Calendar open it as events to add (or update, by UID and SEQUENCE),
    Google's import takes it alike; REQUEST or CANCEL would be a meeting invitation that
    wants an ORGANIZER and answers. A cancelled meeting in it is STATUS:CANCELLED, which
    PUBLISH allows. DTSTAMP is when the file was made.

    A feed has no METHOD: it is no message but the calendar as it is now, which subscribed
    apps fetch again and again and take over whole, so a meeting that turns CANCELLED is
    shown as such or removed. Without METHOD, DTSTAMP is when the meeting last changed
    (RFC 5545, 3.8.7.2), so that an unchanged feed is the same bytes (and ETag) every time.
    """
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    if stamp is not None:
        calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", network)
    calendar.add("x-wr-timezone", view.zone.key)
    if stamp is None:
        calendar.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
        calendar.add("x-published-ttl", vDuration(REFRESH))
    for meeting in meetings:
        changed = revised.get(meeting.id, meeting.created_at)
        calendar.add_component(_event(meeting, view, changed, stamp or changed))
    if meetings:
        # The zone's rules for the years the meetings are in, not for half a century.
        years = [meeting.starts_at.astimezone(view.zone).year for meeting in meetings]
        calendar.add_missing_timezones(dt.date(min(years), 1, 1), dt.date(max(years) + 2, 1, 1))
    return bytes(calendar.to_ical())


def _event(
    meeting: Meeting, view: CalendarView, changed: dt.datetime, stamp: dt.datetime
) -> Event:
    cancelled = meeting.cancelled_at is not None
    event = Event()
    event.add("uid", meeting.uid)
    event.add("sequence", meeting.sequence)
    event.add("dtstamp", stamp.astimezone(dt.UTC))
    event.add("created", meeting.created_at.astimezone(dt.UTC))
    event.add("last-modified", changed.astimezone(dt.UTC))
    event.add("dtstart", meeting.starts_at.astimezone(view.zone))
    end = meeting.ends_at or (meeting.starts_at + view.length if view.length else None)
    if end is not None:
        event.add("dtend", end.astimezone(view.zone))
    title = _("Cancelled: {title}").format(title=meeting.title) if cancelled else meeting.title
    event.add("summary", title)
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    # Outlook and Google show no URL property: the link goes into LOCATION as well.
    place = " – ".join(part for part in (meeting.location, meeting.online_url) if part)
    if place:
        event.add("location", place)
    if meeting.online_url:
        event.add("url", meeting.online_url)
    description = _description(meeting)
    if description:
        event.add("description", description)
    if view.alarm is not None and not cancelled:
        alarm = Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", meeting.title)
        alarm.add("trigger", -dt.timedelta(minutes=view.alarm))
        event.add_component(alarm)
    return event


def _description(meeting: Meeting) -> str:
    parts = [
        _("This meeting is cancelled.") if meeting.cancelled_at else None,
        meeting.agenda,
        _("Online: {url}").format(url=meeting.online_url) if meeting.online_url else None,
        _("The end time is not fixed.") if meeting.ends_at is None else None,
    ]
    return "\n\n".join(part for part in parts if part)
