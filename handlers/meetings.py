"""Network meetings: the list, one meeting in full, answers and calendar files."""

from __future__ import annotations

import datetime as dt

from markupsafe import Markup

from bot.core import Button, Reply, Request, Role, UserError
from bot.i18n import N_, _, format_when, in_every_language, parse_choice
from bot.markup import blocks, bold, code, lines
from bot.routing import Context, Router
from handlers.attendees import attendee_groups
from handlers.meeting_cards import find_meeting, is_open, meeting_card, own_answer
from handlers.paging import page_buttons, page_count, split_page
from storage.attendance import answer, attendees, locked_meeting
from storage.meetings import UpcomingPage, past_meetings, upcoming_meetings
from storage.models import Answer, Meeting

router = Router("meetings")
PAGE_SIZE = 5
# How many meetings /meeting offers when it is sent without a number.
CHOICES = 5
ANSWER_WORDS = {Answer.YES: N_("yes"), Answer.NO: N_("no"), Answer.MAYBE: N_("maybe")}
# The word after /meetings that lists the meetings that are over.
PAST = N_("past")


@router.command(
    "meetings",
    help=N_("upcoming network meetings"),
    usage=N_("/meetings [past]"),
    aliases=("termine",),
    names={"de": "treffen"},
)
async def list_meetings(request: Request, ctx: Context) -> Reply:
    """List the meetings not over yet, soonest first, or those over, newest first."""
    rest, page = split_page(request.args)
    past = _is_past(rest)
    found = await _meetings_page(ctx, page, past=past)
    if found.total == 0:
        empty = (
            _("No meetings are over yet.") if past else _("No meetings are planned at the moment.")
        )
        return Reply(Markup.escape(empty))
    # A page past the end shows the last one.
    pages = page_count(found.total, PAGE_SIZE)
    page = min(page, pages)
    if not found.summaries:
        found = await _meetings_page(ctx, page, past=past)
    summaries = found.summaries
    title = (
        _("Past meetings ({page}/{pages})") if past else _("Upcoming meetings ({page}/{pages})")
    )
    heading = bold(title.format(page=page, pages=pages))
    buttons = tuple(_list_buttons(s.meeting, past=past) for s in summaries)
    paging = page_buttons("meetings", "past" if past else "", page, pages)
    cards = (
        meeting_card(s, ctx.now) if past else lines([meeting_card(s, ctx.now), own_answer(s)])
        for s in summaries
    )
    return Reply(
        blocks([heading, *cards]),
        buttons + ((paging,) if paging else ()),
        edit_origin=request.via_button,
    )


def _list_buttons(meeting: Meeting, *, past: bool) -> tuple[Button, ...]:
    details = Button(_("Details #{id}").format(id=meeting.id), "meeting", str(meeting.id))
    if past:
        return (details,)
    return (details, Button(_("Attend #{id}").format(id=meeting.id), "rsvp", f"{meeting.id} yes"))


def _is_past(rest: str) -> bool:
    if not rest:
        return False
    if rest.casefold() in {word.casefold() for word in in_every_language(PAST)} | {PAST}:
        return True
    raise UserError(_("Send /meetings for what is ahead, or /meetings past for what is over."))


async def _meetings_page(ctx: Context, page: int, *, past: bool = False) -> UpcomingPage:
    query = past_meetings if past else upcoming_meetings
    return await query(
        ctx.session,
        ctx.now,
        offset=(page - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
        member_id=ctx.member.id,
    )


@router.command(
    "meeting", help=N_("one meeting in full"), usage=N_("/meeting ID"), names={"de": "termin"}
)
async def show_meeting(request: Request, ctx: Context) -> Reply:
    """Show one meeting with its agenda, the answers so far and the member's own.

    Coordinators see who answered what, and get the attendee list as a file (not in groups).
    """
    if not request.args.strip():
        return await _choose_meeting(ctx)
    summary = await find_meeting(ctx, request.args)
    meeting = summary.meeting
    # Names stay out of group chats: there everyone would read them.
    coordinator = ctx.role >= Role.COORDINATOR and not request.is_group
    who = attendee_groups(await attendees(ctx.session, meeting.id)) if coordinator else None
    text = blocks(
        [
            meeting_card(summary, ctx.now),
            lines([bold(_("Agenda")), meeting.agenda]) if meeting.agenda else None,
            own_answer(summary) if is_open(meeting, ctx.now) else None,
            who,
        ]
    )
    extra = (Button(_("📄 Attendee list (CSV)"), "attendees", str(meeting.id)),)
    return Reply(text, _meeting_buttons(meeting, ctx.now) + ((extra,) if coordinator else ()))


@router.command(
    "rsvp",
    help=N_("answer whether you attend a meeting"),
    usage=N_("/rsvp ID yes|no|maybe"),
    aliases=("zusage",),
    names={"de": "teilnehmen"},
)
async def answer_meeting(request: Request, ctx: Context) -> Reply:
    """Record whether the member attends a meeting; beyond its capacity they wait."""
    words = request.words
    if len(words) != 2:
        raise UserError(_("Please give the meeting number and your answer."))
    given = _parse_answer(words[1])
    meeting_id = (await find_meeting(ctx, words[0])).meeting.id
    meeting = await locked_meeting(ctx.session, meeting_id)
    assert meeting is not None
    if not is_open(meeting, ctx.now):
        raise UserError(_("This meeting is over or cancelled."), show_usage=False)
    answered = await answer(ctx.session, meeting, ctx.member.id, given, ctx.now)
    summary = await find_meeting(ctx, str(meeting.id))
    thanks = {
        Answer.YES: _("Thank you! You attend {title}."),
        Answer.NO: _("Noted: you do not attend {title}."),
        Answer.MAYBE: _("Noted: you may attend {title}."),
    }[given]
    if answered.waiting_place is not None:
        thanks = _("{title} is full: you are on the waiting list, place {place}.")
    heading = Markup.escape(thanks).format(title=bold(meeting.title), place=answered.waiting_place)
    return Reply(
        blocks([heading, meeting_card(summary, ctx.now)]), _meeting_buttons(meeting, ctx.now)
    )


async def _choose_meeting(ctx: Context) -> Reply:
    """Ask which meeting: the next ones, each with a button to its details."""
    upcoming = await upcoming_meetings(ctx.session, ctx.now, limit=CHOICES)
    if not upcoming.summaries:
        return Reply(Markup.escape(_("No meetings are planned at the moment.")))
    entries = [
        Markup("• {} {} – {}").format(
            bold(s.meeting.title), code(f"#{s.meeting.id}"), format_when(s.meeting.starts_at)
        )
        for s in upcoming.summaries
    ]
    buttons = tuple(
        (Button(_("Details #{id}").format(id=s.meeting.id), "meeting", str(s.meeting.id)),)
        for s in upcoming.summaries
    )
    usage = next((c.usage_line() for c in ctx.commands if c.name == "meeting"), "/meeting")
    question = Markup.escape(_("Which meeting? Send {usage} or press a button.")).format(
        usage=code(usage)
    )
    return Reply(lines([question, *entries]), buttons)


def _parse_answer(word: str) -> Answer:
    answer = parse_choice(word, ANSWER_WORDS)
    if answer is None:
        raise UserError(_("Please answer yes, no or maybe."))
    return answer


def answer_buttons(meeting: Meeting) -> tuple[Button, ...]:
    """Return the one-tap answers to a meeting: yes, maybe, no."""
    return tuple(
        Button(label, "rsvp", f"{meeting.id} {answer.value}")
        for answer, label in (
            (Answer.YES, _("✅ Yes")),
            (Answer.MAYBE, _("❔ Maybe")),
            (Answer.NO, _("❌ No")),
        )
    )


def _meeting_buttons(meeting: Meeting, now: dt.datetime) -> tuple[tuple[Button, ...], ...]:
    calendar = (Button(_("📅 Add to calendar"), "calendar", str(meeting.id)),)
    if not is_open(meeting, now):
        return ()
    return (answer_buttons(meeting), calendar)
