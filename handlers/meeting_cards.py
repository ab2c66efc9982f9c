"""How a meeting reads in a reply: its card with the answers so far, the member's own answer."""

from __future__ import annotations

import datetime as dt

from markupsafe import Markup

from bot.core import UserError
from bot.i18n import _, format_when
from bot.markup import bold, code, italic, lines, link
from bot.routing import Context
from handlers.arguments import parse_id
from storage.meetings import MeetingSummary, is_over, meeting_summary
from storage.models import Answer, Meeting


async def find_meeting(ctx: Context, arg: str) -> MeetingSummary:
    """Return the meeting a command names, with the asking member's answer; else UserError."""
    meeting = await stored_meeting(ctx, arg)
    summary = await meeting_summary(ctx.session, meeting.id, ctx.member.id)
    assert summary is not None
    return summary


async def stored_meeting(ctx: Context, arg: str) -> Meeting:
    """Return the meeting a command names by its number; else UserError."""
    meeting_id = parse_id(arg, _("The meeting number must be a number, as shown by /meetings."))
    meeting = await ctx.session.get(Meeting, meeting_id)
    if meeting is None:
        raise UserError(
            _("There is no meeting #{id}. /meetings lists the meetings.").format(id=meeting_id),
            show_usage=False,
        )
    return meeting


def is_open(meeting: Meeting, now: dt.datetime) -> bool:
    """Tell whether a meeting can still be answered: not cancelled, not begun or ended."""
    return meeting.cancelled_at is None and (meeting.ends_at or meeting.starts_at) > now


def meeting_card(summary: MeetingSummary, now: dt.datetime) -> Markup:
    """Return a meeting's title, state, time, place and answer counts."""
    meeting = summary.meeting
    place = []
    if meeting.location:
        place.append(Markup("📍 {}").format(meeting.location))
    if meeting.online_url:
        place.append(Markup("💻 {}").format(link(meeting.online_url, _("online"))))
    if meeting.cancelled_at:
        state = italic(_("cancelled"))
    elif is_over(meeting, now):
        state = italic(_("This meeting is over."))
    else:
        state = None
    return lines(
        [
            Markup("{} {}").format(bold(meeting.title), code(f"#{meeting.id}")),
            state,
            Markup("🗓 {}").format(format_when(meeting.starts_at, meeting.ends_at)),
            *place,
            Markup("👥 {}").format(_counts(summary)),
        ]
    )


def _counts(summary: MeetingSummary) -> str:
    meeting, answers = summary.meeting, summary.answers
    if meeting.capacity is None:
        return _("attending: {yes} · maybe: {maybe}").format(
            yes=answers[Answer.YES], maybe=answers[Answer.MAYBE]
        )
    counts = _("{taken}/{capacity} places · maybe: {maybe}").format(
        taken=answers[Answer.YES], capacity=meeting.capacity, maybe=answers[Answer.MAYBE]
    )
    if summary.waiting:
        counts += " · " + _("waiting list: {count}").format(count=summary.waiting)
    return counts


def own_answer(summary: MeetingSummary) -> Markup:
    """Return the asking member's answer, or their place on the waiting list."""
    answer, place = summary.mine, summary.my_place
    if answer is None:
        return Markup.escape(_("You have not answered yet."))
    label = {Answer.YES: _("attending"), Answer.NO: _("not attending"), Answer.MAYBE: _("maybe")}
    shown = label[answer]
    if place is not None:
        shown = _("waiting list, place {place}").format(place=place)
    return Markup.escape(_("Your answer: {answer}")).format(answer=bold(shown))
